// Tile helpers shared by the bf16 tensor-core attention kernels (attention_bf16.cu): the
// WMMA fragment types, block-wide tile loads into padded shared memory, the warp-level
// products (scores S = A B^T into a per-warp fp32 tile, acc += P X from a bf16 tile), the
// accumulator row probe and row scaling, and the staged bf16 output store. The layouts
// and constants they use are in attention_tiles.h (host/device, tested on the CPU).
// Included only by attention_bf16.cu.
#pragma once

#include <cuda_bf16.h>
#include <mma.h>

#include <cstdint>

#include "kernels/cuda/attention_tiles.h"

namespace rpt::cuda::mixed::attn_bf16 {

namespace wmma = nvcuda::wmma;
namespace tl = attn::tiles;
using tl::kFrag;
using tl::kProbLd;
using tl::kScoreLd;
using tl::kThreads;
using tl::kTile;

using bf16 = __nv_bfloat16;
using FragA = wmma::fragment<wmma::matrix_a, kFrag, kFrag, kFrag, bf16, wmma::row_major>;
// B = X^T for a row-major X [n][k] in shared memory (scores: K^T, V^T, Q^T, dO^T).
using FragBt = wmma::fragment<wmma::matrix_b, kFrag, kFrag, kFrag, bf16, wmma::col_major>;
// B = X for a row-major X [k][n] (P V, dS K, P^T dO, dS^T Q).
using FragB = wmma::fragment<wmma::matrix_b, kFrag, kFrag, kFrag, bf16, wmma::row_major>;
using FragAcc = wmma::fragment<wmma::accumulator, kFrag, kFrag, kFrag, float>;
constexpr int kAccElems = FragAcc::num_elements;
constexpr int kKeyFrags = kTile / kFrag;  // 16-wide column blocks of a score tile

// Offset of element (b, t, head, 0) of a (B, T, heads, D) tensor.
__device__ __forceinline__ int64_t token_offset(int b, int t, int T, int heads, int head, int D) {
    return ((int64_t(b) * T + t) * heads + head) * D;
}

// ---- block-wide tile loads ---------------------------------------------------------------

// dst[r][c] (row stride DP + 8) = src row t0 + r of (b, head), c < D; zero past T and D.
template <int DP>
__device__ void load_tile(bf16* dst, const bf16* src, int b, int t0, int T, int heads, int head, int D, bool vec) {
    constexpr int kLd = tl::TileLayout<DP>::kLd;
    constexpr int kVecElems = 8;  // one 16-byte load
    if (vec) {
        constexpr int kVecs = DP / kVecElems;
        for (int idx = threadIdx.x; idx < kTile * kVecs; idx += kThreads) {
            const int r = idx / kVecs, c = (idx % kVecs) * kVecElems;
            const int t = t0 + r;
            uint4 val = make_uint4(0u, 0u, 0u, 0u);
            if (t < T && c < D) val = *reinterpret_cast<const uint4*>(src + token_offset(b, t, T, heads, head, D) + c);
            *reinterpret_cast<uint4*>(dst + r * kLd + c) = val;
        }
    } else {
        for (int idx = threadIdx.x; idx < kTile * DP; idx += kThreads) {
            const int r = idx / DP, c = idx % DP;
            const int t = t0 + r;
            dst[r * kLd + c] = (t < T && c < D) ? src[token_offset(b, t, T, heads, head, D) + c]
                                                : __float2bfloat16_rn(0.0f);
        }
    }
}

// dst[r] = segment id of token t0 + r (0 past T or for plain rows).
__device__ inline void load_segments(int32_t* dst, const int32_t* row_segments, int t0, int T) {
    for (int r = threadIdx.x; r < kTile; r += kThreads) dst[r] = (row_segments && t0 + r < T) ? row_segments[t0 + r] : 0;
}

// ---- warp-level products ------------------------------------------------------------------

// S (16 x 64, fp32, row stride kScoreLd) = A B^T, A = 16 rows x DP held as fragments,
// B = a [64][DP + 8] tile.
template <int DP>
__device__ void scores_from_frags(float* S, const FragA (&a)[DP / kFrag], const bf16* B) {
    constexpr int kLd = tl::TileLayout<DP>::kLd;
    // Not unrolled over n: unrolled, the scheduler hoists all 4 x DP/16 B fragments (up to
    // 128 registers at DP = 128) and the kernel spills.
#pragma unroll 1
    for (int n = 0; n < kKeyFrags; ++n) {
        FragAcc acc;
        wmma::fill_fragment(acc, 0.0f);
#pragma unroll
        for (int kk = 0; kk < DP / kFrag; ++kk) {
            FragBt bt;
            wmma::load_matrix_sync(bt, B + n * kFrag * kLd + kk * kFrag, kLd);
            wmma::mma_sync(acc, a[kk], bt, acc);
        }
        wmma::store_matrix_sync(S + n * kFrag, acc, kScoreLd, wmma::mem_row_major);
    }
}

// The same with A read from 16 rows of a [.][DP + 8] tile in shared memory.
template <int DP>
__device__ void scores_from_smem(float* S, const bf16* A, const bf16* B) {
    constexpr int kLd = tl::TileLayout<DP>::kLd;
#pragma unroll 1
    for (int n = 0; n < kKeyFrags; ++n) {
        FragAcc acc;
        wmma::fill_fragment(acc, 0.0f);
#pragma unroll 2
        for (int kk = 0; kk < DP / kFrag; ++kk) {
            FragA a;
            FragBt bt;
            wmma::load_matrix_sync(a, A + kk * kFrag, kLd);
            wmma::load_matrix_sync(bt, B + n * kFrag * kLd + kk * kFrag, kLd);
            wmma::mma_sync(acc, a, bt, acc);
        }
        wmma::store_matrix_sync(S + n * kFrag, acc, kScoreLd, wmma::mem_row_major);
    }
}

// acc (16 x DP) += P X: P = 16 x 64 bf16 (row stride kProbLd), X = a [64][DP + 8] tile.
// One P fragment at a time (the k loop is not unrolled; acc is indexed by the unrolled f).
template <int DP>
__device__ void accumulate_product(FragAcc (&acc)[DP / kFrag], const bf16* P, const bf16* X) {
    constexpr int kLd = tl::TileLayout<DP>::kLd;
#pragma unroll 1
    for (int kk = 0; kk < kKeyFrags; ++kk) {
        FragA a;
        wmma::load_matrix_sync(a, P + kk * kFrag, kProbLd);
#pragma unroll
        for (int f = 0; f < DP / kFrag; ++f) {
            FragB x;
            wmma::load_matrix_sync(x, X + kk * kFrag * kLd + f * kFrag, kLd);
            wmma::mma_sync(acc[f], a, x, acc[f]);
        }
    }
}

// The row (0..15) of each accumulator element this lane holds, packed 4 bits per element.
// Fragments are opaque, so the hardware is asked: load a 16 x 16 tile whose every element
// is its own row index. `scratch` is the warp's score tile (16 x kScoreLd floats).
constexpr int kRowBits = 4;
static_assert(kAccElems * kRowBits <= 32 && (1 << kRowBits) == kFrag, "rows pack into one register");
__device__ inline uint32_t fragment_rows(float* scratch) {
    const int lane = threadIdx.x % tl::kWarpSize;
    for (int i = lane; i < kFrag * kFrag; i += tl::kWarpSize) scratch[(i / kFrag) * kScoreLd + i % kFrag] = float(i / kFrag);
    __syncwarp();
    FragAcc probe;
    wmma::load_matrix_sync(probe, scratch, kScoreLd, wmma::mem_row_major);
    uint32_t rows = 0;
#pragma unroll
    for (int e = 0; e < kAccElems; ++e) rows |= static_cast<uint32_t>(probe.x[e]) << (kRowBits * e);
    __syncwarp();
    return rows;
}

// acc rows *= row_factor[row] (16 floats in shared memory).
template <int N>
__device__ __forceinline__ void scale_rows(FragAcc (&acc)[N], uint32_t rows, const float* row_factor) {
    float f[kAccElems];
#pragma unroll
    for (int e = 0; e < kAccElems; ++e) f[e] = row_factor[(rows >> (kRowBits * e)) & (kFrag - 1)];
#pragma unroll
    for (int n = 0; n < N; ++n)
#pragma unroll
        for (int e = 0; e < kAccElems; ++e) acc[n].x[e] *= f[e];
}

// Writes the warp's 16 x D result (rows t0.., of (b, head)) as bf16 rows * factor, staged
// through `stage` (the warp's score tile) kChunk columns at a time; coalesced along d.
template <int DP>
__device__ void store_rows(bf16* dst, const FragAcc (&acc)[DP / kFrag], float* stage, int b, int t0, int T, int heads,
                           int head, int D, float factor) {
    constexpr int kChunk = tl::TileLayout<DP>::kChunk;
    constexpr int kFragsPerChunk = kChunk / kFrag;
    const int lane = threadIdx.x % tl::kWarpSize;
#pragma unroll
    for (int chunk = 0; chunk < DP / kChunk; ++chunk) {
        __syncwarp();  // the stage's previous readers are done
#pragma unroll
        for (int f = 0; f < kFragsPerChunk; ++f)
            wmma::store_matrix_sync(stage + f * kFrag, acc[chunk * kFragsPerChunk + f], kScoreLd, wmma::mem_row_major);
        __syncwarp();
        for (int idx = lane; idx < kFrag * kChunk; idx += tl::kWarpSize) {
            const int r = idx / kChunk, c = idx % kChunk;
            const int t = t0 + r, d = chunk * kChunk + c;
            if (t < T && d < D)
                dst[token_offset(b, t, T, heads, head, D) + d] = __float2bfloat16_rn(stage[r * kScoreLd + c] * factor);
        }
    }
    __syncwarp();
}

__device__ __forceinline__ int warp_id() { return threadIdx.x / tl::kWarpSize; }
__device__ __forceinline__ int lane_id() { return threadIdx.x % tl::kWarpSize; }

template <typename T>
__device__ __forceinline__ T* region(unsigned char* smem, int offset) {
    return reinterpret_cast<T*>(smem + offset);
}

__device__ __forceinline__ void store_pair(bf16* dst, int row, int col, float a, float b) {
    *reinterpret_cast<__nv_bfloat162*>(dst + row * kProbLd + col) = __floats2bfloat162_rn(a, b);
}

}  // namespace rpt::cuda::mixed::attn_bf16
