// Host synchronisation points, counted per context. A training step's kernels run in one
// stream; the host waits for the device only where it must read a result (a readback),
// hand over host data (an upload: cudaMemcpy from pageable memory waits for the stream
// first) or explicitly wait (synchronize). Code inside a step makes these through the
// counted calls below, so a test can state how many a step makes -- on the CPU backend
// too, where the same calls are plain memory copies: the count is the one the GPU path
// would make. kernels/cuda/README.md ("Host synchronisation") lists each remaining one.
//
// The counter belongs to the context (OpContext::syncs, made by make_context): copies of
// a context share it, two contexts never do; a context without one counts nothing.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "kernels/ops.h"

namespace rpt {

enum class HostSync : uint8_t {
    readback,  // device -> host copy of a result
    upload,    // host -> device copy (waits for the stream before copying)
    wait,      // an explicit stream synchronisation
    count,
};

class HostSyncCounter {
public:
    void add(HostSync kind) { counts_[size_t(kind)].fetch_add(1, std::memory_order_relaxed); }
    int64_t count(HostSync kind) const { return counts_[size_t(kind)].load(std::memory_order_relaxed); }
    int64_t total() const;

private:
    std::array<std::atomic<int64_t>, size_t(HostSync::count)> counts_{};
};

// A snapshot of a counter (all zero for a context without one), for differences.
struct HostSyncCounts {
    int64_t readbacks = 0, uploads = 0, waits = 0;
    int64_t total() const { return readbacks + uploads + waits; }
};
HostSyncCounts host_sync_counts(const OpContext& ctx);
HostSyncCounts operator-(const HostSyncCounts& a, const HostSyncCounts& b);

// Counts one synchronisation point of `kind` on ctx's counter (if any).
void count_host_sync(const OpContext& ctx, HostSync kind);

// copy_to_host / copy_from_host (kernels/buffer.h), counted on ctx as a readback or an upload.
void copy_to_host(const OpContext& ctx, void* dst, const Tensor& src);
void copy_from_host(const OpContext& ctx, const Tensor& dst, const void* src);

}  // namespace rpt
