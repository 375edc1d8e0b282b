// RMSNorm (Hugging Face convention): out = weight * x * rstd, rstd = 1 / sqrt(mean(x^2) + eps),
// in fp32 and in bf16 (in, weight bf16; out bf16 or f32; rstd and every statistic f32),
// plus the bf16 path's fused residual add + RMSNorm. One kernel body per op, templated on
// the storage types (storage.cuh): loads widen to fp32, stores round once.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_mixed_ops.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/mixed_checks.cuh"
#include "kernels/cuda/storage.cuh"

namespace rpt::cuda {

namespace {

constexpr int kRowsPerBlock = 8;  // one warp per row, 8 warps per block
constexpr int kRowThreads = kRowsPerBlock * kWarpSize;

// One warp per row: lanes stride over the row in chunks of W channels (W = 16 bytes of the
// input type: 4 floats or 8 bf16, when C and the pointers allow; else W = 1), so each
// warp-wide access is a run of coalesced 128-bit loads; a butterfly warp_sum gives
// mean(x^2) in fp32 with no shared memory or __syncthreads, and the second pass re-reads
// the row from L1/L2. Memory-bound: one read of `in`, one write of `out`.
template <int W, typename In, typename Out>
__global__ void rmsnorm_forward_kernel(Out* out, float* rstd, const In* in, const In* weight, int64_t N, int64_t C,
                                       float eps) {
    const int64_t row = blockIdx.x * int64_t(kRowsPerBlock) + threadIdx.x / kWarpSize;
    const int lane = threadIdx.x % kWarpSize;
    if (row >= N) return;
    const In* x = in + row * C;
    const int64_t chunks = C / W;
    float ss = 0.0f;
    for (int64_t j = lane; j < chunks; j += kWarpSize) {
        float v[W];
        load_chunk<W>(x, j, v);
#pragma unroll
        for (int l = 0; l < W; ++l) ss += v[l] * v[l];
    }
    ss = warp_sum(ss);
    const float r = 1.0f / sqrtf(ss / static_cast<float>(C) + eps);
    Out* y = out + row * C;
    for (int64_t j = lane; j < chunks; j += kWarpSize) {
        float v[W], w[W], o[W];
        load_chunk<W>(x, j, v);
        load_chunk<W>(weight, j, w);
#pragma unroll
        for (int l = 0; l < W; ++l) o[l] = w[l] * (v[l] * r);
        store_chunk<W>(y, j, o);
    }
    if (lane == 0) rstd[row] = r;
}

// The bf16 path's residual step and the next norm in one kernel: residual_out =
// round(residual_in + branch) is stored, mean(x^2) is taken over the rounded values (what
// the backward will read), then out = round(weight * x * rstd). Same launch shape as the
// plain forward; the second pass re-reads residual_out, just written by the same lane,
// from L1/L2, so DRAM sees one read of each input and one write of each output.
// Each lane reads a chunk before it writes that chunk, so residual_out may be residual_in
// (the residual stream updated in place) and out may be branch.
template <int W, typename T>
__global__ void add_rmsnorm_forward_kernel(T* residual_out, T* out, float* rstd, const T* residual_in, const T* branch,
                                           const T* weight, int64_t N, int64_t C, float eps) {
    const int64_t row = blockIdx.x * int64_t(kRowsPerBlock) + threadIdx.x / kWarpSize;
    const int lane = threadIdx.x % kWarpSize;
    if (row >= N) return;
    const int64_t chunks = C / W;
    T* x = residual_out + row * C;
    float ss = 0.0f;
    for (int64_t j = lane; j < chunks; j += kWarpSize) {
        float a[W], b[W], sum[W];
        load_chunk<W>(residual_in + row * C, j, a);
        load_chunk<W>(branch + row * C, j, b);
#pragma unroll
        for (int l = 0; l < W; ++l) {
            sum[l] = to_f32(from_f32<T>(a[l] + b[l]));  // the value as stored
            ss += sum[l] * sum[l];
        }
        store_chunk<W>(x, j, sum);
    }
    ss = warp_sum(ss);
    const float r = 1.0f / sqrtf(ss / static_cast<float>(C) + eps);
    T* y = out + row * C;
    for (int64_t j = lane; j < chunks; j += kWarpSize) {
        float v[W], w[W], o[W];
        load_chunk<W>(x, j, v);
        load_chunk<W>(weight, j, w);
#pragma unroll
        for (int l = 0; l < W; ++l) o[l] = w[l] * (v[l] * r);
        store_chunk<W>(y, j, o);
    }
    if (lane == 0) rstd[row] = r;
}

// din[n, c] += r (w_c g_c - x_c r^2 mean_c'(w_c' g_c' x_c')), g = dout, r = rstd[n]:
// the derivative of w * x * r through both x and r(x). One warp per row, chunked as in
// forward; the += is done in fp32 and rounded once into din's type.
template <int W, typename In, typename G>
__global__ void rmsnorm_backward_din_kernel(In* din, const G* dout, const In* in, const In* weight, const float* rstd,
                                            int64_t N, int64_t C) {
    const int64_t row = blockIdx.x * int64_t(kRowsPerBlock) + threadIdx.x / kWarpSize;
    const int lane = threadIdx.x % kWarpSize;
    if (row >= N) return;
    const In* x = in + row * C;
    const G* g = dout + row * C;
    const int64_t chunks = C / W;
    float dot = 0.0f;
    for (int64_t j = lane; j < chunks; j += kWarpSize) {
        float xv[W], gv[W], wv[W];
        load_chunk<W>(x, j, xv);
        load_chunk<W>(g, j, gv);
        load_chunk<W>(weight, j, wv);
#pragma unroll
        for (int l = 0; l < W; ++l) dot += wv[l] * gv[l] * xv[l];
    }
    dot = warp_sum(dot);
    const float r = rstd[row];
    const float coef = r * r * dot / static_cast<float>(C);
    In* dx = din + row * C;
    for (int64_t j = lane; j < chunks; j += kWarpSize) {
        float xv[W], gv[W], wv[W], d[W];
        load_chunk<W>(x, j, xv);
        load_chunk<W>(g, j, gv);
        load_chunk<W>(weight, j, wv);
        load_chunk<W>(dx, j, d);
#pragma unroll
        for (int l = 0; l < W; ++l) d[l] += r * (wv[l] * gv[l] - xv[l] * coef);
        store_chunk<W>(dx, j, d);
    }
}

// dweight[c] += sum_n dout[n, c] * in[n, c] * rstd[n], via column_sums_accumulate.
template <typename In, typename G>
struct RmsnormWeightGradTerm {
    const G* dout;
    const In* in;
    const float* rstd;
    int64_t C;
    __device__ float operator()(int64_t n, int64_t c) const {
        return to_f32(dout[n * C + c]) * (to_f32(in[n * C + c]) * rstd[n]);
    }
};

unsigned row_blocks(int64_t N) { return static_cast<unsigned>(ceil_div<int64_t>(N, kRowsPerBlock)); }

template <typename In, typename Out>
void launch_rmsnorm_forward(cudaStream_t s, Out* out, float* rstd, const In* in, const In* weight, int64_t N,
                            int64_t C, float eps) {
    constexpr int W = kVecWidth<In>;
    if (N <= 0 || C <= 0) return;
    if (C % W == 0 && chunk_aligned<W>(out) && chunk_aligned<W>(in) && chunk_aligned<W>(weight))
        rmsnorm_forward_kernel<W><<<row_blocks(N), kRowThreads, 0, s>>>(out, rstd, in, weight, N, C, eps);
    else
        rmsnorm_forward_kernel<1><<<row_blocks(N), kRowThreads, 0, s>>>(out, rstd, in, weight, N, C, eps);
    RPT_CUDA_LAUNCH_CHECK();
}

template <typename In, typename G>
void launch_rmsnorm_backward(cudaStream_t s, In* din, float* dweight, const G* dout, const In* in, const In* weight,
                             const float* rstd, int64_t N, int64_t C) {
    constexpr int W = kVecWidth<In>;
    if (N <= 0 || C <= 0) return;
    if (C % W == 0 && chunk_aligned<W>(din) && chunk_aligned<W>(dout) && chunk_aligned<W>(in) &&
        chunk_aligned<W>(weight))
        rmsnorm_backward_din_kernel<W><<<row_blocks(N), kRowThreads, 0, s>>>(din, dout, in, weight, rstd, N, C);
    else
        rmsnorm_backward_din_kernel<1><<<row_blocks(N), kRowThreads, 0, s>>>(din, dout, in, weight, rstd, N, C);
    RPT_CUDA_LAUNCH_CHECK();
    column_sums_accumulate(s, dweight, N, C, RmsnormWeightGradTerm<In, G>{dout, in, rstd, C},
                           "rmsnorm_backward dweight");
}

}  // namespace

void rmsnorm_forward(void* stream, float* out, float* rstd, const float* in, const float* weight, int64_t N, int64_t C,
                     float eps) {
    launch_rmsnorm_forward(as_stream(stream), out, rstd, in, weight, N, C, eps);
}

void rmsnorm_backward(void* stream, float* din, float* dweight, const float* dout, const float* in, const float* weight,
                      const float* rstd, int64_t N, int64_t C) {
    launch_rmsnorm_backward(as_stream(stream), din, dweight, dout, in, weight, rstd, N, C);
}

namespace mixed {

void rmsnorm_forward(void* stream, Tensor out, Tensor rstd, Tensor in, Tensor weight, float eps) {
    const char* op = "rmsnorm_forward";
    require_dtype(op, in, DType::bf16, "in");
    require_dtype(op, weight, DType::bf16, "weight");
    require_dtype(op, rstd, DType::f32, "rstd");
    require_f32_or_bf16(op, out, "out");
    const int64_t C = weight.numel(), N = C > 0 ? in.numel() / C : 0;
    cudaStream_t s = as_stream(stream);
    if (out.dtype == DType::bf16)
        launch_rmsnorm_forward(s, as_bf16(out), as_f32(rstd), as_bf16(in), as_bf16(weight), N, C, eps);
    else
        launch_rmsnorm_forward(s, as_f32(out), as_f32(rstd), as_bf16(in), as_bf16(weight), N, C, eps);
}

void add_rmsnorm_forward(void* stream, Tensor residual_out, Tensor out, Tensor rstd, Tensor residual_in, Tensor branch,
                         Tensor weight, float eps) {
    const char* op = "add_rmsnorm_forward";
    require_dtype(op, residual_out, DType::bf16, "residual_out");
    require_dtype(op, out, DType::bf16, "out");
    require_dtype(op, rstd, DType::f32, "rstd");
    require_dtype(op, residual_in, DType::bf16, "residual_in");
    require_dtype(op, branch, DType::bf16, "branch");
    require_dtype(op, weight, DType::bf16, "weight");
    const int64_t C = weight.numel(), N = C > 0 ? residual_in.numel() / C : 0;
    if (N <= 0 || C <= 0) return;
    constexpr int W = kVecWidth<bf16>;
    const bf16 *res_in = as_bf16(residual_in), *br = as_bf16(branch), *w = as_bf16(weight);
    bf16 *res_out = as_bf16(residual_out), *y = as_bf16(out);
    cudaStream_t s = as_stream(stream);
    const bool vectorized = C % W == 0 && chunk_aligned<W>(res_out) && chunk_aligned<W>(y) &&
                            chunk_aligned<W>(res_in) && chunk_aligned<W>(br) && chunk_aligned<W>(w);
    if (vectorized)
        add_rmsnorm_forward_kernel<W><<<row_blocks(N), kRowThreads, 0, s>>>(res_out, y, as_f32(rstd), res_in, br, w,
                                                                           N, C, eps);
    else
        add_rmsnorm_forward_kernel<1><<<row_blocks(N), kRowThreads, 0, s>>>(res_out, y, as_f32(rstd), res_in, br, w,
                                                                           N, C, eps);
    RPT_CUDA_LAUNCH_CHECK();
}

void rmsnorm_backward(void* stream, Tensor din, Tensor dweight, Tensor dout, Tensor in, Tensor weight, Tensor rstd) {
    const char* op = "rmsnorm_backward";
    require_dtype(op, din, DType::bf16, "din");
    require_dtype(op, dweight, DType::f32, "dweight");
    require_f32_or_bf16(op, dout, "dout");
    require_dtype(op, in, DType::bf16, "in");
    require_dtype(op, weight, DType::bf16, "weight");
    require_dtype(op, rstd, DType::f32, "rstd");
    const int64_t C = weight.numel(), N = C > 0 ? in.numel() / C : 0;
    cudaStream_t s = as_stream(stream);
    if (dout.dtype == DType::bf16)
        launch_rmsnorm_backward(s, as_bf16(din), as_f32(dweight), as_bf16(dout), as_bf16(in), as_bf16(weight),
                                as_f32(rstd), N, C);
    else
        launch_rmsnorm_backward(s, as_bf16(din), as_f32(dweight), as_f32(dout), as_bf16(in), as_bf16(weight),
                                as_f32(rstd), N, C);
}

}  // namespace mixed

}  // namespace rpt::cuda
