// The per-row layer ops in float64 plain loops: RMSNorm, RoPE (rotate-half) and SwiGLU,
// the definitions the CPU twins and CUDA kernels are tested against.
#pragma once

#include <cstdint>
#include <vector>

namespace rpt::ref {

// y (N, C) = w (C) * x (N, C) / sqrt(mean(x^2) + eps); rstd (N) when not null.
std::vector<double> rmsnorm_forward(const std::vector<double>& x, const std::vector<double>& w, int64_t N, int64_t C,
                                    double eps, std::vector<double>* rstd = nullptr);

// x (N, heads, D) rotated: pair (i, i + D/2) by angle positions[n] * theta^(-2i/D).
std::vector<double> rope_forward(const std::vector<double>& x, const std::vector<int32_t>& positions, int64_t N,
                                 int64_t heads, int64_t D, double theta);

// silu(gate) * up, elementwise.
std::vector<double> swiglu_forward(const std::vector<double>& gate, const std::vector<double>& up);

}  // namespace rpt::ref
