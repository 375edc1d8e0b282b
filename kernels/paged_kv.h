// Where a slot's generated K/V lives in the rollout cache's suffix pool: the address
// rule of the paged (block-allocated) KV cache, in one place for the CPU twin and the
// CUDA kernels (host and device inline, like the rl_detail helpers).
//
// The suffix of one layer is a pool of N blocks of Tb tokens, (N, Tb, KVH, D). A block
// table (S, max_blocks) i32 names the blocks of each slot in token order: token i of
// slot s is pool row table[s, i / Tb] * Tb + i % Tb, so a slot holds up to
// max_blocks * Tb tokens and a block is only needed once a slot's tokens reach it
// (model/kv_cache.h hands them out as sequences grow and takes a finished slot's back).
//
// Without a table (null) the pool is the contiguous cache (S, Tmax, KVH, D): block s is
// slot s's whole suffix (Tb = Tmax, max_blocks = 1), the same rule with the identity
// table. Tests use it as the reference the paged layout must match bit for bit.
#pragma once

#include <cstdint>

#include "kernels/rng.h"  // RPT_HOST_DEVICE

namespace rpt::paged_kv {

struct Layout {
    const int32_t* table = nullptr;  // (slots, max_blocks), or null: contiguous
    int64_t slots = 0;               // S
    int64_t max_blocks = 1;          // blocks a slot may own (1 without a table)
    int64_t block_tokens = 0;        // Tb, the pool's dim 1
    int64_t blocks = 0;              // N, the pool's dim 0
    // The most tokens one slot can hold.
    RPT_HOST_DEVICE int64_t slot_capacity() const { return max_blocks * block_tokens; }
};

// Token positions are i32 everywhere (RoPE positions, the step's index rows), so the
// divisions below are 32-bit: on the GPU a 64-bit division is a called routine.
RPT_HOST_DEVICE inline int32_t block_index(const Layout& p, int32_t i) { return i / int32_t(p.block_tokens); }

// The pool block holding token i of slot s (no range checks: callers validate).
RPT_HOST_DEVICE inline int64_t block_of(const Layout& p, int64_t s, int32_t i) {
    return p.table ? int64_t(p.table[s * p.max_blocks + block_index(p, i)]) : s;
}

// Whether a block id names a block of the pool (table entries of blocks a slot does
// not own are -1).
RPT_HOST_DEVICE inline bool block_in_pool(const Layout& p, int64_t block) { return block >= 0 && block < p.blocks; }

// The pool row (of KVH * D elements) of token i of slot s, given its block.
RPT_HOST_DEVICE inline int64_t pool_row(const Layout& p, int64_t block, int32_t i) {
    return block * p.block_tokens + i % int32_t(p.block_tokens);
}

}  // namespace rpt::paged_kv
