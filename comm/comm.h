// Communication between the ranks of a data-parallel run (DESIGN §6).
//
// `Comm` is the one interface the trainers and the optimizer see: rank/size, the
// collectives data parallelism and ZeRO-1 need (allreduce, reduce-scatter, all-gather,
// broadcast, barrier) on fp32 tensors, small host reductions for metrics, and
// abort_all for failures. Three backends implement it:
//   single  one process; every collective is the identity (or a copy)
//   mpi     OpenMPI on CPU tensors (CUDA tensors are staged through host memory)
//   nccl    NCCL on CUDA tensors, MPI for bootstrap, host helpers and CPU tensors
// MPI's lifetime belongs to one MpiRuntime created in main(); make_comm() picks the
// backend from the build, the launcher and the device.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "kernels/ops.h"
#include "kernels/tensor.h"

namespace rpt {

class Comm {
public:
    virtual ~Comm() = default;

    virtual int rank() const = 0;
    virtual int size() const = 0;
    virtual int local_rank() const = 0;    // rank among the processes of this node
    virtual const char* backend() const = 0;  // "single", "mpi" or "nccl"
    bool is_root() const { return rank() == 0; }

    // ---- fp32 tensors (on the device of the comm's OpContext, or the CPU) ---------------
    // Collectives are called by every rank in the same order with the same shapes.
    virtual void allreduce_sum(const Tensor& x) = 0;  // in place
    // In place: the sum over ranks divided by size() (the mean of per-rank gradients).
    void allreduce_avg(const Tensor& x);
    // out (n) = rank's n-element slice of the sum over ranks of in (size() * n).
    // `out` must not overlap `in`.
    virtual void reduce_scatter_sum(const Tensor& in, const Tensor& out) = 0;
    // out (size() * n) = every rank's `in` (n) in rank order. `in` may be this rank's
    // slice of `out` (in place).
    virtual void all_gather(const Tensor& in, const Tensor& out) = 0;
    virtual void broadcast(const Tensor& x, int root) = 0;
    virtual void barrier() = 0;
    // Whether a second thread may make this comm's calls while the first computes (one
    // thread at a time: MPI_THREAD_SERIALIZED), as the ZeRO communication thread does.
    virtual bool allows_worker_thread() const { return true; }

    // ---- host helpers (metrics, counters, flags) ---------------------------------------
    virtual void allreduce_sum_host(double* values, size_t count) = 0;
    virtual void allreduce_sum_host(int64_t* values, size_t count) = 0;
    virtual void broadcast_host(void* bytes, size_t count, int root) = 0;
    double allreduce_sum(double value) {
        allreduce_sum_host(&value, 1);
        return value;
    }

    // Prints "rpt: error: rank N: message" and ends every rank with a non-zero status
    // within seconds (MPI_Abort), so no rank is left waiting in a collective.
    [[noreturn]] virtual void abort_all(const std::string& message) = 0;

protected:
    explicit Comm(OpContext ctx) : ctx_(ctx) {}
    OpContext ctx_;  // where allreduce_avg scales, and the compute stream NCCL orders against
};

// Owns MPI's lifetime (MPI_Init_thread asking for MPI_THREAD_SERIALIZED, for ZeRO's
// communication thread, in the constructor, MPI_Finalize in the
// destructor). MPI starts only in a build with MPI and only when a launcher started this
// process (mpirun/mpiexec, srun with PMI/PMIx) or RPT_MPI=1 asks for it: a plain
// `build/rpt` run stays a single process without MPI's singleton start-up.
class MpiRuntime {
public:
    MpiRuntime(int* argc, char*** argv);
    ~MpiRuntime();
    MpiRuntime(const MpiRuntime&) = delete;
    MpiRuntime& operator=(const MpiRuntime&) = delete;

    bool active() const { return active_; }  // MPI initialised
    int rank() const { return rank_; }
    int size() const { return size_; }
    int local_rank() const { return local_rank_; }
    int local_size() const { return local_size_; }
    // MPI granted MPI_THREAD_SERIALIZED (or more): a communication thread may call it.
    bool thread_serialized() const { return thread_serialized_; }

    // Prints "rpt: error: rank N: message" (or "rpt: error: message" for one process)
    // and ends the run: MPI_Abort across ranks when several run, exit(1) otherwise.
    [[noreturn]] void abort_all(const std::string& message) const;

private:
    bool active_ = false;
    int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
    bool thread_serialized_ = false;
};

// Whether the build has MPI / NCCL, e.g. "MPI: yes (Open MPI v4.1.4), NCCL: no".
std::string comm_build_info();
bool comm_built_with_mpi();
bool comm_built_with_nccl();

// The communicator for a run on `ctx`'s device: NCCL for CUDA tensors when built with it,
// MPI when MPI is running, the single-process backend otherwise. `runtime` may be null
// (single process).
std::unique_ptr<Comm> make_comm(const MpiRuntime* runtime, OpContext ctx);
std::unique_ptr<Comm> make_single_comm(OpContext ctx);

// Makes GPU (local_rank mod visible GPUs) current, before any CUDA allocation: ranks on a
// node spread over its GPUs. No-op without CUDA or without GPUs.
void bind_local_gpu(int local_rank);

}  // namespace rpt
