// The NCCL backend for CUDA tensors. MPI bootstraps it: rank 0 creates the NCCL unique
// id and MPI_Bcast hands it to every rank; each rank already selected its GPU from its
// node-local rank (bind_local_gpu). Collectives run on a dedicated stream, ordered after
// the compute stream's pending work with an event and making the compute stream wait for
// their completion with another, so the host never blocks on a device collective.
// Host helpers (metrics, barrier) and CPU tensors go through the MPI backend.
// Compiled only when CUDA and the NCCL headers are present (RPT_WITH_NCCL).
#ifdef RPT_WITH_NCCL

#include <cstdlib>
#include <cuda_runtime.h>
#include <nccl.h>

#include <exception>
#include <stdexcept>

#include <fmt/format.h>

#include "comm/mpi_comm.h"

namespace rpt::mpi_detail {
namespace {

void check_nccl(ncclResult_t rc, const char* what) {
    if (rc != ncclSuccess) throw std::runtime_error(fmt::format("{} failed: {}", what, ncclGetErrorString(rc)));
}

void check_cuda(cudaError_t rc, const char* what) {
    if (rc != cudaSuccess) throw std::runtime_error(fmt::format("{} failed: {}", what, cudaGetErrorString(rc)));
}

void require_f32(const Tensor& t, const char* what) {
    if (t.dtype != DType::f32) throw std::invalid_argument(fmt::format("{}: {} is not fp32", what, t.describe()));
}

class NcclComm final : public Comm {
public:
    NcclComm(const MpiRuntime& runtime, OpContext ctx) : Comm(ctx), host_(make_mpi_comm(runtime, ctx)) {
        ncclUniqueId id{};
        if (host_->rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
        host_->broadcast_host(&id, sizeof(id), 0);
        check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate (NCCL)");
        check_cuda(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming), "cudaEventCreate");
        check_cuda(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming), "cudaEventCreate");
        check_nccl(ncclCommInitRank(&comm_, host_->size(), id, host_->rank()), "ncclCommInitRank");
    }
    ~NcclComm() override {
        // Destroy waits for pending collectives; while an exception unwinds (main() is
        // about to abort every rank) they may never complete, so abort instead.
        if (comm_) std::uncaught_exceptions() == 0 ? ncclCommDestroy(comm_) : ncclCommAbort(comm_);
        if (ready_) cudaEventDestroy(ready_);
        if (done_) cudaEventDestroy(done_);
        if (stream_) cudaStreamDestroy(stream_);
    }

    int rank() const override { return host_->rank(); }
    int size() const override { return host_->size(); }
    int local_rank() const override { return host_->local_rank(); }
    const char* backend() const override { return "nccl"; }
    // CPU tensors and host helpers go through MPI, so its thread level decides.
    bool allows_worker_thread() const override { return host_->allows_worker_thread(); }

    void allreduce_sum(const Tensor& x) override {
        require_f32(x, "allreduce_sum");
        if (x.device != DeviceKind::cuda) return host_->allreduce_sum(x);
        ordered("ncclAllReduce", [&](cudaStream_t s) {
            return ncclAllReduce(x.data, x.data, size_t(x.numel()), ncclFloat32, ncclSum, comm_, s);
        });
    }

    void reduce_scatter_sum(const Tensor& in, const Tensor& out) override {
        require_f32(in, "reduce_scatter_sum");
        require_f32(out, "reduce_scatter_sum");
        if (in.device != DeviceKind::cuda || out.device != DeviceKind::cuda) return host_->reduce_scatter_sum(in, out);
        if (in.numel() != out.numel() * size())
            throw std::invalid_argument(fmt::format("reduce_scatter_sum: {} is not {} x {}", in.describe(), size(),
                                                    out.describe()));
        ordered("ncclReduceScatter", [&](cudaStream_t s) {
            return ncclReduceScatter(in.data, out.data, size_t(out.numel()), ncclFloat32, ncclSum, comm_, s);
        });
    }

    void all_gather(const Tensor& in, const Tensor& out) override {
        require_f32(in, "all_gather");
        require_f32(out, "all_gather");
        if (in.device != DeviceKind::cuda || out.device != DeviceKind::cuda) return host_->all_gather(in, out);
        if (out.numel() != in.numel() * size())
            throw std::invalid_argument(fmt::format("all_gather: {} is not {} x {}", out.describe(), size(),
                                                    in.describe()));
        // In place when `in` is this rank's slice of `out`, which NCCL supports as is.
        ordered("ncclAllGather", [&](cudaStream_t s) {
            return ncclAllGather(in.data, out.data, size_t(in.numel()), ncclFloat32, comm_, s);
        });
    }

    void broadcast(const Tensor& x, int root) override {
        require_f32(x, "broadcast");
        if (x.device != DeviceKind::cuda) return host_->broadcast(x, root);
        ordered("ncclBroadcast", [&](cudaStream_t s) {
            return ncclBroadcast(x.data, x.data, size_t(x.numel()), ncclFloat32, root, comm_, s);
        });
    }

    // A barrier also waits for this rank's device collectives, so that what follows
    // (e.g. rank 0 writing a checkpoint) sees their results.
    void barrier() override {
        check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize (NCCL)");
        host_->barrier();
    }
    void allreduce_sum_host(double* values, size_t count) override { host_->allreduce_sum_host(values, count); }
    void allreduce_sum_host(int64_t* values, size_t count) override { host_->allreduce_sum_host(values, count); }
    void broadcast_host(void* bytes, size_t count, int root) override { host_->broadcast_host(bytes, count, root); }

    [[noreturn]] void abort_all(const std::string& message) override {
        // Frees the GPU side of any collective this rank's peers are stuck in.
        if (comm_) ncclCommAbort(comm_);
        comm_ = nullptr;
        host_->abort_all(message);
        std::abort();  // not reached: abort_all is [[noreturn]] but called through a pointer
    }

private:
    // Runs `enqueue` on the NCCL stream after the compute stream's work so far, and
    // makes later compute wait for it.
    template <class Enqueue>
    void ordered(const char* what, Enqueue enqueue) {
        const auto compute = static_cast<cudaStream_t>(ctx_.stream);
        check_cuda(cudaEventRecord(ready_, compute), "cudaEventRecord");
        check_cuda(cudaStreamWaitEvent(stream_, ready_, 0), "cudaStreamWaitEvent");
        check_nccl(enqueue(stream_), what);
        check_cuda(cudaEventRecord(done_, stream_), "cudaEventRecord");
        check_cuda(cudaStreamWaitEvent(compute, done_, 0), "cudaStreamWaitEvent");
    }

    std::unique_ptr<Comm> host_;
    ncclComm_t comm_ = nullptr;
    cudaStream_t stream_ = nullptr;
    cudaEvent_t ready_ = nullptr, done_ = nullptr;
};

}  // namespace

std::unique_ptr<Comm> make_nccl_comm(const MpiRuntime& runtime, OpContext ctx) {
    return std::make_unique<NcclComm>(runtime, ctx);
}

}  // namespace rpt::mpi_detail

#endif  // RPT_WITH_NCCL
