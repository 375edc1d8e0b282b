// cuBLASLt GEMMs with cached plans (gemm.h says what and why).
#include "kernels/cuda/gemm.h"

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "kernels/cuda/device.h"

namespace rpt::cuda {

namespace {

// cuBLASLt is much faster with scratch space for split-K and similar algorithms.
constexpr size_t kWorkspaceBytes = size_t(32) << 20;
// The strictest alignment cuBLASLt algorithms ask of a buffer.
constexpr uintptr_t kMaxAlignmentBytes = 256;

// RAII for the cuBLASLt descriptors of one plan.
struct MatmulDesc {
    cublasLtMatmulDesc_t desc = nullptr;
    MatmulDesc() { RPT_CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F)); }
    ~MatmulDesc() { (void)cublasLtMatmulDescDestroy(desc); }
    MatmulDesc(const MatmulDesc&) = delete;
    MatmulDesc& operator=(const MatmulDesc&) = delete;
    template <typename T>
    void set(cublasLtMatmulDescAttributes_t attribute, const T& value) {
        RPT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, attribute, &value, sizeof(value)));
    }
};

struct Layout {
    cublasLtMatrixLayout_t layout = nullptr;
    Layout(cudaDataType_t type, uint64_t rows, uint64_t cols, int64_t ld) {
        RPT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&layout, type, rows, cols, ld));
    }
    ~Layout() { (void)cublasLtMatrixLayoutDestroy(layout); }
    Layout(const Layout&) = delete;
    Layout& operator=(const Layout&) = delete;
};

struct Preference {
    cublasLtMatmulPreference_t pref = nullptr;
    Preference() { RPT_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref)); }
    ~Preference() { (void)cublasLtMatmulPreferenceDestroy(pref); }
    Preference(const Preference&) = delete;
    Preference& operator=(const Preference&) = delete;
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

// Everything the descriptors and the heuristic's choice depend on; pointers only through
// their alignment (the heuristic reads the bias pointer's alignment too; the pointer
// itself is set on the descriptor at each call). No bias: 0 in its slot.
using PlanKey = std::array<int64_t, 15>;

PlanKey plan_key(const GemmCall& g) {
    return {g.a.type,               g.b.type,               g.d_type,
            g.m,                    g.n,                    g.k,
            g.a.ld,                 g.b.ld,                 g.ldd,
            g.a.trans,              g.b.trans,              g.bias ? alignment_of(g.bias) : 0,
            alignment_of(g.a.data), alignment_of(g.b.data), alignment_of(g.d)};
}

// The cached part of one configuration. C is D (same layout, beta scales it).
struct GemmPlan {
    MatmulDesc desc;
    Layout a, b, d;
    bool has_algo = false;
    cublasLtMatmulAlgo_t algo{};

    explicit GemmPlan(const GemmCall& g)
        : a(g.a.type, g.a.trans ? g.k : g.m, g.a.trans ? g.m : g.k, g.a.ld),
          b(g.b.type, g.b.trans ? g.n : g.k, g.b.trans ? g.k : g.n, g.b.ld),
          d(g.d_type, g.m, g.n, g.ldd) {}
};

struct LtContext {
    CublasLtHandle handle;
    DeviceBuffer workspace{kWorkspaceBytes, "cuBLASLt workspace"};
    std::mutex mutex;  // guards plans, and each plan's descriptor during a call
    std::map<PlanKey, std::unique_ptr<GemmPlan>> plans;
};

// The per-process cuBLASLt contexts, one per (device, stream). This is the one piece of
// process-wide state in the kernels: creating a handle costs milliseconds, so it is made
// on first use and cached here, with the plans of its GEMMs. Keyed by stream too because
// a workspace must not be shared by GEMMs running concurrently on two streams. The cache
// is deliberately never destroyed (no static destructor racing the CUDA runtime's own
// teardown at exit).
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

// Builds the descriptors and asks the heuristic for its best algorithm (none: has_algo
// stays false, and is remembered as such). An fp32 bias beside a bf16 D is outside the
// combinations cuBLASLt documents (the bias type defaults to D's), so with a bias any
// refusal of the heuristic means "no epilogue algorithm" and the caller falls back to a
// bias kernel; without one, only NOT_SUPPORTED does and anything else is an error.
std::unique_ptr<GemmPlan> make_plan(LtContext& ctx, const GemmCall& g) {
    auto plan = std::make_unique<GemmPlan>(g);
    plan->desc.set(CUBLASLT_MATMUL_DESC_TRANSA, g.a.trans ? CUBLAS_OP_T : CUBLAS_OP_N);
    plan->desc.set(CUBLASLT_MATMUL_DESC_TRANSB, g.b.trans ? CUBLAS_OP_T : CUBLAS_OP_N);
    if (g.bias) {
        plan->desc.set(CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_BIAS);
        const int32_t bias_type = CUDA_R_32F;  // fp32 bias whatever D's type (for an fp32 D, the default)
        if (g.d_type != CUDA_R_32F) plan->desc.set(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, bias_type);
        plan->desc.set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, g.bias);
    }
    Preference pref;
    pref.set(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, ctx.workspace.bytes());
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, alignment_of(g.a.data));
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, alignment_of(g.b.data));
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, alignment_of(g.d));
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, alignment_of(g.d));

    cublasLtMatmulHeuristicResult_t heuristic{};
    int found = 0;
    const cublasStatus_t status =
        cublasLtMatmulAlgoGetHeuristic(ctx.handle.get(), plan->desc.desc, plan->a.layout, plan->b.layout,
                                       plan->d.layout, plan->d.layout, pref.pref, 1, &heuristic, &found);
    if (status != CUBLAS_STATUS_NOT_SUPPORTED && !g.bias) RPT_CUBLAS_CHECK(status);
    plan->has_algo = status == CUBLAS_STATUS_SUCCESS && found > 0;
    if (plan->has_algo) plan->algo = heuristic.algo;
    return plan;
}

}  // namespace

bool lt_gemm(cudaStream_t stream, const GemmCall& g) {
    LtContext& ctx = lt_context(stream);
    std::lock_guard<std::mutex> lock(ctx.mutex);
    std::unique_ptr<GemmPlan>& plan = ctx.plans[plan_key(g)];
    if (!plan) plan = make_plan(ctx, g);
    if (!plan->has_algo) return false;
    if (g.bias) plan->desc.set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, g.bias);
    const float alpha = 1.0f;
    RPT_CUBLAS_CHECK(cublasLtMatmul(ctx.handle.get(), plan->desc.desc, &alpha, g.a.data, plan->a.layout, g.b.data,
                                    plan->b.layout, &g.beta, g.d, plan->d.layout, g.d, plan->d.layout, &plan->algo,
                                    ctx.workspace.data(), ctx.workspace.bytes(), stream));
    return true;
}

void lt_gemm_or_throw(cudaStream_t stream, const GemmCall& g, const char* what) {
    if (!lt_gemm(stream, g))
        throw std::runtime_error(std::string(what) + ": cuBLASLt found no algorithm for m=" + std::to_string(g.m) +
                                 " n=" + std::to_string(g.n) + " k=" + std::to_string(g.k) + " (types " +
                                 std::to_string(g.a.type) + "/" + std::to_string(g.b.type) + " -> " +
                                 std::to_string(g.d_type) + ")");
}

size_t lt_gemm_cached_plans(cudaStream_t stream) {
    LtContext& ctx = lt_context(stream);
    std::lock_guard<std::mutex> lock(ctx.mutex);
    return ctx.plans.size();
}

}  // namespace rpt::cuda
