// A Linear layer in float64 plain loops: the definition the blocked CPU matmul and the
// cuBLASLt path are tested against.
#pragma once

#include <cstdint>
#include <vector>

namespace rpt::ref {

// out (N, OC) = in (N, IC) @ w (OC, IC)^T + bias (OC, when not null).
std::vector<double> matmul_forward(const std::vector<double>& in, const std::vector<double>& w,
                                   const std::vector<double>* bias, int64_t N, int64_t IC, int64_t OC);

}  // namespace rpt::ref
