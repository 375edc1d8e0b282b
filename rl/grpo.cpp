// The GRPO update, top-down: advantages, the update's layout (which responses, packed into
// which micro-batches), the normalisers over all ranks, then per pass and micro-batch a
// forward, the policy-loss coefficients on the device and a backward, then one AdamW step.
#include "rl/grpo.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "comm/comm.h"
#include "kernels/host_sync.h"
#include "rl/policy_loss_device.h"
#include "rl/rank_sums.h"
#include "rl/update_rows.h"

namespace rpt {

namespace {

// Advantages (S) on the device, as the trainer of a large run would compute them.
std::vector<float> device_advantages(const OpContext& ctx, const std::vector<float>& rewards, int G,
                                     const GrpoSettings& settings) {
    const int64_t S = int64_t(rewards.size());
    std::vector<float> advantages(rewards.size());
    Buffer buf(ctx.device, size_t(S) * 2 * sizeof(float), "advantages");
    const Tensor r = buf.view(DType::f32, 0, {S}), a = buf.view(DType::f32, size_t(S) * 4, {S});
    copy_from_host(ctx, r, rewards.data());
    ops::grpo_advantages(ctx, a, r, G, settings.advantage_eps, settings.scale_by_std);
    copy_to_host(ctx, advantages.data(), a);
    return advantages;
}

// Which responses the update computes and how they are laid out.
struct UpdatePlan {
    int R = 1;                    // the longest response (1 at least): the (M, R) width of per-response arrays
    int64_t response_tokens = 0;  // of all this rank's responses
    std::vector<int> kept;        // slots that take part in the update
    std::vector<MicroBatch> micro_batches;
    int max_micro_batch_responses = 0;
};

UpdatePlan plan_update(const std::vector<std::vector<int32_t>>& prompts, const RolloutResult& rollouts,
                       const std::vector<float>& advantages, const GrpoSettings& settings) {
    UpdatePlan plan;
    for (int s = 0; s < int(rollouts.responses.size()); ++s) {
        const int len = int(rollouts.responses[size_t(s)].size());
        plan.R = std::max(plan.R, len);
        plan.response_tokens += len;
        // A zero advantage gives a zero gradient unless a KL term pulls on it: skip the row.
        if (advantages[size_t(s)] != 0.0f || settings.loss.kl_beta > 0 || !settings.skip_zero_advantage)
            plan.kept.push_back(s);
    }
    const std::vector<PackedRow> rows = build_rows(plan.kept, settings.prompt_layout == PromptLayout::shared,
                                                   rollouts.group_size, settings.micro_batch_rows);
    // Micro-batches: consecutive rows holding at most micro_batch_rows responses (one row
    // at least). Built once, so every update pass sees the same batches in the same order.
    for (size_t r0 = 0; r0 < rows.size();) {
        size_t count = 0;
        int responses = 0;
        while (r0 + count < rows.size() &&
               (count == 0 || responses + int(rows[r0 + count].slots.size()) <= settings.micro_batch_rows))
            responses += int(rows[r0 + count++].slots.size());
        plan.micro_batches.push_back(make_micro_batch(rows, r0, count, prompts, rollouts));
        plan.max_micro_batch_responses = std::max(plan.max_micro_batch_responses, responses);
        r0 += count;
    }
    return plan;
}

// Counts over all ranks: the loss normalisers, so that per-rank coefficients add up
// across ranks to the gradient of the whole batch's loss.
struct BatchCounts {
    int64_t sequences = 0;
    int64_t response_tokens = 0;
    int64_t kept_responses = 0;
};

// Per-token sums of the update's statistics, this rank's (then all ranks').
struct TokenSums {
    double entropy = 0;          // of the first pass
    double clipped = 0;          // of the last pass
    double kl = 0;               // of the last pass
    double response_tokens = 0;  // of the kept responses
};

// What one pass over the micro-batches needs besides the batch itself.
struct PassContext {
    Transformer& policy;
    Transformer* reference;
    const std::vector<float>& advantages;
    const ops::PolicyLossSettings& loss;
    float inv_temperature;
    bool first;  // the first pass: records the behaviour log-probs and the entropy
    bool last;   // the last pass: records clipping and KL
};

// One micro-batch: forwards, coefficients and backward (gradients accumulate), the
// log-probs and coefficients never leaving the device. On the first pass the policy's
// log-probs become the behaviour log-probs of responses [done, done + M).
void micro_batch_step(const PassContext& p, int mb_index, const MicroBatch& mb, PolicyLossDevice& device,
                      int64_t done) {
    device.load(mb_index, mb, p.advantages);

    // Log-probs of the responses at the sampling temperature (and the reference's).
    if (p.reference) {
        p.reference->forward(mb.tokens.data(), mb.targets.data(), mb.rows, mb.T, {}, p.inv_temperature,
                             mb.layout());
        device.gather_reference(*p.reference);
    }
    HeadRequest request;
    request.entropy = p.first;
    p.policy.forward(mb.tokens.data(), mb.targets.data(), mb.rows, mb.T, request, p.inv_temperature, mb.layout());
    device.gather_policy(p.policy, p.first, done);

    // Coefficients, scattered back to the tokens that produced each log-prob.
    const Tensor& dlogprob = device.coefficients(p.loss, p.reference != nullptr, p.last, done);
    p.policy.backward(dlogprob, p.inv_temperature);
}

// The loss settings normalised by counts over all ranks, and how many responses all
// ranks keep (0: nothing to learn from).
struct Normalisers {
    ops::PolicyLossSettings loss;
    int64_t kept_responses = 0;
};

// Sums the counts over ranks; fills the statistics that come from them.
Normalisers normalise_over_ranks(Comm* comm, const GrpoSettings& settings, const UpdatePlan& plan,
                                 const std::vector<float>& advantages, GrpoStats& stats) {
    double abs_advantage = 0;
    for (float a : advantages) abs_advantage += std::fabs(a);
    BatchCounts counts{int64_t(advantages.size()), plan.response_tokens, int64_t(plan.kept.size())};
    sum_over_ranks<int64_t>(comm, counts);
    if (comm) abs_advantage = comm->allreduce_sum(abs_advantage);
    Normalisers n;
    n.loss = settings.loss;
    n.loss.total_sequences = std::max<int64_t>(1, counts.sequences);
    n.loss.total_tokens = std::max<int64_t>(1, counts.response_tokens);
    n.loss.max_response_tokens = std::max(settings.max_response_tokens, plan.R);
    n.kept_responses = counts.kept_responses;
    stats.response_tokens = counts.response_tokens;
    stats.mean_abs_advantage = abs_advantage / double(n.loss.total_sequences);
    return n;
}

// The optimizer step that ends each pass: gradients summed over ranks (the coefficients
// are already normalised by the counts of all ranks).
struct PassStep {
    AdamW& optimizer;
    float lr;
    AdamWConfig adamw;  // sum_gradients set
};

// The sizes the update's micro-batches reach.
PolicyLossShape policy_loss_shape(const UpdatePlan& plan) {
    PolicyLossShape shape;
    shape.R = plan.R;
    shape.kept_responses = int64_t(plan.kept.size());
    shape.max_responses = plan.max_micro_batch_responses;
    shape.micro_batches = int(plan.micro_batches.size());
    for (const MicroBatch& mb : plan.micro_batches)
        shape.max_tokens = std::max(shape.max_tokens, int64_t(mb.rows) * mb.T);
    return shape;
}

// The update's passes over the micro-batches, each a forward, coefficients and backward
// per micro-batch, then one AdamW step; `pass` is the first pass's context.
TokenSums run_passes(PassContext pass, const PassStep& step, const UpdatePlan& plan, int updates,
                     GrpoStats& stats) {
    Comm* comm = step.optimizer.comm();
    Transformer& policy = pass.policy;
    PolicyLossDevice device(policy.context(), policy_loss_shape(plan));
    TokenSums sums;
    for (int update = 0; update < updates; ++update) {
        pass.first = update == 0;
        pass.last = update == updates - 1;
        policy.zero_grad();
        device.begin_pass();
        // Ranks hold different numbers of micro-batches (none, even), so nothing
        // collective may hang on a forward or backward: ZeRO-3 gathers the parameters the
        // last pass's step left sharded here, on every rank (no-op when resident), and
        // ZeRO-2/3, which reduce in every backward, agree on the rounds first.
        policy.gather_parameters();
        step.optimizer.agree_backward_rounds(int(plan.micro_batches.size()));
        int64_t done = 0;  // responses of earlier micro-batches
        for (size_t i = 0; i < plan.micro_batches.size(); ++i) {
            const MicroBatch& mb = plan.micro_batches[i];
            micro_batch_step(pass, int(i), mb, device, done);
            done += int64_t(mb.spans.size());
            stats.train_tokens += int64_t(mb.rows) * mb.T;
            // Forward + backward (about twice the forward), plus the reference's forward.
            stats.flops += (pass.reference ? 4.0 : 3.0) * micro_batch_flops(policy.config(), mb);
        }
        stats.grad_norm = step.optimizer.step(policy.params().flat, policy.grads().flat, step.lr, step.adamw,
                                              policy.working_params());
        // The pass's statistics: one readback for all its micro-batches.
        const PolicyLossSums pass_sums = device.take_sums();
        if (pass.first) sums.entropy = pass_sums.entropy;
        if (pass.last) {
            sums.clipped = pass_sums.clipped;
            sums.kl = pass_sums.kl;
        }
        stats.loss = comm ? comm->allreduce_sum(pass_sums.loss) : pass_sums.loss;
    }
    return sums;
}

// Per-token statistics, and the tokens and FLOPs trained on, over all ranks.
void reduce_token_stats(Comm* comm, const UpdatePlan& plan, const RolloutResult& rollouts, TokenSums& sums,
                        GrpoStats& stats) {
    for (int s : plan.kept) sums.response_tokens += double(rollouts.responses[size_t(s)].size());
    sum_over_ranks<double>(comm, sums);
    const double n = std::max(1.0, sums.response_tokens);  // response tokens trained on, all ranks
    stats.entropy = sums.entropy / n;
    stats.clip_fraction = sums.clipped / n;
    stats.kl = sums.kl / n;
    int64_t train_tokens = stats.train_tokens;
    if (comm) {
        comm->allreduce_sum_host(&train_tokens, 1);
        stats.flops = comm->allreduce_sum(stats.flops);
    }
    stats.train_tokens = train_tokens;
}

}  // namespace

GrpoStats grpo_update(Transformer& policy, AdamW& optimizer, Transformer* reference,
                      const std::vector<std::vector<int32_t>>& prompts, const RolloutResult& rollouts,
                      const std::vector<float>& rewards, const GrpoSettings& settings, float lr,
                      const AdamWConfig& adamw) {
    const int G = rollouts.group_size, S = int(rollouts.responses.size());
    if (int(rewards.size()) != S) throw std::invalid_argument("grpo: one reward per response");
    if (settings.loss.kl_beta > 0 && !reference) throw std::invalid_argument("grpo: KL needs a reference model");

    // 1. Advantages and the update's layout.
    const std::vector<float> advantages = device_advantages(policy.context(), rewards, G, settings);
    const UpdatePlan plan = plan_update(prompts, rollouts, advantages, settings);

    // 2. Normalisers over every rank's sequences and tokens.
    GrpoStats stats;
    const Normalisers norm = normalise_over_ranks(optimizer.comm(), settings, plan, advantages, stats);
    // Nothing to learn from when every group of every rank was uniform. A rank with no
    // rows of its own still takes part in the update below (its gradient is zero).
    if (norm.kept_responses == 0) return stats;

    // 3. The passes: forward, coefficients and backward per micro-batch, then one step.
    const PassContext first{policy, reference, advantages, norm.loss, 1.0f / settings.temperature, true, true};
    AdamWConfig summed = adamw;
    summed.sum_gradients = true;
    TokenSums sums = run_passes(first, {optimizer, lr, summed}, plan, settings.updates_per_batch, stats);

    // 4. Per-token statistics over all ranks.
    reduce_token_stats(optimizer.comm(), plan, rollouts, sums, stats);
    return stats;
}

}  // namespace rpt
