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
//
// The bf16 path runs the same kernel on bf16 storage (templated, storage.cuh): the pair is
// widened, rotated in fp32 and each element rounded once. Its accesses stay scalar (2
// bytes, still coalesced): the FP64 angle, not the load width, bounds this kernel.
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_mixed_ops.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/mixed_checks.cuh"
#include "kernels/cuda/storage.cuh"

namespace rpt::cuda {

namespace {

constexpr int kRopeThreads = 256;

// log2_theta = log2(theta), computed once on the host: inv_freq = theta^(-2i/D) = 2^(-log2(theta) 2i/D).
template <bool kBackward, typename T>
__global__ void rope_kernel(T* x, const int32_t* positions, int64_t N, int64_t heads, int64_t D,
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
        T* head = x + row * D;
        const float x1 = to_f32(head[i]), x2 = to_f32(head[i + half]);
        if (kBackward) {
            head[i] = from_f32<T>(x1 * cos_a + x2 * sin_a);
            head[i + half] = from_f32<T>(x2 * cos_a - x1 * sin_a);
        } else {
            head[i] = from_f32<T>(x1 * cos_a - x2 * sin_a);
            head[i + half] = from_f32<T>(x2 * cos_a + x1 * sin_a);
        }
    }
}

template <bool kBackward, typename T>
void launch_rope(void* stream, T* x, const int32_t* positions, int64_t N, int64_t heads, int64_t D, float theta) {
    const int64_t pairs = N * heads * (D / 2);
    if (pairs <= 0) return;
    rope_kernel<kBackward, T><<<grid_for(pairs, kRopeThreads), kRopeThreads, 0, as_stream(stream)>>>(
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

namespace mixed {

// x (N, heads, D) bf16, in place; positions (N) i32.
void rope_forward(void* stream, Tensor x, Tensor positions, float theta) {
    require_dtype("rope_forward", x, DType::bf16, "x");
    launch_rope<false>(stream, as_bf16(x), as_i32(positions), x.dim(0), x.dim(1), x.dim(2), theta);
}

void rope_backward(void* stream, Tensor dx, Tensor positions, float theta) {
    require_dtype("rope_backward", dx, DType::bf16, "dx");
    launch_rope<true>(stream, as_bf16(dx), as_i32(positions), dx.dim(0), dx.dim(1), dx.dim(2), theta);
}

}  // namespace mixed

}  // namespace rpt::cuda
