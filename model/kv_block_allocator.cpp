#include "model/kv_block_allocator.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

namespace rpt {

KvBlockAllocator::KvBlockAllocator(int slots, int max_blocks, int block_tokens)
    : slots_(slots),
      max_blocks_(max_blocks),
      block_tokens_(block_tokens),
      table_(size_t(slots) * size_t(max_blocks), -1),
      owned_(size_t(slots), 0),
      tokens_(size_t(slots), 0) {
    if (slots <= 0 || max_blocks <= 0 || block_tokens <= 0)
        throw std::invalid_argument("KV block allocator: slots, blocks per slot and block size must be positive");
}

int64_t KvBlockAllocator::live_tokens() const {
    int64_t sum = 0;
    for (int32_t t : tokens_) sum += t;
    return sum;
}

int KvBlockAllocator::missing(int slot, int tokens) const {
    const int need = (tokens + block_tokens_ - 1) / block_tokens_;
    return std::max(0, need - owned_[size_t(slot)]);
}

void KvBlockAllocator::add_blocks(int count) {
    for (int b = 0; b < count; ++b) free_.insert(capacity_ + b);
    capacity_ += count;
}

void KvBlockAllocator::reserve(int slot, int tokens) {
    if (slot < 0 || slot >= slots_ || tokens > max_blocks_ * block_tokens_)
        throw std::out_of_range(fmt::format("KV block allocator: slot {} asks for {} tokens ({} slots of at most {})",
                                            slot, tokens, slots_, max_blocks_ * block_tokens_));
    const int need = missing(slot, tokens);
    if (need > int(free_.size()))
        throw std::logic_error(fmt::format("KV block allocator: slot {} needs {} blocks, {} free (grow the pool first)",
                                           slot, need, free_.size()));
    int32_t* row = table_.data() + size_t(slot) * size_t(max_blocks_);
    for (int b = 0; b < need; ++b) {
        row[owned_[size_t(slot)]++] = *free_.begin();
        free_.erase(free_.begin());
    }
    tokens_[size_t(slot)] = std::max(tokens_[size_t(slot)], tokens);
    if (need > 0) ++version_;
    peak_used_ = std::max(peak_used_, used());
}

void KvBlockAllocator::release(int slot) {
    int32_t* row = table_.data() + size_t(slot) * size_t(max_blocks_);
    for (int b = 0; b < owned_[size_t(slot)]; ++b) {
        free_.insert(row[b]);
        row[b] = -1;
    }
    if (owned_[size_t(slot)] > 0) ++version_;
    owned_[size_t(slot)] = 0;
    tokens_[size_t(slot)] = 0;
}

}  // namespace rpt
