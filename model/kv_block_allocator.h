// The host-side allocator of the paged KV cache's suffix blocks (kernels/paged_kv.h):
// which pool blocks each slot owns, in token order, as its block table row. A slot is
// given a block when its length crosses a block boundary and gives all of its blocks
// back when it finishes, so the blocks in use follow the tokens still live.
//
// Deterministic: the free list hands out the lowest free block first, so the same
// sequence of requests always builds the same table (and the same pool rows are
// written), whatever happened in earlier rollouts of the process.
//
// The allocator only does bookkeeping; the pool's memory is the KV cache's
// (model/kv_cache.h), which adds blocks when the free list runs short.
#pragma once

#include <cstdint>
#include <set>
#include <vector>

namespace rpt {

class KvBlockAllocator {
public:
    KvBlockAllocator() = default;
    // `slots` slots of up to max_blocks blocks of block_tokens tokens each; the pool
    // starts with no blocks (add_blocks).
    KvBlockAllocator(int slots, int max_blocks, int block_tokens);

    int slots() const { return slots_; }
    int max_blocks() const { return max_blocks_; }
    int block_tokens() const { return block_tokens_; }
    int capacity() const { return capacity_; }  // blocks in the pool
    int used() const { return capacity_ - int(free_.size()); }
    int peak_used() const { return peak_used_; }
    int64_t live_tokens() const;  // tokens the slots hold now (what reserve() was told)

    // Blocks slot s still needs to hold `tokens` tokens.
    int missing(int slot, int tokens) const;
    // Adds blocks [capacity, capacity + count) to the free list.
    void add_blocks(int count);
    // Gives slot s the lowest free blocks until it holds `tokens` tokens. Throws
    // std::logic_error when the free list runs out (the cache grows the pool first) and
    // std::out_of_range past max_blocks * block_tokens.
    void reserve(int slot, int tokens);
    // Takes back every block of slot s (its table row becomes -1).
    void release(int slot);

    // (slots, max_blocks): the blocks of each slot in token order, -1 past them.
    const std::vector<int32_t>& table() const { return table_; }
    // Changes whenever table() does, so a caller can skip copying an unchanged table.
    uint64_t version() const { return version_; }

private:
    int slots_ = 0, max_blocks_ = 0, block_tokens_ = 0, capacity_ = 0, peak_used_ = 0;
    std::set<int32_t> free_;          // lowest first
    std::vector<int32_t> table_;      // (slots, max_blocks)
    std::vector<int32_t> owned_;      // (slots) blocks each slot holds
    std::vector<int32_t> tokens_;     // (slots) tokens each slot was reserved for
    uint64_t version_ = 0;
};

}  // namespace rpt
