// Rotary position embedding, "rotate-half" layout (Hugging Face / Qwen2).
//
// For a head vector x of size D and half = D/2, pair i is (x[i], x[i + half]), rotated
// by angle = position * theta^(-2i/D):
//   forward:  y[i] = x[i] cos - x[i+half] sin,   y[i+half] = x[i+half] cos + x[i] sin
//   backward: the transposed rotation (angle -> -angle).
// Angles are computed in double (position * inv_freq loses digits in fp32 at long
// positions), once per row, and shared by all heads of that row. Threads over rows.
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_ops.h"

namespace rpt::cpu {
namespace {

// direction = +1 rotates forward, -1 applies the inverse (transpose) rotation.
void rope_rotate(float* x, const int32_t* positions, int64_t N, int64_t heads, int64_t D, float theta,
                 float direction) {
    const int64_t half = D / 2;
    std::vector<double> inv_freq(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i)
        inv_freq[i] = 1.0 / std::pow(static_cast<double>(theta), static_cast<double>(2 * i) / static_cast<double>(D));
#pragma omp parallel
    {
        std::vector<float> cosv(static_cast<size_t>(half)), sinv(static_cast<size_t>(half));
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; ++n) {
            for (int64_t i = 0; i < half; ++i) {
                const double angle = static_cast<double>(positions[n]) * inv_freq[i];
                cosv[i] = static_cast<float>(std::cos(angle));
                sinv[i] = direction * static_cast<float>(std::sin(angle));
            }
            for (int64_t h = 0; h < heads; ++h) {
                float* __restrict lo = x + (n * heads + h) * D;
                float* __restrict hi = lo + half;
                for (int64_t i = 0; i < half; ++i) {
                    const float a = lo[i], b = hi[i];
                    lo[i] = a * cosv[i] - b * sinv[i];
                    hi[i] = b * cosv[i] + a * sinv[i];
                }
            }
        }
    }
}

}  // namespace

void rope_forward(float* x, const int32_t* positions, int64_t N, int64_t heads, int64_t D, float theta) {
    rope_rotate(x, positions, N, heads, D, theta, 1.0f);
}

void rope_backward(float* dx, const int32_t* positions, int64_t N, int64_t heads, int64_t D, float theta) {
    rope_rotate(dx, positions, N, heads, D, theta, -1.0f);
}

}  // namespace rpt::cpu
