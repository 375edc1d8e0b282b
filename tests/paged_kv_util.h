// Test helpers of the paged KV layout (kernels/paged_kv.h), shared by the CPU test
// (tests/test_paged_kv.cpp) and the CUDA one (tests/test_cuda_rl_ops.cpp): a block table
// that hands a slot's blocks out of order, and the contiguous suffix scattered into the
// pool it describes, every row no slot owns left poisoned.
#pragma once

#include <cstdint>
#include <numeric>
#include <vector>

#include "kernels/rng.h"

namespace rpt::test {

struct PagedTable {
    std::vector<int32_t> table;  // (S, max_blocks), -1 past each slot's blocks
    int64_t max_blocks = 0;
    int64_t blocks = 0;  // N, the pool's size: the blocks used plus `spare` never named
};

// Slot s needs ceil(length[s] / Tb) blocks; the pool's ids are handed out in a shuffled
// order (so no slot's blocks are contiguous or ascending), spare ones left over.
inline PagedTable paged_table(const std::vector<int32_t>& length, int64_t Tmax, int64_t Tb, int64_t spare,
                              uint64_t seed) {
    PagedTable p;
    const int64_t S = int64_t(length.size());
    p.max_blocks = (Tmax + Tb - 1) / Tb;
    int64_t used = 0;
    for (int32_t L : length) used += (L + Tb - 1) / Tb;
    p.blocks = used + spare;
    std::vector<int32_t> ids(size_t(p.blocks));
    std::iota(ids.begin(), ids.end(), 0);
    for (size_t i = ids.size(); i > 1; --i) std::swap(ids[i - 1], ids[size_t(hash_keys(seed, i) % i)]);
    p.table.assign(size_t(S * p.max_blocks), -1);
    size_t next = 0;
    for (int64_t s = 0; s < S; ++s)
        for (int64_t b = 0; b < (length[size_t(s)] + Tb - 1) / Tb; ++b) p.table[size_t(s * p.max_blocks + b)] = ids[next++];
    return p;
}

// contiguous (S, Tmax, row) -> pool (N, Tb, row): token i < length[s] of slot s to its
// table row; every other pool element `poison`.
template <typename T>
std::vector<T> scatter_to_pool(const std::vector<T>& contiguous, const std::vector<int32_t>& length,
                               const PagedTable& p, int64_t Tmax, int64_t Tb, int64_t row, T poison) {
    std::vector<T> pool(size_t(p.blocks * Tb * row), poison);
    for (size_t s = 0; s < length.size(); ++s)
        for (int64_t i = 0; i < length[s]; ++i) {
            const int64_t block = p.table[size_t(int64_t(s) * p.max_blocks + i / Tb)];
            for (int64_t c = 0; c < row; ++c)
                pool[size_t((block * Tb + i % Tb) * row + c)] = contiguous[size_t((int64_t(s) * Tmax + i) * row + c)];
        }
    return pool;
}

}  // namespace rpt::test
