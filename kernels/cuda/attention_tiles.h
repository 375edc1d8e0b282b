// The tile plan of the bf16 tensor-core attention kernels (attention_bf16.cu): which key
// tiles a query tile visits, which query tiles a key tile visits, which of them the
// packed segments let it skip, the mask at the tile borders, the lane -> cell mapping of
// the per-warp softmax pass, and the shared-memory layouts. Host/device and free of CUDA
// headers, so the CPU tests (tests/test_attention_tiles.cpp) check exactly the index math
// the kernels run: this code first runs on a lent GPU with no chance to debug it there.
#pragma once

#include <cstdint>

#include "kernels/attention_args.h"

namespace rpt::attn::tiles {

// ---- the tile grid ----------------------------------------------------------------------
// Queries and keys are cut into tiles of the same size, so the last key tile a query tile
// visits is its diagonal tile and the first query tile a key tile visits is its own.
constexpr int kTile = 64;          // queries per block (forward, dQ) = keys per block (dK/dV)
constexpr int kFrag = 16;          // WMMA m = n = k
constexpr int kWarps = kTile / kFrag;  // one warp per 16 rows of the block's own tile
constexpr int kWarpSize = 32;
constexpr int kThreads = kWarps * kWarpSize;  // 128

RPT_HOST_DEVICE constexpr int64_t tile_count(int64_t T) { return (T + kTile - 1) / kTile; }

// Keys [0, key_end) may be visible to queries [q0, q0 + kTile): causality stops at the
// tile's last query (or at T).
RPT_HOST_DEVICE constexpr int64_t key_end(int64_t q0, int64_t T) { return q0 + kTile < T ? q0 + kTile : T; }

// One past the last valid row of the tile starting at t0.
RPT_HOST_DEVICE constexpr int64_t tile_end(int64_t t0, int64_t T) { return t0 + kTile < T ? t0 + kTile : T; }

// Query tiles before the key tile k0 cannot see its keys: the dK/dV loop starts here.
RPT_HOST_DEVICE constexpr int64_t first_query_tile(int64_t k0) { return k0; }

// Whether no query of the tile that starts at q0 sees any key of [k0, k1) (k1 <= T), so
// the whole (query tile, key tile) block is skipped. Segment ids never decrease along a
// row (kernels/ops.h), so the tile's first query has the smallest id of the tile: when it
// is a sequence (id != 0) and every key is of an earlier sequence (ids in [1, id)), no
// query of the tile may see them. The same answer for every thread of a block.
RPT_HOST_DEVICE inline bool keys_hidden(const int32_t* row_segments, int64_t q0, int64_t k0, int64_t k1) {
    if (!row_segments) return false;
    const int32_t query_segment = row_segments[q0];
    return query_segment != 0 && row_segments[k0] != 0 && row_segments[k1 - 1] < query_segment;
}

// The mask inside a block: query `query` sees key `key` (attn::key_visible, the one rule),
// both counted from one origin inside the block (the rule only compares them, so any
// shift gives the same answer, and 32-bit offsets keep the kernels' masks cheap), with the
// two ids read from the block's shared-memory copies. query_valid is false for the tile's
// padding rows past T; keys past T are never visible to a valid query (key <= query).
RPT_HOST_DEVICE inline bool visible(int query, int key, bool query_valid, int32_t query_segment, int32_t key_segment) {
    return query_valid && attn::key_visible(query, key, query_segment, key_segment);
}

// Whether every (query, key) of the block is visible, so the mask is not evaluated: a
// plain causal row (no segments), keys wholly before the tile's first query, and no
// padding rows (the query tile ends at or before T).
RPT_HOST_DEVICE inline bool block_unmasked(int64_t q0, int64_t k0, int64_t T, const int32_t* row_segments) {
    return !row_segments && k0 + kTile <= q0 && q0 + kTile <= T;
}

// ---- the per-warp elementwise pass over a 16 x 64 score tile -----------------------------
// Each lane owns 16 pairs (col, col + 1) of one row: row = lane / 2, and pair j of the lane
// is pair j ^ (lane / 16) of the row (the upper 8 rows swap neighbouring pairs). Reading
// fp32 pairs (float2) from a row stride of kScoreLd floats and writing bf16 pairs from a
// row stride of kProbLd bf16 are then both free of bank conflicts
// (tests/test_attention_tiles.cpp checks every phase). Written as 4j + 2 (lane & 1) +/- 4
// (lane / 16) so that, unrolled over j, each lane needs two base addresses and immediates.
constexpr int kPairsPerLane = kTile / 4;  // 16 pairs of a row per lane, two lanes per row
struct Cell {
    int row, col;  // col is even: the lane handles (row, col) and (row, col + 1)
};
RPT_HOST_DEVICE inline Cell pair_cell(int lane, int j) {
    const int swing = 4 * (lane >> 4);
    return Cell{lane >> 1, 4 * j + 2 * (lane & 1) + ((j & 1) ? -swing : swing)};
}

// ---- shared-memory layouts (bytes) -------------------------------------------------------
// Row strides are padded by 16 bytes: 16-bit tiles of DP columns use DP + 8 elements, fp32
// score tiles 64 + 4, bf16 probability tiles 64 + 8. A WMMA fragment load reads 16-byte
// pieces of 8 consecutive rows at a time; with a stride of 4 words modulo 32 banks those 8
// rows fall on 8 distinct bank quads. Every region starts on a 128-byte boundary (WMMA
// needs 32-byte aligned fragment pointers; every row offset 16 * stride is a multiple of 32).
constexpr int kBf16 = 2, kF32 = 4;
constexpr int kScoreLd = kTile + 4;  // floats, per-warp fp32 score tile [16][kScoreLd]
constexpr int kProbLd = kTile + 8;   // bf16, per-warp probability tile [16][kProbLd]
constexpr int kScoreBytes = kFrag * kScoreLd * kF32;
constexpr int kProbBytes = kFrag * kProbLd * kBf16;

RPT_HOST_DEVICE constexpr int round_up(int bytes, int to) { return (bytes + to - 1) / to * to; }
constexpr int kRegionAlign = 128;

template <int DP>
struct TileLayout {
    static constexpr int kLd = DP + 8;                                   // bf16 per row of a DP-wide tile
    static constexpr int kTileBytes = round_up(kTile * kLd * kBf16, kRegionAlign);  // [kTile][kLd] bf16
    static constexpr int kChunk = DP < kTile ? DP : kTile;               // output columns staged per pass
};

// Forward: K and V tiles (Q is staged in K's region once, then held in registers), and
// per warp its score tile S, its probabilities P and 16 row factors; key segment ids.
template <int DP>
struct ForwardLayout {
    using L = TileLayout<DP>;
    static constexpr int kK = 0;
    static constexpr int kV = kK + L::kTileBytes;
    static constexpr int kS = kV + L::kTileBytes;                                   // kWarps x [16][kScoreLd] f32
    static constexpr int kP = kS + kWarps * kScoreBytes;                            // kWarps x [16][kProbLd] bf16
    static constexpr int kRowScale = kP + round_up(kWarps * kProbBytes, kRegionAlign);  // kWarps x [16] f32
    static constexpr int kSegK = kRowScale + round_up(kWarps * kFrag * kF32, kRegionAlign);  // [kTile] i32
    static constexpr int kBytes = kSegK + round_up(kTile * kF32, kRegionAlign);
};

// dQ: Q and dO tiles (resident), K and V tiles (per key tile), per warp S, dP (fp32) and
// dS (bf16); key segment ids.
template <int DP>
struct DqLayout {
    using L = TileLayout<DP>;
    static constexpr int kQ = 0;
    static constexpr int kdO = kQ + L::kTileBytes;
    static constexpr int kK = kdO + L::kTileBytes;
    static constexpr int kV = kK + L::kTileBytes;
    static constexpr int kS = kV + L::kTileBytes;      // kWarps x [16][kScoreLd] f32
    static constexpr int kdP = kS + kWarps * kScoreBytes;  // kWarps x [16][kScoreLd] f32
    static constexpr int kdS = kdP + kWarps * kScoreBytes;  // kWarps x [16][kProbLd] bf16
    static constexpr int kSegK = kdS + round_up(kWarps * kProbBytes, kRegionAlign);  // [kTile] i32
    static constexpr int kBytes = kSegK + round_up(kTile * kF32, kRegionAlign);
};

// dK/dV: K and V tiles (resident), Q and dO tiles (per query tile), per warp S^T, dP^T
// (fp32), P^T and dS^T (bf16); the query tile's lse (log2 units), delta and segment ids,
// and the key tile's segment ids.
template <int DP>
struct DkvLayout {
    using L = TileLayout<DP>;
    static constexpr int kK = 0;
    static constexpr int kV = kK + L::kTileBytes;
    static constexpr int kQ = kV + L::kTileBytes;
    static constexpr int kdO = kQ + L::kTileBytes;
    static constexpr int kS = kdO + L::kTileBytes;          // kWarps x [16][kScoreLd] f32
    static constexpr int kdP = kS + kWarps * kScoreBytes;   // kWarps x [16][kScoreLd] f32
    static constexpr int kP = kdP + kWarps * kScoreBytes;   // kWarps x [16][kProbLd] bf16
    static constexpr int kdS = kP + round_up(kWarps * kProbBytes, kRegionAlign);  // kWarps x [16][kProbLd] bf16
    static constexpr int kLse = kdS + round_up(kWarps * kProbBytes, kRegionAlign);  // [kTile] f32
    static constexpr int kDelta = kLse + round_up(kTile * kF32, kRegionAlign);      // [kTile] f32
    static constexpr int kSegQ = kDelta + round_up(kTile * kF32, kRegionAlign);     // [kTile] i32
    static constexpr int kSegK = kSegQ + round_up(kTile * kF32, kRegionAlign);      // [kTile] i32
    static constexpr int kBytes = kSegK + round_up(kTile * kF32, kRegionAlign);
};

// The output of a warp (16 rows x DP fp32) is staged through its own score tile, kChunk
// columns at a time: a chunk must fit in the tile's 64 columns.
static_assert(TileLayout<128>::kChunk <= kScoreLd && TileLayout<32>::kChunk <= kScoreLd, "staging chunk");
static_assert(kScoreBytes % 32 == 0 && kProbBytes % 32 == 0, "per-warp tiles keep 32-byte alignment");

}  // namespace rpt::attn::tiles
