// The backend-independent half of comm/: MPI's lifetime (MpiRuntime), the
// single-process backend, the backend choice (make_comm) and GPU binding by local rank.
#include "comm/comm.h"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include <fmt/format.h>

#include "comm/mpi_comm.h"
#include "kernels/buffer.h"

#ifdef RPT_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace rpt {
namespace {

constexpr int kExitError = 1;

#ifdef RPT_WITH_MPI
// Environment variables that the launchers set in every process they start: Open MPI's
// mpirun, PMI (MPICH/Hydra, srun --mpi=pmi2) and PMIx (srun --mpi=pmix, prrte).
constexpr const char* kLauncherVars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK"};
// Set to 1 to start MPI without a launcher (a one-rank MPI run, for debugging).
constexpr const char* kForceMpiVar = "RPT_MPI";

bool launched_by_mpi_launcher() {
    for (const char* var : kLauncherVars)
        if (std::getenv(var)) return true;
    const char* force = std::getenv(kForceMpiVar);
    return force && std::string(force) == "1";
}
#endif

// One process: collectives over one rank are the identity.
class SingleComm final : public Comm {
public:
    explicit SingleComm(OpContext ctx) : Comm(ctx) {}
    int rank() const override { return 0; }
    int size() const override { return 1; }
    int local_rank() const override { return 0; }
    const char* backend() const override { return "single"; }
    void allreduce_sum(const Tensor&) override {}
    void reduce_scatter_sum(const Tensor& in, const Tensor& out) override {
        check_same_count(in, out, "reduce_scatter_sum");
        ops::copy(context_for(out), out, in);
    }
    void all_gather(const Tensor& in, const Tensor& out) override {
        check_same_count(in, out, "all_gather");
        if (in.data != out.data) ops::copy(context_for(out), out, in);
    }
    void broadcast(const Tensor&, int root) override { check_root(root); }
    void barrier() override {}
    void allreduce_sum_host(double*, size_t) override {}
    void allreduce_sum_host(int64_t*, size_t) override {}
    void broadcast_host(void*, size_t, int root) override { check_root(root); }
    [[noreturn]] void abort_all(const std::string& message) override {
        std::fprintf(stderr, "rpt: error: %s\n", message.c_str());
        std::fflush(stderr);
        std::exit(kExitError);
    }

private:
    static void check_same_count(const Tensor& in, const Tensor& out, const char* what) {
        if (in.numel() != out.numel() || in.dtype != DType::f32 || out.dtype != DType::f32)
            throw std::invalid_argument(fmt::format("{}: {} and {} differ for one rank", what, in.describe(),
                                                    out.describe()));
    }
    static void check_root(int root) {
        if (root != 0) throw std::invalid_argument(fmt::format("broadcast from rank {} of 1", root));
    }
    // A CPU tensor is copied on the CPU even when the comm's context is a GPU.
    OpContext context_for(const Tensor& t) const {
        return t.device == ctx_.device ? ctx_ : OpContext{t.device, nullptr};
    }
};

}  // namespace

void Comm::allreduce_avg(const Tensor& x) {
    allreduce_sum(x);
    if (size() > 1) {
        const OpContext ctx = x.device == ctx_.device ? ctx_ : OpContext{x.device, nullptr};
        ops::scale(ctx, x, 1.0f / float(size()));
    }
}

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
#ifdef RPT_WITH_MPI
    if (!launched_by_mpi_launcher()) return;
    mpi_detail::init(argc, argv, rank_, size_, local_rank_, local_size_, thread_serialized_);
    active_ = true;
#else
    (void)argc;
    (void)argv;
    // N copies of a single-process build would each train alone and overwrite each
    // other's checkpoints: refuse instead.
    for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
        const char* value = std::getenv(var);
        if (value && std::atoi(value) > 1) {
            std::fprintf(stderr, "rpt: error: started by an MPI launcher with %s processes, but this build has no "
                                 "MPI (install libopenmpi-dev and rebuild with MPI=1)\n", value);
            std::exit(kExitError);
        }
    }
#endif
}

MpiRuntime::~MpiRuntime() {
#ifdef RPT_WITH_MPI
    if (active_) mpi_detail::finalize();
#endif
}

void MpiRuntime::abort_all(const std::string& message) const {
    if (size_ > 1) std::fprintf(stderr, "rpt: error: rank %d: %s\n", rank_, message.c_str());
    else std::fprintf(stderr, "rpt: error: %s\n", message.c_str());
    std::fflush(stderr);
#ifdef RPT_WITH_MPI
    if (active_ && size_ > 1) mpi_detail::abort_world(kExitError);
#endif
    std::exit(kExitError);
}

bool comm_built_with_mpi() {
#ifdef RPT_WITH_MPI
    return true;
#else
    return false;
#endif
}

bool comm_built_with_nccl() {
#ifdef RPT_WITH_NCCL
    return true;
#else
    return false;
#endif
}

std::string comm_build_info() {
#ifdef RPT_WITH_MPI
    std::string mpi = fmt::format("yes ({}; run under mpirun/srun for several ranks)", mpi_detail::library_version());
#else
    std::string mpi = "no (single process only; rebuild with MPI=1 after tools/install-deps.sh)";
#endif
    return fmt::format("distributed: MPI {}, NCCL {}", mpi, comm_built_with_nccl() ? "yes" : "no");
}

std::unique_ptr<Comm> make_single_comm(OpContext ctx) { return std::make_unique<SingleComm>(ctx); }

std::unique_ptr<Comm> make_comm(const MpiRuntime* runtime, OpContext ctx) {
    if (!runtime || !runtime->active()) return make_single_comm(ctx);
#ifdef RPT_WITH_MPI
#ifdef RPT_WITH_NCCL
    if (ctx.device == DeviceKind::cuda) return mpi_detail::make_nccl_comm(*runtime, ctx);
#endif
    return mpi_detail::make_mpi_comm(*runtime, ctx);
#else
    return make_single_comm(ctx);
#endif
}

void bind_local_gpu(int local_rank) {
#ifdef RPT_WITH_CUDA
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        cudaGetLastError();  // no GPU: the CPU backend takes over, as in make_context
        return;
    }
    const cudaError_t err = cudaSetDevice(local_rank % count);
    if (err != cudaSuccess)
        throw std::runtime_error(fmt::format("local rank {}: cannot select GPU {}: {}", local_rank, local_rank % count,
                                             cudaGetErrorString(err)));
#else
    (void)local_rank;
#endif
}

}  // namespace rpt
