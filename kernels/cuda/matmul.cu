// Linear layers through cuBLASLt, fp32 (no TF32): out = in @ W^T + bias and its backward.
//
// Row-major (N, K) matrices are column-major (K, N) matrices with leading dimension K, so
// every product here is one column-major cuBLASLt call with no copies or transposes in
// memory: cuBLASLt picks a tuned tiled GEMM (heuristic query per call), the bias rides
// in the GEMM epilogue, and backward accumulates into din/dweight with beta = 1.
//
// Compute type CUBLAS_COMPUTE_32F: true fp32 FMA, so results agree with the CPU twin at
// ~1e-6. (CUBLAS_COMPUTE_32F_FAST_TF32 would be ~8x faster on tensor cores but only
// ~1e-3 accurate; the bf16 path will use tensor cores properly.)
#include <map>
#include <mutex>
#include <utility>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_ops.h"

namespace rpt::cuda {

namespace {

// cuBLASLt is much faster with scratch space for split-K and similar algorithms.
constexpr size_t kWorkspaceBytes = size_t(32) << 20;
// The strictest alignment cuBLASLt algorithms ask of a buffer.
constexpr uintptr_t kMaxAlignmentBytes = 256;

struct LtContext {
    CublasLtHandle handle;
    DeviceBuffer workspace{kWorkspaceBytes, "cuBLASLt workspace"};
};

// The per-process cuBLASLt handle and workspace, one per (device, stream). This is the one
// piece of process-wide state in the kernels: creating a handle costs milliseconds, so it
// is made on first use and cached here. Keyed by stream too because a workspace must not
// be shared by GEMMs running concurrently on two streams. The cache is deliberately never
// destroyed (no static destructor racing the CUDA runtime's own teardown at exit).
LtContext& lt_context(cudaStream_t stream) {
    static std::mutex mutex;
    static auto* contexts = new std::map<std::pair<int, cudaStream_t>, LtContext*>();
    int device = 0;
    RPT_CUDA_CHECK(cudaGetDevice(&device));
    std::lock_guard<std::mutex> lock(mutex);
    LtContext*& slot = (*contexts)[{device, stream}];
    if (!slot) slot = new LtContext();
    return *slot;
}

// RAII for the cuBLASLt descriptors of one call.
struct MatmulDesc {
    cublasLtMatmulDesc_t desc = nullptr;
    MatmulDesc() { RPT_CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F)); }
    ~MatmulDesc() { (void)cublasLtMatmulDescDestroy(desc); }
    template <typename T>
    void set(cublasLtMatmulDescAttributes_t attribute, const T& value) {
        RPT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, attribute, &value, sizeof(value)));
    }
};

struct Layout {
    cublasLtMatrixLayout_t layout = nullptr;
    Layout(uint64_t rows, uint64_t cols, int64_t ld) {
        RPT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&layout, CUDA_R_32F, rows, cols, ld));
    }
    ~Layout() { (void)cublasLtMatrixLayoutDestroy(layout); }
};

struct Preference {
    cublasLtMatmulPreference_t pref = nullptr;
    Preference() { RPT_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref)); }
    ~Preference() { (void)cublasLtMatmulPreferenceDestroy(pref); }
    template <typename T>
    void set(cublasLtMatmulPreferenceAttributes_t attribute, const T& value) {
        RPT_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attribute, &value, sizeof(value)));
    }
};

// The largest power of two (up to 256) dividing the address: tensor views into a flat
// buffer need not be 256-byte aligned, and telling cuBLASLt the real alignment keeps it
// from choosing an algorithm that assumes more.
uint32_t alignment_of(const void* p) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    if (a == 0) return static_cast<uint32_t>(kMaxAlignmentBytes);
    const uintptr_t lowest_bit = a & (~a + 1);
    return static_cast<uint32_t>(lowest_bit < kMaxAlignmentBytes ? lowest_bit : kMaxAlignmentBytes);
}

// Column-major D (m x n, ld ldd) = op(A) (m x k) @ op(B) (k x n) + beta * D [+ bias (m)].
// Returns false (doing nothing) when cuBLASLt offers no algorithm for this configuration.
bool lt_matmul(cudaStream_t stream, float* d, const float* a, const float* b, const float* bias, int64_t m, int64_t n,
               int64_t k, bool trans_a, bool trans_b, int64_t lda, int64_t ldb, int64_t ldd, float beta) {
    LtContext& ctx = lt_context(stream);
    MatmulDesc desc;
    desc.set(CUBLASLT_MATMUL_DESC_TRANSA, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N);
    desc.set(CUBLASLT_MATMUL_DESC_TRANSB, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N);
    if (bias) {
        desc.set(CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_BIAS);
        desc.set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias);
    }
    const Layout layout_a(trans_a ? k : m, trans_a ? m : k, lda);
    const Layout layout_b(trans_b ? n : k, trans_b ? k : n, ldb);
    const Layout layout_d(m, n, ldd);

    Preference pref;
    pref.set(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, ctx.workspace.bytes());
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, alignment_of(a));
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, alignment_of(b));
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, alignment_of(d));
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, alignment_of(d));

    cublasLtMatmulHeuristicResult_t heuristic{};
    int found = 0;
    const cublasStatus_t status =
        cublasLtMatmulAlgoGetHeuristic(ctx.handle.get(), desc.desc, layout_a.layout, layout_b.layout, layout_d.layout,
                                       layout_d.layout, pref.pref, 1, &heuristic, &found);
    if (status == CUBLAS_STATUS_NOT_SUPPORTED || (status == CUBLAS_STATUS_SUCCESS && found == 0)) return false;
    RPT_CUBLAS_CHECK(status);

    const float alpha = 1.0f;
    RPT_CUBLAS_CHECK(cublasLtMatmul(ctx.handle.get(), desc.desc, &alpha, a, layout_a.layout, b, layout_b.layout, &beta,
                                    d, layout_d.layout, d, layout_d.layout, &heuristic.algo, ctx.workspace.data(),
                                    ctx.workspace.bytes(), stream));
    return true;
}

void lt_matmul_or_throw(cudaStream_t stream, float* d, const float* a, const float* b, int64_t m, int64_t n, int64_t k,
                        bool trans_a, bool trans_b, int64_t lda, int64_t ldb, int64_t ldd, float beta,
                        const char* what) {
    if (!lt_matmul(stream, d, a, b, nullptr, m, n, k, trans_a, trans_b, lda, ldb, ldd, beta))
        throw std::runtime_error(std::string(what) + ": cuBLASLt found no fp32 algorithm for m=" + std::to_string(m) +
                                 " n=" + std::to_string(n) + " k=" + std::to_string(k));
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
    if (bias && is_aligned16(bias) &&
        lt_matmul(s, out, weight, in, bias, OC, N, IC, /*trans_a=*/true, /*trans_b=*/false, IC, IC, OC, 0.0f))
        return;
    lt_matmul_or_throw(s, out, weight, in, OC, N, IC, true, false, IC, IC, OC, 0.0f, "matmul_forward");
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
            lt_matmul_or_throw(s, din, weight, dout, IC, N, OC, false, false, IC, OC, IC, 1.0f,
                               "matmul_backward (din)");
        lt_matmul_or_throw(s, dweight, in, dout, IC, OC, N, false, true, IC, OC, IC, 1.0f,
                           "matmul_backward (dweight)");
    }
    if (dbias) column_sums_accumulate(s, dbias, N, OC, ColumnTerm{dout, OC}, "matmul_backward dbias");
}

}  // namespace rpt::cuda
