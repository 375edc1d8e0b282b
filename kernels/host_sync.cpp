#include "kernels/host_sync.h"

#include "kernels/buffer.h"

namespace rpt {

int64_t HostSyncCounter::total() const {
    int64_t n = 0;
    for (const auto& c : counts_) n += c.load(std::memory_order_relaxed);
    return n;
}

HostSyncCounts host_sync_counts(const OpContext& ctx) {
    if (!ctx.syncs) return {};
    return {ctx.syncs->count(HostSync::readback), ctx.syncs->count(HostSync::upload),
            ctx.syncs->count(HostSync::wait)};
}

HostSyncCounts operator-(const HostSyncCounts& a, const HostSyncCounts& b) {
    return {a.readbacks - b.readbacks, a.uploads - b.uploads, a.waits - b.waits};
}

void count_host_sync(const OpContext& ctx, HostSync kind) {
    if (ctx.syncs) ctx.syncs->add(kind);
}

void copy_to_host(const OpContext& ctx, void* dst, const Tensor& src) {
    count_host_sync(ctx, HostSync::readback);
    copy_to_host(dst, src);
}

void copy_from_host(const OpContext& ctx, const Tensor& dst, const void* src) {
    count_host_sync(ctx, HostSync::upload);
    copy_from_host(dst, src);
}

}  // namespace rpt
