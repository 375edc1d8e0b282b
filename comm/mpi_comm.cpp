// The MPI backend: collectives over MPI_COMM_WORLD (duplicated, so no other library's
// messages mix with ours) on CPU fp32 tensors. A CUDA tensor is staged through host
// memory, which is correct but slow: GPU runs use the NCCL backend when it is built.
// Errors come back as exceptions (MPI_ERRORS_RETURN) so main() can report the rank and
// the message before aborting every rank.
#ifdef RPT_WITH_MPI

#include "comm/mpi_comm.h"

#include <mpi.h>

#include <climits>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "kernels/buffer.h"

namespace rpt::mpi_detail {
namespace {

// MPI counts are ints: larger allreduces go in slices of this many elements.
constexpr int64_t kMaxCount = int64_t(1) << 30;

void check(int rc, const char* what) {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    throw std::runtime_error(fmt::format("{} failed: {}", what, std::string(text, size_t(len))));
}

int checked_count(int64_t n, const char* what) {
    if (n > INT_MAX) throw std::runtime_error(fmt::format("{}: {} elements exceed MPI's int count", what, n));
    return int(n);
}

void require_f32(const Tensor& t, const char* what) {
    if (t.dtype != DType::f32) throw std::invalid_argument(fmt::format("{}: {} is not fp32", what, t.describe()));
}

// Host memory for a tensor: the tensor itself on the CPU, a staged copy for CUDA.
class HostStage {
public:
    HostStage(const Tensor& t, bool load) : tensor_(t) {
        if (t.device == DeviceKind::cpu) {
            data_ = t.f32();
            return;
        }
        staged_.resize(size_t(t.numel()));
        if (load) copy_to_host(staged_.data(), t);
        data_ = staged_.data();
    }
    float* data() const { return data_; }
    void store() const {
        if (tensor_.device != DeviceKind::cpu) copy_from_host(tensor_, staged_.data());
    }

private:
    Tensor tensor_;
    std::vector<float> staged_;
    float* data_ = nullptr;
};

class MpiComm final : public Comm {
public:
    MpiComm(const MpiRuntime& runtime, OpContext ctx)
        : Comm(ctx), local_rank_(runtime.local_rank()), serialized_(runtime.thread_serialized()) {
        check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
        check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
        check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
        check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
    }
    // While an exception unwinds, peers may be blocked in a collective and main() is
    // about to MPI_Abort: skip the free, which need not return then.
    ~MpiComm() override {
        if (std::uncaught_exceptions() == 0) MPI_Comm_free(&comm_);
    }

    int rank() const override { return rank_; }
    int size() const override { return size_; }
    int local_rank() const override { return local_rank_; }
    bool allows_worker_thread() const override { return serialized_; }
    const char* backend() const override { return "mpi"; }

    void allreduce_sum(const Tensor& x) override {
        require_f32(x, "allreduce_sum");
        HostStage h(x, true);
        for (int64_t at = 0, n = x.numel(); at < n; at += kMaxCount) {
            const int count = int(std::min(kMaxCount, n - at));
            check(MPI_Allreduce(MPI_IN_PLACE, h.data() + at, count, MPI_FLOAT, MPI_SUM, comm_), "MPI_Allreduce");
        }
        h.store();
    }

    void reduce_scatter_sum(const Tensor& in, const Tensor& out) override {
        require_f32(in, "reduce_scatter_sum");
        require_f32(out, "reduce_scatter_sum");
        if (in.numel() != out.numel() * size_)
            throw std::invalid_argument(fmt::format("reduce_scatter_sum: {} is not {} x {}", in.describe(), size_,
                                                    out.describe()));
        HostStage hin(in, true), hout(out, false);
        check(MPI_Reduce_scatter_block(hin.data(), hout.data(), checked_count(out.numel(), "reduce_scatter_sum"),
                                       MPI_FLOAT, MPI_SUM, comm_),
              "MPI_Reduce_scatter_block");
        hout.store();
    }

    void all_gather(const Tensor& in, const Tensor& out) override {
        require_f32(in, "all_gather");
        require_f32(out, "all_gather");
        const int64_t n = in.numel();
        if (out.numel() != n * size_)
            throw std::invalid_argument(fmt::format("all_gather: {} is not {} x {}", out.describe(), size_,
                                                    in.describe()));
        const int count = checked_count(n, "all_gather");
        const bool in_place = in.data == static_cast<void*>(out.f32() + n * rank_);
        HostStage hout(out, in_place);
        if (in_place) {
            check(MPI_Allgather(MPI_IN_PLACE, 0, MPI_FLOAT, hout.data(), count, MPI_FLOAT, comm_), "MPI_Allgather");
        } else {
            HostStage hin(in, true);
            check(MPI_Allgather(hin.data(), count, MPI_FLOAT, hout.data(), count, MPI_FLOAT, comm_), "MPI_Allgather");
        }
        hout.store();
    }

    void broadcast(const Tensor& x, int root) override {
        require_f32(x, "broadcast");
        HostStage h(x, rank_ == root);
        check(MPI_Bcast(h.data(), checked_count(x.numel(), "broadcast"), MPI_FLOAT, root, comm_), "MPI_Bcast");
        h.store();
    }

    void barrier() override { check(MPI_Barrier(comm_), "MPI_Barrier"); }

    void allreduce_sum_host(double* values, size_t count) override {
        check(MPI_Allreduce(MPI_IN_PLACE, values, checked_count(int64_t(count), "allreduce"), MPI_DOUBLE, MPI_SUM,
                            comm_),
              "MPI_Allreduce");
    }
    void allreduce_sum_host(int64_t* values, size_t count) override {
        check(MPI_Allreduce(MPI_IN_PLACE, values, checked_count(int64_t(count), "allreduce"), MPI_INT64_T, MPI_SUM,
                            comm_),
              "MPI_Allreduce");
    }
    void broadcast_host(void* bytes, size_t count, int root) override {
        check(MPI_Bcast(bytes, checked_count(int64_t(count), "broadcast"), MPI_BYTE, root, comm_), "MPI_Bcast");
    }

    [[noreturn]] void abort_all(const std::string& message) override {
        std::fprintf(stderr, "rpt: error: rank %d: %s\n", rank_, message.c_str());
        std::fflush(stderr);
        abort_world(1);
    }

private:
    MPI_Comm comm_ = MPI_COMM_NULL;
    int rank_ = 0, size_ = 1, local_rank_ = 0;
    bool serialized_ = false;  // MPI_THREAD_SERIALIZED granted
};

}  // namespace

void init(int* argc, char*** argv, int& rank, int& size, int& local_rank, int& local_size, bool& serialized) {
    int provided = 0;
    // One thread at a time calls MPI: the main thread, or ZeRO's communication thread
    // while the main one computes (OpenMP threads never call it). A library that gives
    // less makes --overlap-reduce run its collectives inline (model/zero_runtime.cpp).
    check(MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
    serialized = provided >= MPI_THREAD_SERIALIZED;
    check(MPI_Comm_rank(MPI_COMM_WORLD, &rank), "MPI_Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &size), "MPI_Comm_size");
    MPI_Comm node = MPI_COMM_NULL;
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node),
          "MPI_Comm_split_type");
    check(MPI_Comm_rank(node, &local_rank), "MPI_Comm_rank");
    check(MPI_Comm_size(node, &local_size), "MPI_Comm_size");
    MPI_Comm_free(&node);
}

void finalize() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
}

void abort_world(int exit_code) {
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::exit(exit_code);  // MPI_Abort does not return; this satisfies [[noreturn]]
}

std::string library_version() {
    char text[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(text, &len);
    std::string v(text, size_t(len));
    // Open MPI's string is "Open MPI v4.1.4, package: ...": keep the first clause.
    const size_t comma = v.find(',');
    if (comma != std::string::npos) v.resize(comma);
    while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
    return v;
}

std::unique_ptr<Comm> make_mpi_comm(const MpiRuntime& runtime, OpContext ctx) {
    return std::make_unique<MpiComm>(runtime, ctx);
}

}  // namespace rpt::mpi_detail

#endif  // RPT_WITH_MPI
