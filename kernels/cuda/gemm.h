// One cuBLASLt GEMM call, fp32 compute, with its configuration cached: the matmul
// descriptor, the three matrix layouts and the heuristic's algorithm are built on the
// first call of each configuration (types, shape, transposes, leading dimensions,
// epilogue, operand alignments) and reused by every later one, so a training step's
// hundreds of GEMMs cost one cublasLtMatmul each instead of five descriptor creations, a
// heuristic query and five destructions. The cache lives in the per-(device, stream)
// cuBLASLt context beside its handle and workspace (gemm.cu); a training run has a few
// dozen distinct configurations, so it stays small.
//
// Host-only; the .cu files of this folder call it (matmul.cu for fp32, matmul_bf16.cu for
// the bf16 path).
#pragma once

#include <cstdint>

#include <cuda_runtime.h>
#include <library_types.h>

namespace rpt::cuda {

// One input matrix of a GEMM: storage type, device pointer, leading dimension, and whether
// op() transposes it (stored k x m for A, n x k for B when it does).
struct GemmOperand {
    cudaDataType_t type = CUDA_R_32F;
    const void* data = nullptr;
    int64_t ld = 0;
    bool trans = false;
};

// Column-major D (m x n, leading dimension ldd) = op(A) (m x k) @ op(B) (k x n) + beta * D
// [+ bias (m), fp32, broadcast over columns]. Accumulation and alpha/beta are fp32
// whatever the storage types (CUBLAS_COMPUTE_32F, no TF32): bf16 operands run on tensor
// cores, fp32 ones on FMA units.
struct GemmCall {
    GemmOperand a, b;
    cudaDataType_t d_type = CUDA_R_32F;
    void* d = nullptr;
    int64_t ldd = 0;
    int64_t m = 0, n = 0, k = 0;
    float beta = 0.0f;
    const float* bias = nullptr;  // optional: the BIAS epilogue
};

// Enqueues the GEMM on `stream`. Returns false (doing nothing) when cuBLASLt offers no
// algorithm for this configuration (the caller then falls back, e.g. without the bias
// epilogue); that answer is cached too.
bool lt_gemm(cudaStream_t stream, const GemmCall& g);
// The same, throwing std::runtime_error naming `what` and the shape when there is none.
void lt_gemm_or_throw(cudaStream_t stream, const GemmCall& g, const char* what);

// Plans built so far in the context of `stream` on the current device (tests: the cache
// must hit on a repeated shape).
size_t lt_gemm_cached_plans(cudaStream_t stream);

}  // namespace rpt::cuda
