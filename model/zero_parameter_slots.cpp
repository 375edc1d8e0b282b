// ZeRO-3's rotating gather slots (zero_parameter_slots.h).
#include "model/zero_parameter_slots.h"

#include <stdexcept>

#include <fmt/format.h>

#include "model/zero_hooks.h"
#include "model/zero_parameters.h"

namespace rpt {

ParameterSlots::ParameterSlots(const ZeroShards& shards, OpContext ctx, Comm* comm, CommWorker* worker,
                               const Tensor& shard, bool bf16)
    : shards_(shards), ctx_(ctx), comm_(comm), worker_(worker), shard_(shard) {
    if (shard.numel() != shards.shard_size() || shard.dtype != DType::f32)
        throw std::invalid_argument(fmt::format("ZeRO-3 parameter slots: the shard is {}, want ({}) f32",
                                                shard.describe(), shards.shard_size()));
    // The gradient slots' sizes: the same buckets share a slot the same way.
    const GradientSlotSizes sizes = shards.gradient_slots();
    const int64_t lengths[kRotating + 1] = {sizes.layer, sizes.layer, sizes.embedding};
    const size_t per_element = sizeof(float) + (bf16 ? sizeof(uint16_t) : 0);
    buffer_ = Buffer(ctx.device, size_t(2 * sizes.layer + sizes.embedding) * per_element, "ZeRO-3 parameter slots");
    size_t at = 0;
    for (int s = 0; s <= kRotating; ++s) {
        const int64_t n = lengths[s];
        if (n == 0) continue;
        f32_[s] = buffer_.view(DType::f32, at, {n});
        at += size_t(n) * sizeof(float);
    }
    for (int s = 0; bf16 && s <= kRotating; ++s) {
        const int64_t n = lengths[s];
        if (n == 0) continue;
        working_[s] = buffer_.view(DType::bf16, at, {n});
        at += size_t(n) * sizeof(uint16_t);
    }
}

int ParameterSlots::slot_of(int bucket) const {
    const int head = shards_.bucket_count() - 1;
    if (bucket == embedding_bucket() || (bucket == head && shards_.head_in_embedding_slot())) return kEmbeddingSlot;
    return (bucket - 1) % kRotating;  // layer l in slot l % 2, the head after the last layer
}

void ParameterSlots::issue(int bucket) {
    const int s = slot_of(bucket);
    holder_[s] = bucket;
    auto gather = [this, bucket, s] {
        gather_bucket_into(ctx_, shards_, comm_, shard_, bucket, f32_[s]);
        // The others' slices arrived as fp32: round the bucket into the bf16 twin.
        const int64_t n = shards_.buckets()[size_t(bucket)].size();
        if (!working_[s].empty()) ops::copy(ctx_, working_[s].rows(0, n), f32_[s].rows(0, n));
    };
    if (worker_) {
        tickets_[s] = worker_->submit(gather);
    } else {
        gather();
        tickets_[s] = 0;
    }
}

BucketWeights ParameterSlots::weights(int bucket) const {
    const int s = slot_of(bucket);
    const ZeroBucket& k = shards_.buckets()[size_t(bucket)];
    BucketWeights w;
    w.f32 = f32_[s].rows(0, k.size());
    if (!working_[s].empty()) w.working = working_[s].rows(0, k.size());
    w.begin = k.begin;
    return w;
}

BucketWeights ParameterSlots::acquire(int bucket, int prefetch) {
    if (bucket < 0 || bucket >= shards_.bucket_count())
        throw std::out_of_range(fmt::format("ZeRO-3 parameter slots: bucket {} of {}", bucket, shards_.bucket_count()));
    const int s = slot_of(bucket);
    if (holder_[s] != bucket) issue(bucket);
    if (tickets_[s] != 0) {
        worker_->wait(tickets_[s]);
        tickets_[s] = 0;
    }
    // Prefetch only into the other rotating slot: the embedding's may still be read (a
    // tied head), and this bucket's slot is about to be.
    if (worker_ && prefetch >= 0 && prefetch < shards_.bucket_count()) {
        const int p = slot_of(prefetch);
        if (p != s && p != kEmbeddingSlot && holder_[p] != prefetch) issue(prefetch);
    }
    return weights(bucket);
}

void ParameterSlots::invalidate() {
    if (worker_) worker_->wait_all();  // no gather may still write a slot
    for (int s = 0; s <= kRotating; ++s) {
        holder_[s] = -1;
        tickets_[s] = 0;
    }
}

bool ParameterSlots::holds(int bucket) const {
    const int s = slot_of(bucket);
    return holder_[s] == bucket && tickets_[s] == 0;
}

}  // namespace rpt
