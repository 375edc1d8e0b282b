// rpt_bench comm: bus bandwidth of the collectives data parallelism uses, over message
// sizes, on the active backend (single / MPI / NCCL). Run it under the launcher:
//   mpirun -np 4 build/rpt_bench comm                 (CPU ranks, MPI)
//   mpirun -np 8 build/rpt_bench comm --device cuda   (one GPU per rank, NCCL)
// Bus bandwidth follows nccl-tests: allreduce moves 2 (N-1)/N of the message per rank,
// reduce-scatter + all-gather (one ZeRO-1 step) the same, so the two are comparable and
// a perfect ring gives the link bandwidth for both.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/benches.h"
#include "comm/comm.h"
#include "kernels/buffer.h"
#include "kernels/context.h"
#include "model/file_io.h"

#ifdef RPT_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace rpt::bench {
namespace {

constexpr int64_t kKiB = 1024;
constexpr int64_t kMiB = 1024 * kKiB;
constexpr int64_t kBytesPerSize = 256 * kMiB;  // iterations per size: about this much traffic
constexpr int kMinIters = 5, kMaxIters = 200, kWarmupIters = 2;

void device_sync(const OpContext& ctx) {
#ifdef RPT_WITH_CUDA
    if (ctx.device == DeviceKind::cuda) cudaStreamSynchronize(static_cast<cudaStream_t>(ctx.stream));
#else
    (void)ctx;
#endif
}

// Mean seconds per call of `op` over `iters` calls, averaged over the ranks.
template <class Op>
double time_collective(Comm& comm, const OpContext& ctx, int iters, Op op) {
    for (int i = 0; i < kWarmupIters; ++i) op();
    device_sync(ctx);
    comm.barrier();
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) op();
    device_sync(ctx);
    const double local = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters;
    return comm.allreduce_sum(local) / comm.size();
}

}  // namespace

int comm(int argc, char** argv) {
    // This bench is its own main(): it owns MPI's lifetime while it runs.
    MpiRuntime runtime(&argc, &argv);
    CLI::App app{"allreduce and ZeRO-1 bus bandwidth over message sizes"};
    std::string device = "cpu", json_path;
    int64_t min_bytes = 4 * kKiB, max_bytes = 64 * kMiB;
    app.add_option("--device", device, "cpu or cuda (cuda: NCCL when built with it)");
    app.add_option("--min-bytes", min_bytes);
    app.add_option("--max-bytes", max_bytes);
    app.add_option("--json", json_path);
    CLI11_PARSE(app, argc, argv);

    if (runtime.active()) bind_local_gpu(runtime.local_rank());
    const OpContext ctx = make_context(device, false);
    std::unique_ptr<Comm> comm = make_comm(&runtime, ctx);
    const int N = comm->size();
    const bool root = comm->is_root();
    if (root)
        std::printf("comm bench: %d rank(s), backend %s, %s tensors\n%12s %8s %14s %14s\n", N, comm->backend(),
                    device_name(ctx.device), "bytes", "iters", "allreduce GB/s", "RS+AG GB/s");
    nlohmann::json rows = nlohmann::json::array();
    for (int64_t bytes = min_bytes; bytes <= max_bytes; bytes *= 4) {
        // Elements divisible by N, so the ZeRO exchange splits evenly.
        const int64_t n = std::max<int64_t>(N, bytes / int64_t(sizeof(float)) / N * N);
        const int64_t real_bytes = n * int64_t(sizeof(float));
        Buffer data(ctx.device, size_t(real_bytes), "bench message");
        Buffer shard(ctx.device, size_t(real_bytes / N), "bench shard");
        const Tensor full = data.view(DType::f32, 0, {n});
        const Tensor part = shard.view(DType::f32, 0, {n / N});
        const int iters = int(std::clamp<int64_t>(kBytesPerSize / real_bytes, kMinIters, kMaxIters));
        const double bus_factor = 2.0 * (N - 1) / N;  // 0 for one rank: nothing crosses a link
        const double t_ar = time_collective(*comm, ctx, iters, [&] { comm->allreduce_sum(full); });
        const double t_zero = time_collective(*comm, ctx, iters, [&] {
            comm->reduce_scatter_sum(full, part);
            const int64_t slot = int64_t(comm->rank()) * (n / N);
            comm->all_gather(full.rows(slot, slot + n / N), full);
        });
        const double ar_gbs = double(real_bytes) * bus_factor / t_ar * 1e-9;
        const double zero_gbs = double(real_bytes) * bus_factor / t_zero * 1e-9;
        if (root) std::printf("%12lld %8d %14.2f %14.2f\n", (long long)real_bytes, iters, ar_gbs, zero_gbs);
        rows.push_back({{"bytes", real_bytes}, {"iters", iters}, {"allreduce_seconds", t_ar},
                        {"allreduce_bus_gbs", ar_gbs}, {"zero_seconds", t_zero}, {"zero_bus_gbs", zero_gbs}});
    }
    if (root && !json_path.empty()) {
        const nlohmann::json j = {{"bench", "comm"}, {"ranks", N}, {"backend", comm->backend()},
                                  {"device", device_name(ctx.device)}, {"sizes", rows}};
        write_file_atomic(json_path, j.dump(2) + "\n");
    }
    return 0;
}

}  // namespace rpt::bench
