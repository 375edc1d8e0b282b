// The one FLOP model every count in rpt uses: NTP steps, RPT rollouts and GRPO updates,
// and so the demo's equal-compute comparison between them.
//
// A forward pass over `tokens` tokens whose attention covers `pairs` (query, key) pairs:
//   matmuls    2 FLOPs (a multiply and an add) per matmul parameter per token
//              (ModelConfig::num_matmul_parameters: the lm_head counts even when tied);
//   attention  per layer and pair, q . k and p . v over the H * D query channels:
//              2 * 2 * H * D FLOPs.
// A backward pass costs twice its forward (the gradients of the inputs and of the
// weights), so a training pass is 3x the forward.
//
// Per-token counts at context length T follow the PaLM convention the benches' peers use:
// every token is charged T keys (pairs = T per token), not the causal average.
#pragma once

#include "model/config.h"

namespace rpt {

// Forward FLOPs of `tokens` tokens attending over `pairs` (query, key) pairs in total.
double forward_flops(const ModelConfig& c, double tokens, double pairs);

// Forward + backward: 3x the forward.
double training_flops(const ModelConfig& c, double tokens, double pairs);

// One token at context length T (pairs = T), forward only / forward + backward.
double forward_flops_per_token(const ModelConfig& c, double T);
double training_flops_per_token(const ModelConfig& c, double T);

}  // namespace rpt
