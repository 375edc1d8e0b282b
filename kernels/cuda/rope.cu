// Rotary position embedding, rotate-half layout (Hugging Face): within each head, channel
// pair (i, i + D/2) is rotated by angle positions[n] * theta^(-2i/D):
//   forward:  (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin)
//   backward: (g1, g2) -> (g1 cos + g2 sin, g2 cos - g1 sin)   (the transposed rotation)
//
// One thread per pair, in place. Consecutive threads take consecutive i, so the two
// halves of each head are read and written as coalesced runs. The angle is recomputed per
// thread instead of read from a cos/sin table: the kernel is memory-bound, so the
// arithmetic is nearly free and no table has to be kept. The angle and its sin/cos are
// computed in double, like the CPU twin: position * inv_freq in fp32 loses digits at long
// positions (ulp(4096) is 5e-4 rad). That costs ~100 FP64 instructions per pair: free on
// A100/H100 (FP64 at half the FP32 rate), noticeable on consumer GPUs (1/64 rate).
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_ops.h"

namespace rpt::cuda {

namespace {

constexpr int kRopeThreads = 256;

// log2_theta = log2(theta), computed once on the host: inv_freq = theta^(-2i/D) = 2^(-log2(theta) 2i/D).
template <bool kBackward>
__global__ void rope_kernel(float* x, const int32_t* positions, int64_t N, int64_t heads, int64_t D,
                            double log2_theta) {
    const int64_t half = D / 2;
    const int64_t pairs = N * heads * half;
    for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < pairs; p += int64_t(gridDim.x) * blockDim.x) {
        const int64_t i = p % half;
        const int64_t row = p / half;  // (n, head) flattened
        const int64_t n = row / heads;
        const double inv_freq = exp2(-log2_theta * static_cast<double>(2 * i) / static_cast<double>(D));
        const double angle = static_cast<double>(positions[n]) * inv_freq;
        double sin_d, cos_d;
        sincos(angle, &sin_d, &cos_d);
        const float sin_a = static_cast<float>(sin_d), cos_a = static_cast<float>(cos_d);
        float* head = x + row * D;
        const float x1 = head[i], x2 = head[i + half];
        if (kBackward) {
            head[i] = x1 * cos_a + x2 * sin_a;
            head[i + half] = x2 * cos_a - x1 * sin_a;
        } else {
            head[i] = x1 * cos_a - x2 * sin_a;
            head[i + half] = x2 * cos_a + x1 * sin_a;
        }
    }
}

template <bool kBackward>
void launch_rope(void* stream, float* x, const int32_t* positions, int64_t N, int64_t heads, int64_t D, float theta) {
    const int64_t pairs = N * heads * (D / 2);
    if (pairs <= 0) return;
    rope_kernel<kBackward><<<grid_for(pairs, kRopeThreads), kRopeThreads, 0, as_stream(stream)>>>(
        x, positions, N, heads, D, std::log2(static_cast<double>(theta)));
    RPT_CUDA_LAUNCH_CHECK();
}

}  // namespace

void rope_forward(void* stream, float* x, const int32_t* positions, int64_t N, int64_t heads, int64_t D, float theta) {
    launch_rope<false>(stream, x, positions, N, heads, D, theta);
}

void rope_backward(void* stream, float* dx, const int32_t* positions, int64_t N, int64_t heads, int64_t D,
                   float theta) {
    launch_rope<true>(stream, dx, positions, N, heads, D, theta);
}

}  // namespace rpt::cuda
