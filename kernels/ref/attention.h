// Causal grouped-query attention in float64 plain loops: the definition the CPU twin and
// the CUDA kernels are tested against (their gradients against finite differences of it).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/attention_args.h"

namespace rpt::ref {

// out (B, T, H, D) = softmax(q k^T / sqrt(D)) v over the keys each query sees
// (attn::key_visible), and lse (B, H, T) when not null. q (B, T, H, D), k, v
// (B, T, KVH, D); segments (B, T), empty for plain causal rows.
std::vector<double> attention_forward(const std::vector<double>& q, const std::vector<double>& k,
                                      const std::vector<double>& v, const attn::Shape& s,
                                      std::vector<double>* lse = nullptr, const std::vector<int32_t>& segments = {});

}  // namespace rpt::ref
