// The optimizer step: fused AdamW (fp32 master weights and moments; on the bf16 path it
// also writes the bf16 working copy of the updated weights in the same pass), the
// deterministic sum of squares behind the global gradient norm, and the same fixed-order
// sum (sum_into) that adds up a training step's loss on the device.
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_mixed_ops.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/mixed_checks.cuh"
#include "kernels/cuda/storage.cuh"

namespace rpt::cuda {

namespace {

constexpr int kAdamThreads = 256;
// sum_squares: a fixed grid (independent of the GPU) so the partial sums, and therefore
// the rounding of the result, are the same on every device and every run.
constexpr int kSumSquaresBlocks = 1024;
constexpr int kSumSquaresThreads = 256;
constexpr int kFinishThreads = 1024;  // one thread per partial in the second stage
static_assert(kFinishThreads == kSumSquaresBlocks, "the finishing block reads one partial per thread");

struct AdamParams {
    float lr, beta1, beta2, eps, decay_factor, grad_scale, bias_correction1, bias_correction2;
};

// One fused pass: read p, g, m, v (16 bytes) and write p, m, v (12 bytes) per parameter,
// the minimum traffic for AdamW; 128-bit packs when all four arrays are aligned. With a
// `working` copy (bf16 path, non-null) the updated parameter is also stored there rounded
// to nearest even (2 more bytes, a 64-bit store per 4-wide pack): the forward's weights
// never need a separate conversion pass.
template <int W>
__global__ void adamw_kernel(float* params, const float* grads, float* m, float* v, bf16* working, int64_t packs,
                             AdamParams a) {
    for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < packs; p += int64_t(gridDim.x) * blockDim.x) {
        Pack<W> w = load_pack<W>(params, p), mm = load_pack<W>(m, p), vv = load_pack<W>(v, p);
        const Pack<W> g = load_pack<W>(grads, p);
#pragma unroll
        for (int l = 0; l < W; ++l) {
            const float grad = g.v[l] * a.grad_scale;
            mm.v[l] = a.beta1 * mm.v[l] + (1.0f - a.beta1) * grad;
            vv.v[l] = a.beta2 * vv.v[l] + (1.0f - a.beta2) * grad * grad;
            const float m_hat = mm.v[l] / a.bias_correction1;
            const float v_hat = vv.v[l] / a.bias_correction2;
            w.v[l] *= a.decay_factor;
            w.v[l] -= a.lr * m_hat / (sqrtf(v_hat) + a.eps);
        }
        store_pack<W>(params, p, w);
        store_pack<W>(m, p, mm);
        store_pack<W>(v, p, vv);
        if (working) store_chunk<W>(working, p, w.v);
    }
}

// Stage 1: block b sums x^2 (kSquare) or x over its grid-stride share in double (fp32
// would lose digits over 10^9 parameters), reduces with the fixed-order block_sum,
// writes partials[b].
template <bool kSquare>
__global__ void __launch_bounds__(kSumSquaresThreads)
    fixed_sum_partial_kernel(double* partials, const float* x, int64_t n) {
    __shared__ double scratch[kWarpSize];
    double acc = 0.0;
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
        const double xi = x[i];
        acc += kSquare ? xi * xi : xi;
    }
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

// Stage 2: one block, one partial per thread, one fixed-order block_sum; the result in
// double (sum_squares) or rounded once to float (sum_into).
template <typename Out>
__global__ void __launch_bounds__(kFinishThreads) fixed_sum_finish_kernel(Out* result, const double* partials) {
    __shared__ double scratch[kWarpSize];
    const double total = block_sum(partials[threadIdx.x], scratch);
    if (threadIdx.x == 0) *result = static_cast<Out>(total);
}

// Both stages into `result` on the stream; `partials` holds kSumSquaresBlocks doubles.
template <bool kSquare, typename Out>
void launch_fixed_sum(cudaStream_t st, Out* result, double* partials, const float* x, int64_t n) {
    fixed_sum_partial_kernel<kSquare><<<kSumSquaresBlocks, kSumSquaresThreads, 0, st>>>(partials, x, n);
    RPT_CUDA_LAUNCH_CHECK();
    fixed_sum_finish_kernel<Out><<<1, kFinishThreads, 0, st>>>(result, partials);
    RPT_CUDA_LAUNCH_CHECK();
}

// working: the bf16 copy to refresh, or nullptr.
void launch_adamw(cudaStream_t st, float* params, const float* grads, float* m, float* v, bf16* working, int64_t n,
                  const ops::AdamWSettings& s) {
    if (n <= 0) return;
    const double t = static_cast<double>(s.step);
    const AdamParams a{s.lr,
                       s.beta1,
                       s.beta2,
                       s.eps,
                       1.0f - s.lr * s.weight_decay,
                       s.grad_scale,
                       static_cast<float>(1.0 - std::pow(static_cast<double>(s.beta1), t)),
                       static_cast<float>(1.0 - std::pow(static_cast<double>(s.beta2), t))};
    const bool aligned = is_aligned16(params) && is_aligned16(grads) && is_aligned16(m) && is_aligned16(v) &&
                         (!working || chunk_aligned<kPackWidth>(working));
    const int64_t packs = aligned ? n / kPackWidth : 0, done = packs * kPackWidth;
    if (packs > 0) {
        adamw_kernel<kPackWidth><<<grid_for(packs, kAdamThreads), kAdamThreads, 0, st>>>(params, grads, m, v, working,
                                                                                          packs, a);
        RPT_CUDA_LAUNCH_CHECK();
    }
    if (done < n) {
        adamw_kernel<1><<<grid_for(n - done, kAdamThreads), kAdamThreads, 0, st>>>(
            params + done, grads + done, m + done, v + done, working ? working + done : nullptr, n - done, a);
        RPT_CUDA_LAUNCH_CHECK();
    }
}

}  // namespace

void adamw_update(void* stream, float* params, const float* grads, float* m, float* v, int64_t n,
                  const ops::AdamWSettings& s) {
    launch_adamw(as_stream(stream), params, grads, m, v, nullptr, n, s);
}

namespace mixed {

void adamw_update(void* stream, Tensor params, Tensor grads, Tensor m, Tensor v, Tensor working,
                  const ops::AdamWSettings& s) {
    const char* op = "adamw_update";
    require_dtype(op, params, DType::f32, "params");
    require_dtype(op, grads, DType::f32, "grads");
    require_dtype(op, m, DType::f32, "m");
    require_dtype(op, v, DType::f32, "v");
    require_dtype(op, working, DType::bf16, "working");
    if (working.numel() != params.numel())
        throw std::invalid_argument("adamw_update (CUDA bf16 path): working " + working.describe() +
                                    " must have the shape of params " + params.describe());
    launch_adamw(as_stream(stream), as_f32(params), as_f32(grads), as_f32(m), as_f32(v), as_bf16(working),
                 params.numel(), s);
}

}  // namespace mixed


double sum_squares(void* stream, const float* x, int64_t n) {
    if (n <= 0) return 0.0;
    cudaStream_t st = as_stream(stream);
    ScratchBuffer partials((kSumSquaresBlocks + 1) * sizeof(double), st, "sum_squares partials");
    double* result = partials.as<double>() + kSumSquaresBlocks;
    launch_fixed_sum<true>(st, result, partials.as<double>(), x, n);
    double host = 0.0;
    RPT_CUDA_CHECK(cudaMemcpyAsync(&host, result, sizeof(double), cudaMemcpyDeviceToHost, st));
    RPT_CUDA_CHECK(cudaStreamSynchronize(st));
    return host;
}

void sum_into(void* stream, float* out, const float* x, int64_t n) {
    cudaStream_t st = as_stream(stream);
    if (n <= 0) {
        RPT_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(float), st));
        return;
    }
    ScratchBuffer partials(kSumSquaresBlocks * sizeof(double), st, "sum_into partials");
    launch_fixed_sum<false>(st, out, partials.as<double>(), x, n);
}

}  // namespace rpt::cuda
