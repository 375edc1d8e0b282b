// How ZeRO splits the flat parameter buffer (model/parameters.h) over N ranks.
//
// The buffer is cut into buckets of whole layers: the embedding, each decoder layer, and
// the head (final norm, and lm_head when untied). A bucket is what the backward finishes
// at once (its gradients are final when the layer's backward returns) and what the
// forward needs at once (ZeRO-3 gathers one bucket per layer). Each bucket is padded to a
// multiple of N and split into N equal slices; rank r owns slice r of every bucket, so
// every collective of a bucket exchanges N equal pieces and the ranks' shards differ in
// size by at most one element per bucket. A rank's shard is its slices laid end to end
// (bucket order), padding included: that is the layout of the AdamW moments and of the
// reduce-scattered gradient shard.
#pragma once

#include <cstdint>
#include <vector>

#include "model/parameters.h"
#include "model/zero_hooks.h"

namespace rpt {

struct ZeroBucket {
    int64_t begin = 0, end = 0;  // in the flat buffer
    int64_t slice = 0;           // ceil((end - begin) / N): every rank's piece, padding included
    int64_t padded = 0;          // slice * N: what a collective over the bucket exchanges
    int64_t shard_offset = 0;    // where this bucket's slice sits in a rank's shard
    int64_t size() const { return end - begin; }
};

// The part of a bucket one rank owns: flat [begin, end) (possibly empty: the padding),
// stored at shard [shard_offset, shard_offset + end - begin).
struct OwnedRange {
    int64_t begin = 0, end = 0, shard_offset = 0;
};

// ZeRO-2/3's gradient slots (model/zero_runtime.h), in elements: where the backward
// writes a bucket before its reduce-scatter adds it to the shard. Every slot holds a
// whole padded bucket (the padding stays zero), so the reduce-scatter needs no staging.
// The backward writes the head first, then layers L-1 .. 0, then the embedding (a tied
// lm_head's gradient is the embedding's: written first, finished last).
struct GradientSlotSizes {
    // The embedding's slot; an untied head larger than a layer writes it first (the
    // embedding asks for it only at the end of the backward).
    int64_t embedding = 0;
    // Each of the two slots the layers rotate through (with --overlap-reduce one is on
    // its way to the other ranks while the next layer writes the other), and the head
    // when it fits (a tied head is the final norm alone).
    int64_t layer = 0;
    int64_t landing = 0;  // a reduce-scatter's output before it is added to the shard (0 on one rank)
    int64_t total() const { return embedding + 2 * layer + landing; }
};

class ZeroShards {
public:
    // ranks >= 1, 0 <= rank < ranks. One rank gives one slice per bucket: the flat layout.
    ZeroShards(const ParameterLayout& layout, int ranks, int rank);

    int ranks() const { return ranks_; }
    int rank() const { return rank_; }
    int64_t total() const { return total_; }  // P
    const std::vector<ZeroBucket>& buckets() const { return buckets_; }
    int bucket_count() const { return int(buckets_.size()); }
    // Bucket ids as model/zero_hooks.h numbers them: the embedding (0), layer l (1 + l),
    // the head (final norm, untied lm_head: the last).

    // Elements of one rank's shard: the sum of the bucket slices (the same on every rank).
    int64_t shard_size() const { return shard_size_; }
    // What `rank` (default: this one) owns of bucket b.
    OwnedRange owned(int bucket) const { return owned_by(bucket, rank_); }
    OwnedRange owned_by(int bucket, int rank) const;
    // The largest padded bucket: the staging an exchange of an unpadded bucket needs.
    int64_t max_padded() const;
    GradientSlotSizes gradient_slots() const;
    // Whether the head bucket is written in the embedding's slot (else a layer slot).
    bool head_in_embedding_slot() const;

private:
    int64_t max_layer_padded() const;  // 0 without decoder layers

    int ranks_ = 1, rank_ = 0;
    int64_t total_ = 0, shard_size_ = 0;
    std::vector<ZeroBucket> buckets_;
};

}  // namespace rpt
