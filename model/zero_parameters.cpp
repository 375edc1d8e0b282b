// Flat <-> shard layout conversions of ZeRO-3's parameters (zero_parameters.h).
#include "model/zero_parameters.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

namespace rpt {
namespace {

void check_sizes(const ZeroShards& shards, const Tensor& full, const Tensor& shard, const char* what) {
    if (full.numel() != shards.total() || shard.numel() != shards.shard_size())
        throw std::invalid_argument(fmt::format("{}: full has {} elements (want P = {}), shard {} (want {})", what,
                                                full.numel(), shards.total(), shard.numel(), shards.shard_size()));
}

}  // namespace

void cut_shard(const OpContext& ctx, const ZeroShards& shards, const Tensor& full, const Tensor& shard) {
    check_sizes(shards, full, shard, "cut_shard");
    for (int b = 0; b < shards.bucket_count(); ++b) {
        const ZeroBucket& k = shards.buckets()[size_t(b)];
        const OwnedRange own = shards.owned(b);
        const int64_t n = own.end - own.begin;
        if (n > 0) ops::copy(ctx, shard.rows(own.shard_offset, own.shard_offset + n), full.rows(own.begin, own.end));
        if (n < k.slice) ops::fill(ctx, shard.rows(own.shard_offset + n, own.shard_offset + k.slice), 0.0f);
    }
}

void cut_shard_host(const ZeroShards& shards, const float* full, float* shard) {
    for (int b = 0; b < shards.bucket_count(); ++b) {
        const ZeroBucket& k = shards.buckets()[size_t(b)];
        const OwnedRange own = shards.owned(b);
        float* out = shard + own.shard_offset;
        std::copy(full + own.begin, full + own.end, out);
        std::fill(out + (own.end - own.begin), out + k.slice, 0.0f);
    }
}

void gather_bucket_into(const OpContext& ctx, const ZeroShards& shards, Comm* comm, const Tensor& shard, int bucket,
                        const Tensor& slot) {
    const ZeroBucket& k = shards.buckets().at(size_t(bucket));
    if (slot.numel() < k.padded)
        throw std::invalid_argument(fmt::format("gather_bucket_into: bucket {} needs {} elements, the slot has {}",
                                                bucket, k.padded, slot.numel()));
    const Tensor mine = shard.rows(k.shard_offset, k.shard_offset + k.slice);
    if (shards.ranks() == 1) {
        ops::copy(ctx, slot.rows(0, k.slice), mine);
        return;
    }
    if (!comm) throw std::invalid_argument(fmt::format("gather_bucket_into: {} ranks and no comm", shards.ranks()));
    comm->all_gather(mine, slot.rows(0, k.padded));
}

void gather_full(const OpContext& ctx, const ZeroShards& shards, Comm* comm, const Tensor& shard, const Tensor& full,
                 const Tensor& staging) {
    check_sizes(shards, full, shard, "gather_full");
    for (int b = 0; b < shards.bucket_count(); ++b) {
        const ZeroBucket& k = shards.buckets()[size_t(b)];
        const Tensor out = full.rows(k.begin, k.end);
        if (k.padded == k.size()) {
            gather_bucket_into(ctx, shards, comm, shard, b, out);  // straight into place
            continue;
        }
        if (staging.numel() < k.padded)
            throw std::invalid_argument(fmt::format("gather_full: bucket {} is padded ({} of {}) and the staging "
                                                    "holds {} elements", b, k.size(), k.padded, staging.numel()));
        gather_bucket_into(ctx, shards, comm, shard, b, staging);
        ops::copy(ctx, out, staging.rows(0, k.size()));
    }
}

}  // namespace rpt
