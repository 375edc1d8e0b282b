// RMSNorm, Hugging Face convention: out = weight * (x * rstd), rstd = 1/sqrt(mean(x^2) + eps).
//
// Forward: one thread per row; the mean of squares is summed in double (the row is short,
// the cost is nothing, and it keeps rstd exact to fp32 rounding for wide rows).
// Backward, with g = dout * weight and xhat = x * rstd:
//   din  += rstd * (g - xhat * mean(g * xhat))
//   dweight += sum over rows of dout * xhat
// din is per row (threads over rows). dweight sums over rows, so it is a second pass
// where threads own channel ranges and walk rows in order: deterministic, no atomics.
#include <algorithm>
#include <cmath>

#include "kernels/cpu/cpu_ops.h"

namespace rpt::cpu {
namespace {

constexpr int64_t kChannelBlock = 64;  // channels per dweight work item

}  // namespace

void rmsnorm_forward(float* out, float* rstd, const float* in, const float* weight, int64_t N, int64_t C, float eps) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
        const float* __restrict x = in + n * C;
        float* __restrict y = out + n * C;
        double ss = 0.0;
#pragma omp simd reduction(+ : ss)
        for (int64_t c = 0; c < C; ++c) ss += static_cast<double>(x[c]) * x[c];
        const float r = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(C) + eps));
        rstd[n] = r;
        for (int64_t c = 0; c < C; ++c) y[c] = weight[c] * (x[c] * r);
    }
}

void rmsnorm_backward(float* din, float* dweight, const float* dout, const float* in, const float* weight,
                      const float* rstd, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
        const float* __restrict x = in + n * C;
        const float* __restrict dy = dout + n * C;
        float* __restrict dx = din + n * C;
        const float r = rstd[n];
        double dot = 0.0;  // sum_c g_c * xhat_c
#pragma omp simd reduction(+ : dot)
        for (int64_t c = 0; c < C; ++c) dot += static_cast<double>(dy[c] * weight[c]) * (x[c] * r);
        const float mean_dot = static_cast<float>(dot / static_cast<double>(C));
        for (int64_t c = 0; c < C; ++c) dx[c] += r * (dy[c] * weight[c] - x[c] * r * mean_dot);
    }
#pragma omp parallel for schedule(static)
    for (int64_t c0 = 0; c0 < C; c0 += kChannelBlock) {
        const int64_t width = std::min(kChannelBlock, C - c0);
        float acc[kChannelBlock] = {};
        for (int64_t n = 0; n < N; ++n) {
            const float r = rstd[n];
            const float* __restrict x = in + n * C + c0;
            const float* __restrict dy = dout + n * C + c0;
            for (int64_t c = 0; c < width; ++c) acc[c] += dy[c] * (x[c] * r);
        }
        for (int64_t c = 0; c < width; ++c) dweight[c0 + c] += acc[c];
    }
}

}  // namespace rpt::cpu
