// ZeRO-3's gather slots (issue 15): where the forward and backward read a bucket's
// weights when the model keeps only its parameter shard (model/zero_parameters.h).
//
// Three slots, the sizes of ZeRO-2's gradient slots (GradientSlotSizes: every slot holds
// a whole padded bucket, so the all-gather lands in place):
//   - the embedding's, which a tied head reads until the end of the backward (lm_head
//     is the embedding), and an untied head larger than a layer takes over after the
//     embedding forward (the embedding backward reads no weights);
//   - two rotating ones for the layers (and the head when it fits): consecutive buckets
//     alternate, so with a CommWorker the next bucket's gather runs on the worker while
//     the current one computes, into the slot whose bucket is finished.
// In bf16 each slot has a bf16 twin, rounded from the fp32 gather (the same bits as a
// full working copy rounded from the full parameters); the fp32 slot still serves the
// biases and the LM head, which the bf16 path reads in fp32.
//
// The ZeroRuntime owns them once the model shards its parameters
// (ZeroRuntime::shard_parameters), on its CommWorker.
#pragma once

#include <cstdint>

#include "comm/comm.h"
#include "kernels/buffer.h"
#include "kernels/ops.h"
#include "model/comm_worker.h"
#include "model/zero_hooks.h"
#include "model/zero_shards.h"

namespace rpt {

class ParameterSlots {
public:
    // `shard` (shard_size fp32): this rank's parameters, read by every gather (not owned;
    // stays valid and in place). `comm` may be null on one rank; `worker` (not owned, may
    // be null: gathers run inline) must be the one the rank's other bucket collectives
    // use, so that every rank issues them in the same order.
    ParameterSlots(const ZeroShards& shards, OpContext ctx, Comm* comm, CommWorker* worker, const Tensor& shard,
                   bool bf16);

    // Bucket b's current weights, gathered into its slot unless the slot still holds them.
    // `prefetch` (a bucket, or -1): issued ahead on the worker when it goes to the other
    // rotating slot, which the caller must be done reading. Collective: every rank
    // acquires the same buckets in the same order, with the same prefetches.
    BucketWeights acquire(int bucket, int prefetch = -1);
    // The shard changed (an update): no slot holds current weights any more.
    void invalidate();
    // Whether bucket b's current weights sit in its slot (no collective needed).
    bool holds(int bucket) const;
    size_t bytes() const { return buffer_.bytes(); }
    const Tensor& shard() const { return shard_; }

private:
    static constexpr int kRotating = 2;
    static constexpr int kEmbeddingSlot = kRotating;  // the slot index of the embedding's
    int slot_of(int bucket) const;
    void issue(int bucket);
    BucketWeights weights(int bucket) const;

    const ZeroShards& shards_;
    OpContext ctx_;
    Comm* comm_ = nullptr;
    CommWorker* worker_ = nullptr;
    Tensor shard_;  // (shard_size) fp32
    Buffer buffer_;
    Tensor f32_[kRotating + 1];      // (padded slot size) fp32 each
    Tensor working_[kRotating + 1];  // (padded slot size) bf16 each, empty in f32
    int holder_[kRotating + 1] = {-1, -1, -1};       // the bucket each slot holds, -1 none
    int64_t tickets_[kRotating + 1] = {0, 0, 0};     // the worker ticket of its gather, 0 done
};

}  // namespace rpt
