// The index math of the bf16 tensor-core attention (kernels/cuda/attention_tiles.h), on
// the CPU: the kernels first run on a lent GPU, so everything that can be checked without
// one is checked here. The tile plan visits every (query, key) pair that attn::key_visible
// allows, in both the query-major loops (forward, dQ) and the key-major loop (dK/dV); a
// skipped block holds no visible pair and an unmasked block no hidden one; the in-block
// mask in either frame equals the one rule at the tile borders and on the padding; the
// softmax pass's lanes cover the score tile once, without shared-memory bank conflicts;
// the shared-memory layouts keep WMMA's alignment and fit the GPUs.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "kernels/attention_args.h"
#include "kernels/cuda/attention_tiles.h"

namespace rpt {
namespace {

namespace tl = attn::tiles;

constexpr int kBanks = 32;
constexpr int kBankBytes = 4;

// Packed rows as GRPO builds them: a prompt (id 0), then sequences 1, 2, ... of the
// given lengths (cycled); ids never decrease. prompt < 0: a plain row (no segments).
std::vector<int32_t> packed_row(int64_t T, int64_t prompt, const std::vector<int64_t>& lengths) {
    std::vector<int32_t> seg(size_t(T), 0);
    int32_t id = 1;
    size_t which = 0;
    for (int64_t t = prompt; t < T; ++id, ++which)
        for (int64_t i = 0; i < lengths[which % lengths.size()] && t < T; ++i) seg[size_t(t++)] = id;
    return seg;
}

struct Row {
    int64_t T;
    std::vector<int32_t> seg;  // empty: plain causal
    const int32_t* ids() const { return seg.empty() ? nullptr : seg.data(); }
};

std::vector<Row> rows_to_check() {
    std::vector<Row> rows;
    for (int64_t T : {1, 17, 63, 64, 65, 100, 128, 257, 400}) rows.push_back({T, {}});
    for (int64_t T : {17, 100, 257, 400}) {
        rows.push_back({T, packed_row(T, 0, {1, 4, 9})});       // no prompt, short sequences
        rows.push_back({T, packed_row(T, 1, {37, 2, 11})});     // prompt of one token
        rows.push_back({T, packed_row(T, 64, {90})});           // a tile of prompt, long sequences
        rows.push_back({T, packed_row(T, 70, {64, 128, 5})});   // tile-sized sequences off the grid
        rows.push_back({T, packed_row(T, 130, {200})});
    }
    return rows;
}

bool rule(const Row& r, int64_t t, int64_t j) { return attn::key_visible(r.ids(), t, j); }

// Forward and dQ: query tile q0 visits key tiles k0 < key_end(q0), minus the hidden ones.
TEST(AttentionTiles, QueryMajorPlanVisitsEveryVisiblePair) {
    int64_t skipped_somewhere = 0;
    for (const Row& r : rows_to_check()) {
        SCOPED_TRACE("T=" + std::to_string(r.T) + (r.seg.empty() ? " plain" : " packed"));
        for (int64_t q0 = 0; q0 < r.T; q0 += tl::kTile) {
            std::set<int64_t> visited;
            for (int64_t k0 = 0; k0 < tl::key_end(q0, r.T); k0 += tl::kTile) {
                const bool hidden = tl::keys_hidden(r.ids(), q0, k0, tl::tile_end(k0, r.T));
                if (!hidden) visited.insert(k0);
                skipped_somewhere += hidden;
                for (int64_t t = q0; t < tl::tile_end(q0, r.T); ++t)
                    for (int64_t j = k0; j < tl::tile_end(k0, r.T); ++j) {
                        if (hidden) {
                            ASSERT_FALSE(rule(r, t, j)) << "skipped block hides (" << t << ", " << j << ")";
                        }
                        if (tl::block_unmasked(q0, k0, r.T, r.ids())) {
                            ASSERT_TRUE(rule(r, t, j)) << "unmasked block holds hidden (" << t << ", " << j << ")";
                        }
                    }
            }
            for (int64_t t = q0; t < tl::tile_end(q0, r.T); ++t)
                for (int64_t j = 0; j < r.T; ++j)
                    if (rule(r, t, j)) {
                        ASSERT_TRUE(visited.count(j / tl::kTile * tl::kTile)) << t << " sees " << j;
                    }
        }
    }
    EXPECT_GT(skipped_somewhere, 0) << "no layout exercised the key-tile skipping";
}

// dK/dV: key tile k0 visits query tiles from first_query_tile(k0) to T, minus the hidden ones.
TEST(AttentionTiles, KeyMajorPlanVisitsEveryVisiblePair) {
    for (const Row& r : rows_to_check()) {
        SCOPED_TRACE("T=" + std::to_string(r.T) + (r.seg.empty() ? " plain" : " packed"));
        for (int64_t k0 = 0; k0 < r.T; k0 += tl::kTile) {
            std::set<int64_t> visited;
            for (int64_t q0 = tl::first_query_tile(k0); q0 < r.T; q0 += tl::kTile) {
                const bool hidden = tl::keys_hidden(r.ids(), q0, k0, tl::tile_end(k0, r.T));
                if (!hidden) visited.insert(q0);
                for (int64_t t = q0; t < tl::tile_end(q0, r.T) && hidden; ++t)
                    for (int64_t j = k0; j < tl::tile_end(k0, r.T); ++j) ASSERT_FALSE(rule(r, t, j));
            }
            for (int64_t j = k0; j < tl::tile_end(k0, r.T); ++j)
                for (int64_t t = 0; t < r.T; ++t)
                    if (rule(r, t, j)) {
                        ASSERT_TRUE(visited.count(t / tl::kTile * tl::kTile)) << t << " sees " << j;
                    }
        }
    }
}

// The in-block mask, in the kernels' two frames and with their padding conventions (rows
// and keys past T read segment id 0), equals the rule for every cell of every block.
TEST(AttentionTiles, BlockMaskIsTheRuleAtTheBorders) {
    for (const Row& r : rows_to_check()) {
        SCOPED_TRACE("T=" + std::to_string(r.T) + (r.seg.empty() ? " plain" : " packed"));
        auto id = [&](int64_t t) { return (r.seg.empty() || t >= r.T) ? 0 : r.seg[size_t(t)]; };
        for (int64_t q0 = 0; q0 < r.T; q0 += tl::kTile)
            for (int64_t k0 = 0; k0 <= q0; k0 += tl::kTile)
                for (int rq = 0; rq < tl::kTile; ++rq)
                    for (int ck = 0; ck < tl::kTile; ++ck) {
                        const int64_t t = q0 + rq, j = k0 + ck;
                        const bool want = t < r.T && j < r.T && rule(r, t, j);
                        // forward / dQ: the row is query t - k0, the column key ck
                        ASSERT_EQ(tl::visible(int(t - k0), ck, t < r.T, id(t), id(j)), want) << t << ", " << j;
                        // dK/dV: the column is query rq, the row key j - q0
                        ASSERT_EQ(tl::visible(rq, int(j - q0), rq < r.T - q0, id(t), id(j)), want) << t << ", " << j;
                    }
    }
}

TEST(AttentionTiles, PairCellsCoverTheScoreTileOnce) {
    std::vector<int> hits(size_t(tl::kFrag * tl::kTile), 0);
    for (int lane = 0; lane < tl::kWarpSize; ++lane)
        for (int j = 0; j < tl::kPairsPerLane; ++j) {
            const tl::Cell c = tl::pair_cell(lane, j);
            ASSERT_EQ(c.row, lane / 2);
            ASSERT_TRUE(c.col >= 0 && c.col + 1 < tl::kTile && c.col % 2 == 0) << lane << ", " << j;
            ++hits[size_t(c.row * tl::kTile + c.col)];
            ++hits[size_t(c.row * tl::kTile + c.col + 1)];
        }
    for (int h : hits) EXPECT_EQ(h, 1);
}

// Reads: float2 (8 bytes), served per half-warp; writes: bf16x2 (4 bytes), whole warp.
TEST(AttentionTiles, SoftmaxPassIsFreeOfBankConflicts) {
    for (int j = 0; j < tl::kPairsPerLane; ++j) {
        for (int half = 0; half < 2; ++half) {
            std::set<int> banks;
            for (int lane = half * 16; lane < half * 16 + 16; ++lane) {
                const tl::Cell c = tl::pair_cell(lane, j);
                const int word = c.row * tl::kScoreLd + c.col;
                banks.insert(word % kBanks);
                banks.insert((word + 1) % kBanks);
            }
            EXPECT_EQ(banks.size(), 32u) << "float2 reads, pair " << j << " half " << half;
        }
        std::set<int> banks;
        for (int lane = 0; lane < tl::kWarpSize; ++lane) {
            const tl::Cell c = tl::pair_cell(lane, j);
            banks.insert((c.row * tl::kProbLd + c.col) * tl::kBf16 / kBankBytes % kBanks);
        }
        EXPECT_EQ(banks.size(), 32u) << "bf16x2 writes, pair " << j;
    }
}

// A WMMA load phase reads 16 bytes from each of 8 consecutive rows: the 8 pieces must fall
// on distinct bank quads for every padded row stride the kernels use.
void expect_rows_on_distinct_quads(int row_bytes, const char* what) {
    std::set<int> quads;
    for (int r = 0; r < 8; ++r) quads.insert((r * row_bytes / kBankBytes) % kBanks / 4);
    EXPECT_EQ(quads.size(), 8u) << what << " row stride " << row_bytes << " bytes";
    EXPECT_EQ(row_bytes % 16, 0) << what;
}

template <int DP>
void check_layouts(int forward_bytes) {
    using F = tl::ForwardLayout<DP>;
    using Q = tl::DqLayout<DP>;
    using K = tl::DkvLayout<DP>;
    constexpr int kA100MaxSmem = 166912, kH100MaxSmem = 232448;  // opt-in dynamic shared memory per block
    for (int offset : {F::kK, F::kV, F::kS, F::kP, F::kRowScale, F::kSegK, Q::kQ, Q::kdO, Q::kK, Q::kV, Q::kS, Q::kdP,
                       Q::kdS, Q::kSegK, K::kK, K::kV, K::kQ, K::kdO, K::kS, K::kdP, K::kP, K::kdS, K::kLse, K::kDelta,
                       K::kSegQ, K::kSegK})
        EXPECT_EQ(offset % tl::kRegionAlign, 0) << "DP " << DP;
    EXPECT_EQ(F::kBytes, forward_bytes) << "the forward footprint documented in attention_bf16.cu";
    for (int bytes : {F::kBytes, Q::kBytes, K::kBytes}) {
        EXPECT_LE(bytes, kA100MaxSmem) << "DP " << DP;
        EXPECT_LE(bytes, kH100MaxSmem) << "DP " << DP;
    }
    // Regions hold what the kernels put there.
    EXPECT_GE(F::kV - F::kK, tl::kTile * tl::TileLayout<DP>::kLd * tl::kBf16);
    EXPECT_GE(F::kP - F::kS, tl::kWarps * tl::kScoreBytes);
    EXPECT_GE(K::kdS - K::kP, tl::kWarps * tl::kProbBytes);
    // Fragment pointers: 16 rows of any tile and 16-column steps stay 32-byte aligned.
    EXPECT_EQ(tl::kFrag * tl::TileLayout<DP>::kLd * tl::kBf16 % 32, 0);
    EXPECT_EQ(tl::kFrag * tl::kBf16 % 32, 0);
    expect_rows_on_distinct_quads(tl::TileLayout<DP>::kLd * tl::kBf16, "K/V/Q/dO tile");
    EXPECT_EQ(DP % tl::TileLayout<DP>::kChunk, 0);
}

TEST(AttentionTiles, SharedMemoryLayoutsAreAlignedAndFit) {
    check_layouts<32>(37376);
    check_layouts<64>(45568);
    check_layouts<128>(61952);
    expect_rows_on_distinct_quads(tl::kScoreLd * tl::kF32, "score tile");
    expect_rows_on_distinct_quads(tl::kProbLd * tl::kBf16, "probability tile");
}

}  // namespace
}  // namespace rpt
