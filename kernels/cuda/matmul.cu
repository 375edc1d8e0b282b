// Linear layers through cuBLASLt, fp32 (no TF32): out = in @ W^T + bias and its backward.
//
// Row-major (N, K) matrices are column-major (K, N) matrices with leading dimension K, so
// every product here is one column-major cuBLASLt call with no copies or transposes in
// memory: cuBLASLt picks a tuned tiled GEMM (its heuristic's choice cached per
// configuration, gemm.h), the bias rides in the GEMM epilogue, and backward accumulates
// into din/dweight with beta = 1.
//
// Compute type CUBLAS_COMPUTE_32F: true fp32 FMA, so results agree with the CPU twin at
// ~1e-6. (CUBLAS_COMPUTE_32F_FAST_TF32 would be ~8x faster on tensor cores but only
// ~1e-3 accurate; the bf16 path, matmul_bf16.cu, uses tensor cores properly.)
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/gemm.h"

namespace rpt::cuda {

namespace {

// An fp32 matrix operand of gemm.h.
GemmOperand f32(const float* data, int64_t ld, bool trans) { return {CUDA_R_32F, data, ld, trans}; }

// D (m x n, ld ldd) fp32 = op(A) op(B) + beta D.
GemmCall f32_gemm(GemmOperand a, GemmOperand b, float* d, int64_t ldd, int64_t m, int64_t n, int64_t k, float beta) {
    GemmCall g;
    g.a = a;
    g.b = b;
    g.d = d;
    g.ldd = ldd;
    g.m = m;
    g.n = n;
    g.k = k;
    g.beta = beta;
    return g;
}

// out[n, o] += bias[o]: the fallback when no algorithm supports the BIAS epilogue.
__global__ void add_bias_kernel(float* out, const float* bias, int64_t N, int64_t OC) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < N * OC; i += int64_t(gridDim.x) * blockDim.x)
        out[i] += bias[i % OC];
}

struct ColumnTerm {
    const float* x;
    int64_t C;
    __device__ float operator()(int64_t n, int64_t c) const { return x[n * C + c]; }
};

constexpr int kBiasThreads = 256;

}  // namespace

// out (N, OC) = in (N, IC) @ W (OC, IC)^T + bias. Column-major view: out^T (OC x N) =
// W^T (op T of the IC x OC matrix W) @ in^T (IC x N).
void matmul_forward(void* stream, float* out, const float* in, const float* weight, const float* bias, int64_t N,
                    int64_t IC, int64_t OC) {
    if (N <= 0 || OC <= 0) return;
    cudaStream_t s = as_stream(stream);
    if (IC <= 0) {  // an empty sum: out = bias (or 0)
        if (bias) {
            fill(stream, out, N * OC, 0.0f);
            add_bias_kernel<<<grid_for(N * OC, kBiasThreads), kBiasThreads, 0, s>>>(out, bias, N, OC);
            RPT_CUDA_LAUNCH_CHECK();
        } else {
            fill(stream, out, N * OC, 0.0f);
        }
        return;
    }
    // The bias rides in the epilogue when its pointer is 16-byte aligned (conservatively:
    // the epilogue's alignment needs are not exposed as a preference); otherwise, or when
    // no algorithm supports the epilogue, a separate bias kernel follows the GEMM.
    GemmCall g = f32_gemm(f32(weight, IC, /*trans=*/true), f32(in, IC, false), out, OC, OC, N, IC, 0.0f);
    if (bias && is_aligned16(bias)) {
        g.bias = bias;
        if (lt_gemm(s, g)) return;
        g.bias = nullptr;
    }
    lt_gemm_or_throw(s, g, "matmul_forward");
    if (bias) {
        add_bias_kernel<<<grid_for(N * OC, kBiasThreads), kBiasThreads, 0, s>>>(out, bias, N, OC);
        RPT_CUDA_LAUNCH_CHECK();
    }
}

// din (N, IC) += dout (N, OC) @ W (OC, IC):       din^T (IC x N) += W^T-as-stored (IC x OC) @ dout^T (OC x N)
// dweight (OC, IC) += dout^T @ in (N, IC):        dW^T (IC x OC) += in^T (IC x N) @ op T of dout^T (OC x N)
// dbias (OC) += column sums of dout: the deterministic two-stage reduction of common.cuh.
void matmul_backward(void* stream, float* din, float* dweight, float* dbias, const float* dout, const float* in,
                     const float* weight, int64_t N, int64_t IC, int64_t OC) {
    if (N <= 0 || OC <= 0) return;
    cudaStream_t s = as_stream(stream);
    if (IC > 0) {
        if (din)
            lt_gemm_or_throw(s, f32_gemm(f32(weight, IC, false), f32(dout, OC, false), din, IC, IC, N, OC, 1.0f),
                             "matmul_backward (din)");
        lt_gemm_or_throw(s, f32_gemm(f32(in, IC, false), f32(dout, OC, true), dweight, IC, IC, OC, N, 1.0f),
                         "matmul_backward (dweight)");
    }
    if (dbias) column_sums_accumulate(s, dbias, N, OC, ColumnTerm{dout, OC}, "matmul_backward dbias");
}

}  // namespace rpt::cuda
