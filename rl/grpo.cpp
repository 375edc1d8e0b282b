#include "rl/grpo.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "comm/comm.h"
#include "rl/update_rows.h"

namespace rpt {

GrpoStats grpo_update(Transformer& policy, AdamW& optimizer, Transformer* reference,
                      const std::vector<std::vector<int32_t>>& prompts, const RolloutResult& rollouts,
                      const std::vector<float>& rewards, const GrpoSettings& settings, float lr,
                      const AdamWConfig& adamw) {
    const OpContext& ctx = policy.context();
    const int G = rollouts.group_size, S = int(rollouts.responses.size());
    if (int(rewards.size()) != S) throw std::invalid_argument("grpo: one reward per response");
    if (settings.loss.kl_beta > 0 && !reference) throw std::invalid_argument("grpo: KL needs a reference model");

    // Advantages on the device, as the trainer of a large run would.
    std::vector<float> advantages(rewards.size());
    {
        Buffer buf(ctx.device, size_t(S) * 2 * sizeof(float), "advantages");
        const Tensor r = buf.view(DType::f32, 0, {S}), a = buf.view(DType::f32, size_t(S) * 4, {S});
        copy_from_host(r, rewards.data());
        ops::grpo_advantages(ctx, a, r, G, settings.advantage_eps, settings.scale_by_std);
        copy_to_host(advantages.data(), a);
    }

    int R = 1;
    int64_t response_tokens = 0;
    std::vector<int> kept;  // slots that take part in the update
    for (int s = 0; s < S; ++s) {
        const int len = int(rollouts.responses[size_t(s)].size());
        R = std::max(R, len);
        response_tokens += len;
        // A zero advantage gives a zero gradient unless a KL term pulls on it: skip the row.
        if (advantages[size_t(s)] != 0.0f || settings.loss.kl_beta > 0 || !settings.skip_zero_advantage)
            kept.push_back(s);
    }
    const std::vector<PackedRow> rows =
        build_rows(kept, settings.prompt_layout == PromptLayout::shared, G, settings.micro_batch_rows);
    // Micro-batches: consecutive rows holding at most micro_batch_rows responses (one row
    // at least). Built once, so every update pass sees the same batches in the same order.
    std::vector<MicroBatch> micro_batches;
    for (size_t r0 = 0; r0 < rows.size();) {
        size_t count = 0;
        int responses = 0;
        while (r0 + count < rows.size() &&
               (count == 0 || responses + int(rows[r0 + count].slots.size()) <= settings.micro_batch_rows))
            responses += int(rows[r0 + count++].slots.size());
        micro_batches.push_back(make_micro_batch(rows, r0, count, prompts, rollouts));
        r0 += count;
    }

    // Normalisers count every rank's sequences and tokens: per-rank coefficients then
    // add up across ranks to the gradient of the whole batch's loss.
    Comm* comm = optimizer.comm();
    double abs_advantage = 0;
    for (float a : advantages) abs_advantage += std::fabs(a);
    int64_t counts[3] = {S, response_tokens, int64_t(kept.size())};
    if (comm) {
        comm->allreduce_sum_host(counts, 3);
        abs_advantage = comm->allreduce_sum(abs_advantage);
    }
    ops::PolicyLossSettings loss = settings.loss;
    loss.total_sequences = std::max<int64_t>(1, counts[0]);
    loss.total_tokens = std::max<int64_t>(1, counts[1]);
    loss.max_response_tokens = std::max(settings.max_response_tokens, R);
    AdamWConfig summed = adamw;
    summed.sum_gradients = true;

    GrpoStats stats;
    stats.response_tokens = counts[1];
    stats.mean_abs_advantage = abs_advantage / double(loss.total_sequences);
    // Nothing to learn from when every group of every rank was uniform. A rank with no
    // rows of its own still takes part in the update below (its gradient is zero).
    if (counts[2] == 0) return stats;

    const float inv_temperature = 1.0f / settings.temperature;
    std::vector<float> logp_old;  // (kept responses, R) from the first pass, the behaviour policy
    double entropy_sum = 0, clipped_sum = 0, kl_sum = 0;
    for (int update = 0; update < settings.updates_per_batch; ++update) {
        policy.zero_grad();
        double loss_sum = 0;
        size_t done = 0;  // responses of earlier micro-batches
        for (const MicroBatch& mb : micro_batches) {
            const int M = int(mb.spans.size());
            std::vector<float> mask(size_t(M) * R, 0.0f), adv(static_cast<size_t>(M));
            for (int m = 0; m < M; ++m) {
                std::fill_n(mask.begin() + int64_t(m) * R, mb.spans[size_t(m)].length, 1.0f);
                adv[size_t(m)] = advantages[size_t(mb.spans[size_t(m)].slot)];
            }
            HeadRequest request;
            request.entropy = update == 0;
            std::vector<float> logp_ref;
            if (reference) {
                reference->forward(mb.tokens.data(), mb.targets.data(), mb.rows, mb.T, {}, inv_temperature,
                                   mb.layout());
                logp_ref = gather_responses(mb, reference->logprobs(), R);
            }
            policy.forward(mb.tokens.data(), mb.targets.data(), mb.rows, mb.T, request, inv_temperature, mb.layout());
            const std::vector<float> logp = gather_responses(mb, policy.logprobs(), R);
            if (update == 0) {
                logp_old.insert(logp_old.end(), logp.begin(), logp.end());
                const std::vector<float> ent = gather_responses(mb, policy.entropies(), R);
                for (size_t i = 0; i < ent.size(); ++i) entropy_sum += ent[i] * mask[i];
            }
            const float* old = logp_old.data() + done * size_t(R);
            done += size_t(M);

            // Coefficients on the device; staging for (M, R) inputs and outputs.
            const int64_t MR = int64_t(M) * R;
            Buffer buf(ctx.device, size_t(MR) * 8 * sizeof(float) + size_t(M) * sizeof(float), "policy loss");
            size_t at = 0;
            auto carve = [&](std::initializer_list<int64_t> shape) {
                Tensor t = buf.view(DType::f32, at, shape);
                at += t.nbytes();
                return t;
            };
            const Tensor t_coef = carve({M, R}), t_loss = carve({M, R}), t_clip = carve({M, R}), t_kl = carve({M, R});
            const Tensor t_logp = carve({M, R}), t_old = carve({M, R}), t_ref = carve({M, R}), t_mask = carve({M, R});
            const Tensor t_adv = carve({M});
            copy_from_host(t_logp, logp.data());
            copy_from_host(t_old, old);
            copy_from_host(t_mask, mask.data());
            copy_from_host(t_adv, adv.data());
            if (reference) copy_from_host(t_ref, logp_ref.data());
            ops::policy_loss(ctx, t_coef, t_loss, t_clip, t_kl, t_logp, t_old, reference ? t_ref : Tensor{}, t_adv,
                             t_mask, loss);
            std::vector<float> coef(static_cast<size_t>(MR)), token_loss(coef.size()), clipped(coef.size()),
                kl(coef.size());
            copy_to_host(coef.data(), t_coef);
            copy_to_host(token_loss.data(), t_loss);
            copy_to_host(clipped.data(), t_clip);
            copy_to_host(kl.data(), t_kl);
            // Scatter the coefficients back to the tokens that produced each log-prob.
            std::vector<float> dlogprob(size_t(mb.rows) * size_t(mb.T), 0.0f);
            for (int m = 0; m < M; ++m) {
                const ResponseSpan& sp = mb.spans[size_t(m)];
                for (int j = 0; j < sp.length; ++j) {
                    const size_t i = size_t(m) * R + size_t(j);
                    dlogprob[size_t(sp.row) * size_t(mb.T) + size_t(sp.begin + j)] = coef[i];
                    loss_sum += token_loss[i];
                    if (update == settings.updates_per_batch - 1) {
                        clipped_sum += clipped[i];
                        kl_sum += kl[i];
                    }
                }
            }
            policy.backward(dlogprob.data(), inv_temperature);
            stats.train_tokens += int64_t(mb.rows) * mb.T;
            // Forward + backward (about twice the forward), plus the reference's forward.
            stats.flops += (reference ? 4.0 : 3.0) * micro_batch_flops(policy.config(), mb);
        }
        stats.grad_norm = optimizer.step(policy.params().flat, policy.grads().flat, lr, summed);
        stats.loss = comm ? comm->allreduce_sum(loss_sum) : loss_sum;
    }
    double sums[4] = {entropy_sum, clipped_sum, kl_sum, 0.0};
    for (int s : kept) sums[3] += double(rollouts.responses[size_t(s)].size());
    if (comm) comm->allreduce_sum_host(sums, 4);
    const double n = std::max(1.0, sums[3]);  // response tokens trained on, all ranks
    stats.entropy = sums[0] / n;
    stats.clip_fraction = sums[1] / n;
    stats.kl = sums[2] / n;
    int64_t train_tokens = stats.train_tokens;
    if (comm) {
        comm->allreduce_sum_host(&train_tokens, 1);
        stats.flops = comm->allreduce_sum(stats.flops);
    }
    stats.train_tokens = train_tokens;
    return stats;
}

}  // namespace rpt
