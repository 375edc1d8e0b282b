#include "rl/grpo.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "comm/comm.h"

namespace rpt {
namespace {

// One training row: the prompt then the response; targets only on response tokens.
struct Row {
    int slot;
    int prompt_len;
    int response_len;
};

}  // namespace

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
    std::vector<Row> rows;
    for (int s = 0; s < S; ++s) {
        const int len = int(rollouts.responses[s].size());
        R = std::max(R, len);
        response_tokens += len;
        // A zero advantage gives a zero gradient unless a KL term pulls on it: skip the row.
        if (advantages[s] != 0.0f || settings.loss.kl_beta > 0 || !settings.skip_zero_advantage)
            rows.push_back({s, int(prompts[size_t(s / G)].size()), len});
    }
    // Normalisers count every rank's sequences and tokens: per-rank coefficients then
    // add up across ranks to the gradient of the whole batch's loss.
    Comm* comm = optimizer.comm();
    double abs_advantage = 0;
    for (float a : advantages) abs_advantage += std::fabs(a);
    int64_t counts[3] = {S, response_tokens, int64_t(rows.size())};
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
    std::vector<float> logp_old;  // (rows, R) from the first pass, the behaviour policy
    double entropy_sum = 0, clipped_sum = 0, kl_sum = 0;
    for (int update = 0; update < settings.updates_per_batch; ++update) {
        policy.zero_grad();
        double loss_sum = 0;
        for (size_t r0 = 0; r0 < rows.size(); r0 += size_t(settings.micro_batch_rows)) {
            const int M = int(std::min(rows.size() - r0, size_t(settings.micro_batch_rows)));
            int T = 1;
            for (int m = 0; m < M; ++m) T = std::max(T, rows[r0 + m].prompt_len + rows[r0 + m].response_len - 1);
            std::vector<int32_t> tokens(size_t(M) * T, 0), targets(size_t(M) * T, -1);
            std::vector<float> mask(size_t(M) * R, 0.0f), adv(static_cast<size_t>(M));
            for (int m = 0; m < M; ++m) {
                const Row& row = rows[r0 + m];
                const auto& prompt = prompts[size_t(row.slot / G)];
                const auto& resp = rollouts.responses[size_t(row.slot)];
                int32_t* tk = tokens.data() + int64_t(m) * T;
                std::copy(prompt.begin(), prompt.end(), tk);
                std::copy(resp.begin(), resp.end() - 1, tk + row.prompt_len);
                for (int j = 0; j < row.response_len; ++j) {
                    targets[size_t(m) * T + size_t(row.prompt_len + j - 1)] = resp[size_t(j)];
                    mask[size_t(m) * R + size_t(j)] = 1.0f;
                }
                adv[size_t(m)] = advantages[size_t(row.slot)];
            }
            HeadRequest request;
            request.entropy = update == 0;
            auto gather = [&](const std::vector<float>& full, std::vector<float>& out) {  // (M, T) -> (M, R)
                out.assign(size_t(M) * R, 0.0f);
                for (int m = 0; m < M; ++m)
                    for (int j = 0; j < rows[r0 + m].response_len; ++j)
                        out[size_t(m) * R + j] = full[size_t(m) * T + size_t(rows[r0 + m].prompt_len + j - 1)];
            };
            std::vector<float> logp_ref;
            if (reference) {
                reference->forward(tokens.data(), targets.data(), M, T, {}, inv_temperature);
                gather(reference->logprobs(), logp_ref);
            }
            policy.forward(tokens.data(), targets.data(), M, T, request, inv_temperature);
            std::vector<float> logp;
            gather(policy.logprobs(), logp);
            if (update == 0) {
                logp_old.insert(logp_old.end(), logp.begin(), logp.end());
                std::vector<float> ent;
                gather(policy.entropies(), ent);
                for (size_t i = 0; i < ent.size(); ++i) entropy_sum += ent[i] * mask[i];
            }
            const float* old = logp_old.data() + r0 * size_t(R);

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
            std::vector<float> dlogprob(size_t(M) * T, 0.0f);
            for (int m = 0; m < M; ++m)
                for (int j = 0; j < rows[r0 + m].response_len; ++j) {
                    const size_t i = size_t(m) * R + size_t(j);
                    dlogprob[size_t(m) * T + size_t(rows[r0 + m].prompt_len + j - 1)] = coef[i];
                    loss_sum += token_loss[i];
                    if (update == settings.updates_per_batch - 1) {
                        clipped_sum += clipped[i];
                        kl_sum += kl[i];
                    }
                }
            policy.backward(dlogprob.data());
            stats.train_tokens += int64_t(M) * T;
        }
        stats.grad_norm = optimizer.step(policy.params().flat, policy.grads().flat, lr, summed);
        stats.loss = comm ? comm->allreduce_sum(loss_sum) : loss_sum;
    }
    double sums[4] = {entropy_sum, clipped_sum, kl_sum, 0.0};
    for (const Row& row : rows) sums[3] += row.response_len;
    if (comm) comm->allreduce_sum_host(sums, 4);
    const double n = std::max(1.0, sums[3]);  // response tokens trained on, all ranks
    stats.entropy = sums[0] / n;
    stats.clip_fraction = sums[1] / n;
    stats.kl = sums[2] / n;
    int64_t train_tokens = stats.train_tokens;
    if (comm) comm->allreduce_sum_host(&train_tokens, 1);
    stats.train_tokens = train_tokens;
    return stats;
}

}  // namespace rpt
