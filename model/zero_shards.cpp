#include "model/zero_shards.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

namespace rpt {
namespace {

constexpr const char* kLayerPrefix = "model.layers.";

// The layer of a parameter name ("model.layers.<l>.<...>"), or -1.
int layer_of(const std::string& name) {
    const std::string prefix = kLayerPrefix;
    if (name.compare(0, prefix.size(), prefix) != 0) return -1;
    return std::stoi(name.substr(prefix.size()));
}

// The flat offset where each bucket starts: the embedding, every layer's first tensor,
// then the final norm.
std::vector<int64_t> bucket_starts(const ParameterLayout& layout) {
    int num_layers = 0;
    for (const ParameterEntry& e : layout.entries()) num_layers = std::max(num_layers, layer_of(e.name) + 1);
    std::vector<int64_t> starts(size_t(num_layers) + 2, -1);
    starts[0] = 0;
    for (const ParameterEntry& e : layout.entries()) {
        const int l = layer_of(e.name);
        if (l >= 0 && starts[size_t(l) + 1] < 0) starts[size_t(l) + 1] = e.offset;
        if (e.name == "model.norm.weight") starts[size_t(num_layers) + 1] = e.offset;
    }
    for (size_t b = 0; b < starts.size(); ++b)
        if (starts[b] < 0 || (b > 0 && starts[b] < starts[b - 1]))
            throw std::logic_error(fmt::format("ZeRO buckets: bucket {} has no start in the parameter layout", b));
    return starts;
}

}  // namespace

ZeroShards::ZeroShards(const ParameterLayout& layout, int ranks, int rank)
    : ranks_(ranks), rank_(rank), total_(layout.total()) {
    if (ranks < 1 || rank < 0 || rank >= ranks)
        throw std::invalid_argument(fmt::format("ZeRO shards: rank {} of {} ranks", rank, ranks));
    const std::vector<int64_t> starts = bucket_starts(layout);
    for (size_t b = 0; b < starts.size(); ++b) {
        ZeroBucket k;
        k.begin = starts[b];
        k.end = b + 1 < starts.size() ? starts[b + 1] : total_;
        k.slice = (k.size() + ranks - 1) / ranks;
        k.padded = k.slice * ranks;
        k.shard_offset = shard_size_;
        shard_size_ += k.slice;
        buckets_.push_back(k);
    }
}

OwnedRange ZeroShards::owned_by(int bucket, int rank) const {
    const ZeroBucket& k = buckets_.at(size_t(bucket));
    OwnedRange r;
    r.begin = std::min(k.end, k.begin + int64_t(rank) * k.slice);
    r.end = std::min(k.end, r.begin + k.slice);
    r.shard_offset = k.shard_offset;
    return r;
}

int64_t ZeroShards::max_padded() const {
    int64_t m = 0;
    for (const ZeroBucket& k : buckets_) m = std::max(m, k.padded);
    return m;
}

int64_t ZeroShards::max_layer_padded() const {
    int64_t m = 0;
    for (size_t b = 1; b + 1 < buckets_.size(); ++b) m = std::max(m, buckets_[b].padded);
    return m;
}

bool ZeroShards::head_in_embedding_slot() const {
    const int64_t layer = max_layer_padded();
    return layer > 0 && buckets_.back().padded > layer;
}

GradientSlotSizes ZeroShards::gradient_slots() const {
    GradientSlotSizes s;
    const int64_t head = buckets_.back().padded;
    s.embedding = buckets_.front().padded;
    s.layer = max_layer_padded();
    if (head_in_embedding_slot()) s.embedding = std::max(s.embedding, head);
    else s.layer = std::max(s.layer, head);
    int64_t max_slice = 0;
    for (const ZeroBucket& k : buckets_) max_slice = std::max(max_slice, k.slice);
    s.landing = ranks_ > 1 ? max_slice : 0;
    return s;
}

}  // namespace rpt
