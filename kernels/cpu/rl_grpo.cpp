// GRPO, CPU twin: group-normalised advantages and the clipped policy-gradient loss with
// its per-token dL/dlogp coefficients (DESIGN §1.4).
//
// Advantages: groups of G consecutive slots; mean and unbiased std in double (G is small,
// and double makes an all-equal group give exactly 0).
// Policy loss: one pass per sequence row; the per-token formulas are the shared
// rl_detail::token_loss, the weight depends on the aggregation (and, for
// seq-mean-token-mean, on the row's token count, summed first).
// Token maps: plain indexed copies between a micro-batch's per-token arrays and the
// (responses, R) layout of the policy loss.
#include <cmath>

#include "kernels/cpu/rl_ops_cpu.h"

namespace rpt::cpu {

void grpo_advantages(float* advantages, const float* rewards, int64_t S, int64_t group_size, float eps,
                     bool scale_by_std) {
    const int64_t groups = S / group_size;
#pragma omp parallel for schedule(static)
    for (int64_t g = 0; g < groups; ++g) {
        rl_detail::group_advantages(advantages + g * group_size, rewards + g * group_size, group_size, eps,
                                    scale_by_std);
    }
}

void policy_loss(float* coef, float* token_loss, float* clipped, float* kl, const float* logp, const float* logp_old,
                 const float* logp_ref, const float* advantages, const float* mask, int64_t S, int64_t R,
                 const ops::PolicyLossSettings& s) {
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < S; ++row) {
        const int64_t base = row * R;
        float tokens = 0.0f;  // exact: a count of ones, far below 2^24
        for (int64_t r = 0; r < R; ++r) tokens += mask[base + r] != 0.0f ? 1.0f : 0.0f;
        const float w = rl_detail::aggregation_weight(s.aggregation, tokens, s.total_tokens, s.total_sequences,
                                                      s.max_response_tokens);
        const float adv = advantages[row];
        for (int64_t r = 0; r < R; ++r) {
            const int64_t i = base + r;
            if (mask[i] == 0.0f) {
                coef[i] = token_loss[i] = 0.0f;
                if (clipped) clipped[i] = 0.0f;
                if (kl) kl[i] = 0.0f;
                continue;
            }
            const rl_detail::TokenLoss t = rl_detail::token_loss(
                logp[i], logp_old[i], logp_ref ? logp_ref[i] : 0.0f, logp_ref != nullptr, adv, s.clip_low,
                s.clip_high, s.kl_beta);
            coef[i] = w * t.dloss;
            token_loss[i] = w * t.loss;
            if (clipped) clipped[i] = t.clipped;
            if (kl) kl[i] = t.kl;
        }
    }
}

void gather_tokens(float* out, const float* per_token, const int32_t* index, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) out[i] = index[i] >= 0 ? per_token[index[i]] : 0.0f;
}

void scatter_tokens(float* per_token, const float* values, const int32_t* index, int64_t n) {
    // Distinct targets (the op's contract): the iterations never write the same element.
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i)
        if (index[i] >= 0) per_token[index[i]] = values[i];
}

}  // namespace rpt::cpu
