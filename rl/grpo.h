// The GRPO update of RPT (DESIGN §1.4-5): group-normalised advantages from the rewards,
// then per-token clipped policy-gradient coefficients on log-probs recomputed in fp32
// at the sampling temperature, fed to the model's backward, then one AdamW step.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/rl_ops.h"
#include "model/optimizer.h"
#include "model/transformer.h"
#include "rl/rollout.h"

namespace rpt {

// How the update lays out a group's responses (rl/grpo.cpp): behind one shared copy of
// the prompt (packed rows, attention segments; the attention kernels skip the tiles of
// the other responses' keys, so this saves the prompt's G - 1 recomputations and costs
// nothing back), or one padded row per response. Both give the same gradient.
enum class PromptLayout : uint8_t { shared, separate };

struct GrpoSettings {
    float temperature = 0.8f;        // log-probs are taken on logits / temperature
    float advantage_eps = 1e-6f;
    bool scale_by_std = true;        // false: Dr. GRPO advantages (no std division)
    ops::PolicyLossSettings loss;    // clip range, KL weight, aggregation (totals are filled in here)
    int micro_batch_rows = 64;       // responses per forward/backward
    PromptLayout prompt_layout = PromptLayout::shared;
    int updates_per_batch = 1;       // 1: exactly on-policy
    // Rows with advantage 0 contribute no gradient (without KL): skipping them saves
    // their forward/backward. Off: every row is computed (benchmarks, debugging).
    bool skip_zero_advantage = true;
    int max_response_tokens = 1;     // the response budget: Dr. GRPO's constant normaliser
};

struct GrpoStats {
    double loss = 0;
    double clip_fraction = 0;     // share of response tokens on the clipped branch
    double kl = 0;                // mean k3 KL to the reference (0 without one)
    double entropy = 0;           // mean policy entropy over response tokens
    double grad_norm = 0;         // of the last update
    double mean_abs_advantage = 0;
    int64_t train_tokens = 0;     // tokens through forward+backward (rows x padded length, all updates)
    double flops = 0;             // estimated FLOPs of those forwards and backwards (matmuls + attention)
    int64_t response_tokens = 0;
};

// `reference` may be null when settings.loss.kl_beta == 0. Collective over the
// optimizer's ranks: each passes its own groups; the loss is normalised by counts over
// all ranks, so summing gradients across ranks gives the full-batch gradient.
GrpoStats grpo_update(Transformer& policy, AdamW& optimizer, Transformer* reference,
                      const std::vector<std::vector<int32_t>>& prompts, const RolloutResult& rollouts,
                      const std::vector<float>& rewards, const GrpoSettings& settings, float lr,
                      const AdamWConfig& adamw);

}  // namespace rpt
