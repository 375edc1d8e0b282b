// Linear layers in bf16 on tensor cores: cuBLASLt bf16 x bf16 GEMMs with fp32 compute
// (CUBLAS_COMPUTE_32F: the products accumulate in fp32 on the tensor cores, HMMA on
// sm_80, HGMMA on sm_90, inside cuBLAS's kernels, not ours).
//
//   forward   out (N, OC) bf16 or f32 = in (N, IC) bf16 @ W (OC, IC)^T bf16 + bias (OC) f32
//             the bias rides in the GEMM epilogue when cuBLASLt offers one (added in
//             fp32, rounded once with the product; an fp32 bias beside a bf16 D is not a
//             documented combination, so it may not); otherwise (or for an unaligned
//             bias) the GEMM writes fp32 to scratch and one kernel adds the bias and
//             rounds, so the result is rounded once either way
//   backward  din (N, IC) bf16 += dout (N, OC) bf16 @ W: beta = 1, summed in fp32 and
//             rounded once, as the CPU emulation does
//             dweight (OC, IC) f32 += dout^T @ in: bf16 A/B, fp32 C/D, beta = 1, so
//             parameter gradients accumulate in fp32 across micro-batches
//             dbias (OC) f32 += column sums of dout: the deterministic two-stage
//             reduction of common.cuh, not the BGRADB epilogue, which overwrites instead
//             of accumulating (it would need a scratch vector and an add), sums in an
//             order cuBLAS does not promise to keep across algorithms, and is offered
//             for fewer type combinations; the reduction re-reads dout once (2 bytes per
//             element), small beside the GEMM's N*IC*OC work
//
// The column-major mapping of the row-major operands is the fp32 one (matmul.cu); the
// descriptors, layouts and algorithm of each configuration are cached (gemm.h).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_mixed_ops.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/mixed_checks.cuh"
#include "kernels/cuda/storage.cuh"

namespace rpt::cuda::mixed {

namespace {

constexpr int kBiasThreads = 256;

cudaDataType_t cuda_type(DType dtype) { return dtype == DType::bf16 ? CUDA_R_16BF : CUDA_R_32F; }

// out[n, o] = round(acc[n, o] + bias[o]), each term optional (absent: 0). The bias
// fallback and the empty-product case (IC == 0: out = bias).
template <typename T>
__global__ void bias_epilogue_kernel(T* out, const float* acc, const float* bias, int64_t N, int64_t OC) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < N * OC; i += int64_t(gridDim.x) * blockDim.x)
        out[i] = from_f32<T>((acc ? acc[i] : 0.0f) + (bias ? bias[i % OC] : 0.0f));
}

template <typename T>
void launch_bias_epilogue(cudaStream_t s, T* out, const float* acc, const float* bias, int64_t N, int64_t OC) {
    bias_epilogue_kernel<<<grid_for(N * OC, kBiasThreads), kBiasThreads, 0, s>>>(out, acc, bias, N, OC);
    RPT_CUDA_LAUNCH_CHECK();
}

void bias_epilogue(cudaStream_t s, const Tensor& out, const float* acc, const float* bias, int64_t N, int64_t OC) {
    if (out.dtype == DType::bf16) launch_bias_epilogue(s, as_bf16(out), acc, bias, N, OC);
    else launch_bias_epilogue(s, as_f32(out), acc, bias, N, OC);
}

struct Bf16ColumnTerm {
    const bf16* x;
    int64_t C;
    __device__ float operator()(int64_t n, int64_t c) const { return to_f32(x[n * C + c]); }
};

// A bf16 matrix operand of gemm.h.
GemmOperand bf16_operand(const Tensor& t, int64_t ld, bool trans) { return {CUDA_R_16BF, t.data, ld, trans}; }

// D (m x n, ld ldd) of `out`'s type = op(A) op(B) + beta D.
GemmCall gemm(GemmOperand a, GemmOperand b, const Tensor& out, int64_t ldd, int64_t m, int64_t n, int64_t k,
              float beta) {
    GemmCall g;
    g.a = a;
    g.b = b;
    g.d_type = cuda_type(out.dtype);
    g.d = out.data;
    g.ldd = ldd;
    g.m = m;
    g.n = n;
    g.k = k;
    g.beta = beta;
    return g;
}

}  // namespace

// out^T (OC x N) = op T of W^T-as-stored (IC x OC) @ in^T (IC x N), as in fp32.
void matmul_forward(void* stream, Tensor out, Tensor in, Tensor weight, Tensor bias) {
    const char* op = "matmul_forward";
    require_dtype(op, in, DType::bf16, "in");
    require_dtype(op, weight, DType::bf16, "weight");
    require_f32_or_bf16(op, out, "out");
    if (!bias.empty()) require_dtype(op, bias, DType::f32, "bias");
    const int64_t OC = weight.dim(0), IC = weight.dim(1), N = OC > 0 ? out.numel() / OC : 0;
    if (N <= 0 || OC <= 0) return;
    cudaStream_t s = as_stream(stream);
    const float* b = opt_f32(bias);
    if (IC <= 0) {  // an empty sum: out = bias (or 0)
        bias_epilogue(s, out, nullptr, b, N, OC);
        return;
    }
    GemmCall g = gemm(bf16_operand(weight, IC, /*trans=*/true), bf16_operand(in, IC, false), out, OC, OC, N, IC, 0.0f);
    if (!b) {
        lt_gemm_or_throw(s, g, op);
        return;
    }
    if (is_aligned16(b)) {
        g.bias = b;
        if (lt_gemm(s, g)) return;
        g.bias = nullptr;
    }
    // No epilogue: the fp32 product (in place when out is f32), then bias and one rounding.
    if (out.dtype == DType::f32) {
        lt_gemm_or_throw(s, g, op);
        bias_epilogue(s, out, as_f32(out), b, N, OC);
        return;
    }
    ScratchBuffer product(static_cast<size_t>(N * OC) * sizeof(float), s, "matmul_forward fp32 product");
    g.d_type = CUDA_R_32F;
    g.d = product.data();
    lt_gemm_or_throw(s, g, op);
    bias_epilogue(s, out, product.as<float>(), b, N, OC);
}

// din^T (IC x N) += W^T-as-stored (IC x OC) @ dout^T (OC x N)
// dW^T (IC x OC) += in^T (IC x N) @ op T of dout^T (OC x N)
void matmul_backward(void* stream, Tensor din, Tensor dweight, Tensor dbias, Tensor dout, Tensor in, Tensor weight) {
    const char* op = "matmul_backward";
    require_dtype(op, dout, DType::bf16, "dout");
    require_dtype(op, in, DType::bf16, "in");
    require_dtype(op, weight, DType::bf16, "weight");
    require_dtype(op, dweight, DType::f32, "dweight");
    if (!din.empty()) require_dtype(op, din, DType::bf16, "din");
    if (!dbias.empty()) require_dtype(op, dbias, DType::f32, "dbias");
    const int64_t OC = weight.dim(0), IC = weight.dim(1), N = OC > 0 ? dout.numel() / OC : 0;
    if (N <= 0 || OC <= 0) return;
    cudaStream_t s = as_stream(stream);
    if (IC > 0) {
        const GemmOperand w = bf16_operand(weight, IC, false), g = bf16_operand(dout, OC, false);
        if (!din.empty()) lt_gemm_or_throw(s, gemm(w, g, din, IC, IC, N, OC, 1.0f), "matmul_backward (din)");
        const GemmOperand x = bf16_operand(in, IC, false), g_t = bf16_operand(dout, OC, true);
        lt_gemm_or_throw(s, gemm(x, g_t, dweight, IC, IC, OC, N, 1.0f), "matmul_backward (dweight)");
    }
    if (!dbias.empty())
        column_sums_accumulate(s, as_f32(dbias), N, OC, Bf16ColumnTerm{as_bf16(dout), OC}, "matmul_backward dbias");
}

}  // namespace rpt::cuda::mixed
