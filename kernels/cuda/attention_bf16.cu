// Causal grouped-query flash attention on tensor cores, bf16 in and out, fp32 inside
// (forward and backward): the bf16 path of kernels/cuda/cuda_mixed_ops.h.
//
//   q, out (B, T, H, D) bf16; k, v (B, T, KVH, D) bf16; lse (B, H, T) f32; segments (B, T)
//   i32 or empty. S = q k^T / sqrt(D), causal and segment-masked (attn::key_visible),
//   P = softmax(S), out = P v; query head h reads KV head h / (H / KVH).
//   Backward: dq, dk, dv bf16 (overwritten) from dout bf16 and the forward's out and lse.
//
// What is fp32: every product accumulates in fp32 (WMMA accumulators), the softmax
// statistics (running max, running sum, lse) and delta = rowsum(dO * O) are fp32 and
// the exponentials are taken in fp32. What is bf16: the operands of the products (Q, K,
// V, dO as given; P and dS rounded once to feed the second product of each pair, as in
// FlashAttention-2) and the stored outputs (rounded to nearest even). The fp32 kernel
// (attention.cu) stays the reference: tests/test_cuda_attention_bf16.cpp compares both to
// the CPU twin run on the widened inputs.
//
// Why WMMA (nvcuda::wmma, 16x16x16 bf16 fragments, fp32 accumulators) and not mma.sync +
// ldmatrix: this code runs for the first time on a lent GPU with no debugger and minutes
// of device time. WMMA fixes the operand layouts (load_matrix_sync / store_matrix_sync
// from row-major shared memory, fragments opaque), so no hand-written register layout
// can be wrong; the one thing it hides, which accumulator element holds which row, is
// asked of the hardware once per warp (fragment_rows: load a tile whose elements hold
// their row index) instead of being assumed. The price: every score tile goes to shared
// memory and back (fp32 S/dP out, bf16 P/dS in), operands are reloaded from shared memory
// per product, and nothing overlaps loads with math. The faster version (FA2/FA3 style)
// would use mma.sync.m16n8k16 with ldmatrix, keeping P in registers (the accumulator
// layout of one product is the A-operand layout of the next, so the softmax and the
// second product never touch shared memory), cp.async double buffering of the K/V tiles
// (wgmma + TMA on sm_90), larger warp tiles, and exp2 with the scale folded into one FMA.
//
// Tiles and launch shapes (kernels/cuda/attention_tiles.h, unit-tested on the CPU; the
// tile loads, warp products and output staging shared by the kernels: attention_bf16.cuh):
// query and key tiles of 64, 4 warps (128 threads) per block, each warp owning 16 rows of
// the block's own tile. D runs on a padded width DP in {32, 64, 128} (zero padding, like
// attention.cu): D = 64 and 128 exactly, any D <= 128 on the next size up.
//   forward  grid (T/64 latest first, H, B): Q fragments in registers; per key tile of 64:
//            S = Q K^T (4 x DP/16 WMMAs per warp) -> warp's S tile in smem, online softmax
//            there (two lanes per row), P (bf16) -> smem, O rows rescaled in registers,
//            O += P V; out = O / l, lse = m + log l.
//   delta    one warp per (b, t, h): delta = sum_d dO * O in fp32 from the bf16 tensors.
//   dQ       grid (T/64, H, B): per key tile, S and dP = dO V^T recomputed, dS = P (dP -
//            delta) (bf16) -> smem, dQ += dS K; dQ = scale * dQ.
//   dK/dV    grid (T/64, KVH, B): a block owns 64 keys of one KV head and loops over the
//            query heads of its group and the query tiles at or after its keys: S^T,
//            dP^T, P^T and dS^T per warp, dV += P^T dO, dK += dS^T Q; dK = scale * dK.
// Every output element has one writer summing in a fixed order: no atomics, the same
// bits on every run. Packed rows skip (query tile, key tile) blocks that no query of the
// tile can see (tiles::keys_hidden, the rule attention.cu and the CPU twin use), and
// blocks wholly below the diagonal of a plain row skip the mask (tiles::block_unmasked).
//
// Shared memory (bytes at DP = 32 / 64 / 128; tiles are [64][DP + 8] bf16, per-warp score
// tiles [16][68] f32 and probability tiles [16][72] bf16, every region 128-byte aligned;
// the 16-byte row padding puts the 8 rows of each WMMA load phase on 8 distinct bank
// quads, and the softmax pass reads float2 / writes bf16x2 without conflicts):
//   forward  37 376 / 45 568 /  61 952  K, V, 4 x (S, P), row factors, key segment ids
//   dQ       64 768 / 81 152 / 113 920  Q, dO, K, V, 4 x (S, dP, dS), key segment ids
//   dK/dV    74 752 / 91 136 / 123 904  K, V, Q, dO, 4 x (S^T, dP^T, P^T, dS^T), lse, delta, ids
// Every launch first sets cudaFuncAttributeMaxDynamicSharedMemorySize to its footprint
// (required above 48 KB; the DP = 128 backward needs 1 block of 4 warps per SM).
// Registers per thread (ptxas -v, no spills; launch bounds 128 threads, 1 block/SM, so
// ptxas may use up to 255 and never trades the accumulators for occupancy):
//              DP = 32        64        128      (sm_80 / sm_90)
//   forward    176 / 179   174 / 178   214 / 222
//   dQ         120 / 122   124 / 128   162 / 165
//   dK/dV      109 / 113   141 / 149   222 / 223
//   delta       30 /  30
// The loops over the 16-wide column blocks of a score tile and over the k steps of P X
// are kept rolled (#pragma unroll 1): unrolled, the scheduler hoists every B fragment of
// the tile and the DP = 128 kernels spill (tools/ptxas-check.sh fails the build).
#include <cuda_bf16.h>
#include <mma.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/cuda/attention_bf16.cuh"
#include "kernels/cuda/attention_tiles.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_mixed_ops.h"

namespace rpt::cuda::mixed {

namespace {

using namespace attn_bf16;  // the shared tile helpers (attention_bf16.cuh)
namespace tl = attn::tiles;
using tl::kFrag;
using tl::kProbLd;
using tl::kScoreLd;
using tl::kThreads;
using tl::kTile;
using tl::kWarps;

constexpr int kMaxHeadDim = 128;
// One block per SM is all the launch bounds promise, so ptxas may use up to 255 registers
// (it otherwise aims at a higher occupancy and spills the DP = 128 accumulators).
constexpr int kMinBlocks = 1;
constexpr int64_t kMaxTokens = int64_t(1) << 30;  // T: tile offsets and rows stay in int
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

struct ForwardParams {
    bf16* out;                // (B, T, H, D)
    float* lse;               // (B, H, T)
    const bf16* q;            // (B, T, H, D)
    const bf16* k;            // (B, T, KVH, D)
    const bf16* v;            // (B, T, KVH, D)
    const int32_t* segments;  // (B, T) or null
    int T, H, KVH, D;  // 32-bit: in-block index math stays in one register each
    float scale_log2;  // log2(e) / sqrt(D): scores in log2 units, exp2 in the softmax
    bool vec;          // every row starts 16-byte aligned: tiles load as 16-byte vectors
};

struct BackwardParams {
    bf16* dq;                 // (B, T, H, D)
    bf16* dk;                 // (B, T, KVH, D)
    bf16* dv;                 // (B, T, KVH, D)
    const bf16* dout;         // (B, T, H, D)
    const bf16* q;            // (B, T, H, D)
    const bf16* k;            // (B, T, KVH, D)
    const bf16* v;            // (B, T, KVH, D)
    const float* lse;         // (B, H, T)
    const float* delta;       // (B, H, T) rowsum(dO * O)
    const int32_t* segments;  // (B, T) or null
    int T, H, KVH, D;
    float scale, scale_log2;
    bool vec;
};

// ---- forward ------------------------------------------------------------------------------

// The online-softmax step of one key tile for the lane's row (two lanes per row, pairs
// from tiles::pair_cell): reads the warp's scores S, writes P = exp2(s - m) as bf16,
// updates the running max m (log2 units) and sum l, and stores the row's rescale factor
// for the O accumulators in row_factor (by the even lane of the pair). The row is query
// q_rel (counted from the key tile's first key), valid unless it is padding past T.
struct RowState {
    float m, l;
};
__device__ __forceinline__ void softmax_tile(RowState& st, const float* S, bf16* P, float* row_factor,
                                             const int32_t* seg_k, int q_rel, bool q_valid, int32_t seg_q,
                                             bool unmasked, float scale_log2) {
    const int lane = lane_id();
    float s[tl::kPairsPerLane][2];
    float row_max = -INFINITY;
#pragma unroll
    for (int j = 0; j < tl::kPairsPerLane; ++j) {
        const tl::Cell c = tl::pair_cell(lane, j);
        const float2 v = *reinterpret_cast<const float2*>(S + c.row * kScoreLd + c.col);
        s[j][0] = (unmasked || tl::visible(q_rel, c.col, q_valid, seg_q, seg_k[c.col])) ? v.x * scale_log2 : -INFINITY;
        s[j][1] = (unmasked || tl::visible(q_rel, c.col + 1, q_valid, seg_q, seg_k[c.col + 1])) ? v.y * scale_log2
                                                                                                 : -INFINITY;
        row_max = fmaxf(row_max, fmaxf(s[j][0], s[j][1]));
    }
    row_max = fmaxf(row_max, __shfl_xor_sync(kFullMask, row_max, 1));
    const float m_new = fmaxf(st.m, row_max);
    const float m_use = m_new == -INFINITY ? 0.0f : m_new;  // nothing visible yet: keep exp2(-inf) = 0
    float row_sum = 0.0f;
#pragma unroll
    for (int j = 0; j < tl::kPairsPerLane; ++j) {
        const tl::Cell c = tl::pair_cell(lane, j);
        const float p0 = exp2f(s[j][0] - m_use), p1 = exp2f(s[j][1] - m_use);
        row_sum += p0 + p1;
        *reinterpret_cast<__nv_bfloat162*>(P + c.row * kProbLd + c.col) = __floats2bfloat162_rn(p0, p1);
    }
    row_sum += __shfl_xor_sync(kFullMask, row_sum, 1);
    const float alpha = exp2f(st.m - m_use);  // 0 while m was -inf
    st.l = st.l * alpha + row_sum;
    st.m = m_new;
    if ((lane & 1) == 0) row_factor[lane >> 1] = alpha;
    __syncwarp();
}

template <int DP>
__global__ void __launch_bounds__(kThreads, kMinBlocks) attention_bf16_forward_kernel(ForwardParams p) {
    using L = tl::ForwardLayout<DP>;
    constexpr int kLd = tl::TileLayout<DP>::kLd;
    constexpr int kDimFrags = DP / kFrag;
    extern __shared__ __align__(128) unsigned char smem[];
    bf16* Ks = region<bf16>(smem, L::kK);
    bf16* Vs = region<bf16>(smem, L::kV);
    const int warp = warp_id(), lane = lane_id();
    float* S = region<float>(smem, L::kS) + warp * kFrag * kScoreLd;
    bf16* P = region<bf16>(smem, L::kP) + warp * kFrag * kProbLd;
    float* row_factor = region<float>(smem, L::kRowScale) + warp * kFrag;
    int32_t* seg_k = region<int32_t>(smem, L::kSegK);

    const int T = p.T, H = p.H, D = p.D;
    const int q0 = int(gridDim.x - 1 - blockIdx.x) * kTile;  // the longest rows first
    const int h = blockIdx.y, b = blockIdx.z, kvh = h / (H / p.KVH);
    const int32_t* row_segments = p.segments ? p.segments + int64_t(b) * T : nullptr;

    // Q: staged in K's region, then held as fragments for the whole key loop.
    load_tile<DP>(Ks, p.q, b, q0, T, H, h, D, p.vec);
    __syncthreads();
    FragA qf[kDimFrags];
#pragma unroll
    for (int kk = 0; kk < kDimFrags; ++kk) wmma::load_matrix_sync(qf[kk], Ks + warp * kFrag * kLd + kk * kFrag, kLd);
    const uint32_t rows = fragment_rows(S);

    FragAcc o[kDimFrags];
#pragma unroll
    for (int f = 0; f < kDimFrags; ++f) wmma::fill_fragment(o[f], 0.0f);
    RowState st{-INFINITY, 0.0f};
    const int tq = q0 + warp * kFrag + (lane >> 1);  // this lane's softmax row
    const bool q_valid = tq < T;
    const int32_t seg_q = (row_segments && q_valid) ? row_segments[tq] : 0;

    const int key_end = static_cast<int>(tl::key_end(q0, T));
    for (int k0 = 0; k0 < key_end; k0 += kTile) {
        if (tl::keys_hidden(row_segments, q0, k0, tl::tile_end(k0, T))) continue;
        __syncthreads();  // every warp is done with the previous K/V tile (and with Q)
        load_tile<DP>(Ks, p.k, b, k0, T, p.KVH, kvh, D, p.vec);
        load_tile<DP>(Vs, p.v, b, k0, T, p.KVH, kvh, D, p.vec);
        load_segments(seg_k, row_segments, k0, T);
        __syncthreads();

        scores_from_frags<DP>(S, qf, Ks);
        __syncwarp();
        softmax_tile(st, S, P, row_factor, seg_k, tq - k0, q_valid, seg_q,
                     tl::block_unmasked(q0, k0, T, row_segments), p.scale_log2);
        scale_rows(o, rows, row_factor);
        accumulate_product<DP>(o, P, Vs);
    }

    // out = O / l; lse = m + log l (natural units). Rows past T have l = 0 and are not stored.
    if ((lane & 1) == 0) {
        row_factor[lane >> 1] = st.l > 0.0f ? 1.0f / st.l : 0.0f;
        if (q_valid) p.lse[(int64_t(b) * H + h) * T + tq] = (st.m + log2f(st.l)) * kLn2;
    }
    __syncwarp();
    scale_rows(o, rows, row_factor);
    store_rows<DP>(p.out, o, S, b, q0 + warp * kFrag, T, H, h, D, 1.0f);
}

// ---- backward -------------------------------------------------------------------------------

// delta[b, h, t] = sum_d dout * out (fp32 from the bf16 tensors): the row term of dS.
constexpr int kDeltaRowsPerBlock = 8;
__global__ void attention_bf16_delta_kernel(float* delta, const bf16* dout, const bf16* out, int64_t B, int64_t T,
                                            int64_t H, int64_t D) {
    const int64_t row = blockIdx.x * int64_t(kDeltaRowsPerBlock) + threadIdx.x / kWarpSize;  // (b, t, h)
    const int lane = threadIdx.x % kWarpSize;
    if (row >= B * T * H) return;
    const bf16* g = dout + row * D;
    const bf16* o = out + row * D;
    float acc = 0.0f;
    for (int64_t d = lane; d < D; d += kWarpSize) acc += __bfloat162float(g[d]) * __bfloat162float(o[d]);
    acc = warp_sum(acc);
    if (lane == 0) {
        const int64_t h = row % H, t = (row / H) % T, b = row / (H * T);
        delta[(b * H + h) * T + t] = acc;
    }
}

// dQ's elementwise pass (rows = the warp's queries, columns = the tile's keys): P =
// exp2(s * scale_log2 - lse2) where visible, dS = P (dP - delta) -> bf16. The lane's row is
// query q_rel counted from the key tile's first key.
__device__ __forceinline__ void ds_tile_queries(const float* S, const float* dP, bf16* dS, const int32_t* seg_k,
                                                int q_rel, bool q_valid, int32_t seg_q, float lse2, float delta,
                                                bool unmasked, float scale_log2) {
    const int lane = lane_id();
#pragma unroll 4
    for (int j = 0; j < tl::kPairsPerLane; ++j) {
        const tl::Cell c = tl::pair_cell(lane, j);
        const float2 s = *reinterpret_cast<const float2*>(S + c.row * kScoreLd + c.col);
        const float2 dp = *reinterpret_cast<const float2*>(dP + c.row * kScoreLd + c.col);
        const bool v0 = unmasked || tl::visible(q_rel, c.col, q_valid, seg_q, seg_k[c.col]);
        const bool v1 = unmasked || tl::visible(q_rel, c.col + 1, q_valid, seg_q, seg_k[c.col + 1]);
        const float p0 = v0 ? exp2f(s.x * scale_log2 - lse2) : 0.0f;
        const float p1 = v1 ? exp2f(s.y * scale_log2 - lse2) : 0.0f;
        store_pair(dS, c.row, c.col, p0 * (dp.x - delta), p1 * (dp.y - delta));
    }
    __syncwarp();
}

// dK/dV's elementwise pass (rows = the warp's keys, columns = the tile's queries): P^T and
// dS^T -> bf16. The lane's row is key k_rel counted from the query tile's first query;
// column c is query c, valid when c < q_count (the tile's queries before T).
__device__ __forceinline__ void pds_tile_keys(const float* St, const float* dPt, bf16* Pt, bf16* dSt,
                                              const float* lse2_s, const float* delta_s, const int32_t* seg_q,
                                              int k_rel, int32_t seg_k, int q_count, bool unmasked,
                                              float scale_log2) {
    const int lane = lane_id();
#pragma unroll 4
    for (int j = 0; j < tl::kPairsPerLane; ++j) {
        const tl::Cell c = tl::pair_cell(lane, j);
        const float2 s = *reinterpret_cast<const float2*>(St + c.row * kScoreLd + c.col);
        const float2 dp = *reinterpret_cast<const float2*>(dPt + c.row * kScoreLd + c.col);
        const bool v0 = unmasked || tl::visible(c.col, k_rel, c.col < q_count, seg_q[c.col], seg_k);
        const bool v1 = unmasked || tl::visible(c.col + 1, k_rel, c.col + 1 < q_count, seg_q[c.col + 1], seg_k);
        const float p0 = v0 ? exp2f(s.x * scale_log2 - lse2_s[c.col]) : 0.0f;
        const float p1 = v1 ? exp2f(s.y * scale_log2 - lse2_s[c.col + 1]) : 0.0f;
        store_pair(Pt, c.row, c.col, p0, p1);
        store_pair(dSt, c.row, c.col, p0 * (dp.x - delta_s[c.col]), p1 * (dp.y - delta_s[c.col + 1]));
    }
    __syncwarp();
}

template <int DP>
__global__ void __launch_bounds__(kThreads, kMinBlocks) attention_bf16_dq_kernel(BackwardParams p) {
    using L = tl::DqLayout<DP>;
    constexpr int kLd = tl::TileLayout<DP>::kLd;
    constexpr int kDimFrags = DP / kFrag;
    extern __shared__ __align__(128) unsigned char smem[];
    bf16* Qs = region<bf16>(smem, L::kQ);
    bf16* dOs = region<bf16>(smem, L::kdO);
    bf16* Ks = region<bf16>(smem, L::kK);
    bf16* Vs = region<bf16>(smem, L::kV);
    const int warp = warp_id(), lane = lane_id();
    float* S = region<float>(smem, L::kS) + warp * kFrag * kScoreLd;
    float* dP = region<float>(smem, L::kdP) + warp * kFrag * kScoreLd;
    bf16* dS = region<bf16>(smem, L::kdS) + warp * kFrag * kProbLd;
    int32_t* seg_k = region<int32_t>(smem, L::kSegK);

    const int T = p.T, H = p.H, D = p.D;
    const int q0 = int(gridDim.x - 1 - blockIdx.x) * kTile;
    const int h = blockIdx.y, b = blockIdx.z, kvh = h / (H / p.KVH);
    const int32_t* row_segments = p.segments ? p.segments + int64_t(b) * T : nullptr;

    load_tile<DP>(Qs, p.q, b, q0, T, H, h, D, p.vec);
    load_tile<DP>(dOs, p.dout, b, q0, T, H, h, D, p.vec);
    const int tq = q0 + warp * kFrag + (lane >> 1);
    const bool q_valid = tq < T;
    const int64_t stat = (int64_t(b) * H + h) * T + tq;
    const float lse2 = q_valid ? p.lse[stat] * kLog2e : 0.0f;
    const float delta = q_valid ? p.delta[stat] : 0.0f;
    const int32_t seg_q = (row_segments && q_valid) ? row_segments[tq] : 0;

    FragAcc acc[kDimFrags];
#pragma unroll
    for (int f = 0; f < kDimFrags; ++f) wmma::fill_fragment(acc[f], 0.0f);

    const int key_end = static_cast<int>(tl::key_end(q0, T));
    for (int k0 = 0; k0 < key_end; k0 += kTile) {
        if (tl::keys_hidden(row_segments, q0, k0, tl::tile_end(k0, T))) continue;
        __syncthreads();  // every warp is done with the previous K/V tile
        load_tile<DP>(Ks, p.k, b, k0, T, p.KVH, kvh, D, p.vec);
        load_tile<DP>(Vs, p.v, b, k0, T, p.KVH, kvh, D, p.vec);
        load_segments(seg_k, row_segments, k0, T);
        __syncthreads();

        scores_from_smem<DP>(S, Qs + warp * kFrag * kLd, Ks);   // S = Q K^T
        scores_from_smem<DP>(dP, dOs + warp * kFrag * kLd, Vs);  // dP = dO V^T
        __syncwarp();
        ds_tile_queries(S, dP, dS, seg_k, tq - k0, q_valid, seg_q, lse2, delta,
                        tl::block_unmasked(q0, k0, T, row_segments), p.scale_log2);
        accumulate_product<DP>(acc, dS, Ks);  // dQ += dS K
    }
    store_rows<DP>(p.dq, acc, S, b, q0 + warp * kFrag, T, H, h, D, p.scale);  // dS/dq = scale * k
}

template <int DP>
__global__ void __launch_bounds__(kThreads, kMinBlocks) attention_bf16_dkv_kernel(BackwardParams p) {
    using L = tl::DkvLayout<DP>;
    constexpr int kLd = tl::TileLayout<DP>::kLd;
    constexpr int kDimFrags = DP / kFrag;
    extern __shared__ __align__(128) unsigned char smem[];
    bf16* Ks = region<bf16>(smem, L::kK);
    bf16* Vs = region<bf16>(smem, L::kV);
    bf16* Qs = region<bf16>(smem, L::kQ);
    bf16* dOs = region<bf16>(smem, L::kdO);
    const int warp = warp_id(), lane = lane_id();
    float* St = region<float>(smem, L::kS) + warp * kFrag * kScoreLd;
    float* dPt = region<float>(smem, L::kdP) + warp * kFrag * kScoreLd;
    bf16* Pt = region<bf16>(smem, L::kP) + warp * kFrag * kProbLd;
    bf16* dSt = region<bf16>(smem, L::kdS) + warp * kFrag * kProbLd;
    float* lse2_s = region<float>(smem, L::kLse);
    float* delta_s = region<float>(smem, L::kDelta);
    int32_t* seg_q = region<int32_t>(smem, L::kSegQ);
    int32_t* seg_k = region<int32_t>(smem, L::kSegK);

    const int T = p.T, H = p.H, D = p.D, KVH = p.KVH;
    const int k0 = int(blockIdx.x) * kTile;
    const int kvh = blockIdx.y, b = blockIdx.z, group = H / KVH;
    const int32_t* row_segments = p.segments ? p.segments + int64_t(b) * T : nullptr;

    load_tile<DP>(Ks, p.k, b, k0, T, KVH, kvh, D, p.vec);
    load_tile<DP>(Vs, p.v, b, k0, T, KVH, kvh, D, p.vec);
    load_segments(seg_k, row_segments, k0, T);
    const int k_row = warp * kFrag + (lane >> 1);  // this lane's key row in the tile

    FragAcc dk_acc[kDimFrags], dv_acc[kDimFrags];
#pragma unroll
    for (int f = 0; f < kDimFrags; ++f) {
        wmma::fill_fragment(dk_acc[f], 0.0f);
        wmma::fill_fragment(dv_acc[f], 0.0f);
    }

    const int key_tile_end = static_cast<int>(tl::tile_end(k0, T));
    for (int h = kvh * group; h < (kvh + 1) * group; ++h) {
        for (int q0 = static_cast<int>(tl::first_query_tile(k0)); q0 < T; q0 += kTile) {
            if (tl::keys_hidden(row_segments, q0, k0, key_tile_end)) continue;
            __syncthreads();  // every warp is done with the previous Q/dO tile (and K/V are loaded)
            load_tile<DP>(Qs, p.q, b, q0, T, H, h, D, p.vec);
            load_tile<DP>(dOs, p.dout, b, q0, T, H, h, D, p.vec);
            for (int r = threadIdx.x; r < kTile; r += kThreads) {
                const bool valid = q0 + r < T;
                const int64_t stat = (int64_t(b) * H + h) * T + q0 + r;
                lse2_s[r] = valid ? p.lse[stat] * kLog2e : 0.0f;
                delta_s[r] = valid ? p.delta[stat] : 0.0f;
            }
            load_segments(seg_q, row_segments, q0, T);
            __syncthreads();

            scores_from_smem<DP>(St, Ks + warp * kFrag * kLd, Qs);   // S^T = K Q^T
            scores_from_smem<DP>(dPt, Vs + warp * kFrag * kLd, dOs);  // dP^T = V dO^T
            __syncwarp();
            pds_tile_keys(St, dPt, Pt, dSt, lse2_s, delta_s, seg_q, k0 + k_row - q0, seg_k[k_row], T - q0,
                          tl::block_unmasked(q0, k0, T, row_segments), p.scale_log2);
            accumulate_product<DP>(dv_acc, Pt, dOs);  // dV += P^T dO
            accumulate_product<DP>(dk_acc, dSt, Qs);  // dK += dS^T Q
        }
    }
    store_rows<DP>(p.dv, dv_acc, St, b, k0 + warp * kFrag, T, KVH, kvh, D, 1.0f);
    store_rows<DP>(p.dk, dk_acc, St, b, k0 + warp * kFrag, T, KVH, kvh, D, p.scale);  // dS/dk = scale * q
}

// ---- host side ------------------------------------------------------------------------------

template <typename Kernel>
void set_smem(Kernel kernel, int bytes) {
    RPT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
}

unsigned tiles_of(int64_t T) { return static_cast<unsigned>(tl::tile_count(T)); }

template <int DP>
void forward_dp(cudaStream_t s, const ForwardParams& p, int64_t B) {
    constexpr int bytes = tl::ForwardLayout<DP>::kBytes;
    set_smem(attention_bf16_forward_kernel<DP>, bytes);
    const dim3 grid(tiles_of(p.T), static_cast<unsigned>(p.H), static_cast<unsigned>(B));
    attention_bf16_forward_kernel<DP><<<grid, kThreads, bytes, s>>>(p);
    RPT_CUDA_LAUNCH_CHECK();
}

template <int DP>
void backward_dp(cudaStream_t s, const BackwardParams& p, int64_t B) {
    constexpr int dq_bytes = tl::DqLayout<DP>::kBytes, dkv_bytes = tl::DkvLayout<DP>::kBytes;
    set_smem(attention_bf16_dq_kernel<DP>, dq_bytes);
    set_smem(attention_bf16_dkv_kernel<DP>, dkv_bytes);
    const dim3 dq_grid(tiles_of(p.T), static_cast<unsigned>(p.H), static_cast<unsigned>(B));
    attention_bf16_dq_kernel<DP><<<dq_grid, kThreads, dq_bytes, s>>>(p);
    RPT_CUDA_LAUNCH_CHECK();
    const dim3 dkv_grid(tiles_of(p.T), static_cast<unsigned>(p.KVH), static_cast<unsigned>(B));
    attention_bf16_dkv_kernel<DP><<<dkv_grid, kThreads, dkv_bytes, s>>>(p);
    RPT_CUDA_LAUNCH_CHECK();
}

constexpr int kSmallHeadDim = 32, kMediumHeadDim = 64;

[[noreturn]] void fail(const char* op, const std::string& what) {
    throw std::invalid_argument(std::string(op) + " (CUDA bf16): " + what);
}

void expect_dtype(const char* op, const Tensor& t, DType dtype, const char* name) {
    if (t.dtype != dtype)
        fail(op, std::string(name) + " must be " + dtype_name(dtype) + ", got " + t.describe());
}

// (B, T, H, KVH, D) from q (B, T, H, D) and k (B, T, KVH, D), checked as kernels/ops.cpp does.
attn::Shape shape_of(const char* op, const Tensor& q, const Tensor& k, const Tensor& v) {
    if (q.ndim != 4 || k.ndim != 4 || v.ndim != 4) fail(op, "q, k, v must be (B, T, heads, D)");
    const attn::Shape s{q.dim(0), q.dim(1), q.dim(2), k.dim(2), q.dim(3)};
    if (k.dim(0) != s.B || k.dim(1) != s.T || k.dim(3) != s.D || v.numel() != k.numel())
        fail(op, "k " + k.describe() + " / v " + v.describe() + " mismatch q " + q.describe());
    if (s.KVH < 1 || s.H % s.KVH != 0 || s.H > kMaxGridY || s.B > kMaxGridY)
        fail(op, "unsupported heads/batch shape " + q.describe());
    if (s.D < 1 || s.D > kMaxHeadDim) fail(op, "head dim " + std::to_string(s.D) + " not in [1, 128]");
    if (s.T > kMaxTokens) fail(op, "T = " + std::to_string(s.T) + " exceeds the 32-bit in-block index math");
    return s;
}

void expect_numel(const char* op, const Tensor& t, int64_t n, const char* name) {
    if (t.numel() != n) fail(op, std::string(name) + " has " + std::to_string(t.numel()) + " elements, expected " +
                                     std::to_string(n));
}

const int32_t* segments_of(const char* op, const Tensor& segments, const attn::Shape& s) {
    if (segments.empty()) return nullptr;
    expect_dtype(op, segments, DType::i32, "segments");
    expect_numel(op, segments, s.B * s.T, "segments");
    return static_cast<const int32_t*>(segments.data);
}

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

}  // namespace

void attention_forward(void* stream, Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor segments) {
    const char* op = "attention_forward";
    expect_dtype(op, q, DType::bf16, "q");
    expect_dtype(op, k, DType::bf16, "k");
    expect_dtype(op, v, DType::bf16, "v");
    expect_dtype(op, out, DType::bf16, "out");
    expect_dtype(op, lse, DType::f32, "lse");
    const attn::Shape s = shape_of(op, q, k, v);
    expect_numel(op, out, q.numel(), "out");
    expect_numel(op, lse, s.B * s.H * s.T, "lse");
    const int32_t* seg = segments_of(op, segments, s);
    if (s.B <= 0 || s.T <= 0 || s.H <= 0) return;
    const ForwardParams p{static_cast<bf16*>(out.data), lse.f32(), static_cast<const bf16*>(q.data),
                          static_cast<const bf16*>(k.data), static_cast<const bf16*>(v.data), seg,
                          int(s.T), int(s.H), int(s.KVH), int(s.D), kLog2e / std::sqrt(static_cast<float>(s.D)),
                          s.D % 8 == 0 && aligned16(q.data) && aligned16(k.data) && aligned16(v.data)};
    cudaStream_t st = as_stream(stream);
    if (s.D <= kSmallHeadDim) forward_dp<kSmallHeadDim>(st, p, s.B);
    else if (s.D <= kMediumHeadDim) forward_dp<kMediumHeadDim>(st, p, s.B);
    else forward_dp<kMaxHeadDim>(st, p, s.B);
}

void attention_backward(void* stream, Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v,
                        Tensor out, Tensor lse, Tensor segments) {
    const char* op = "attention_backward";
    expect_dtype(op, dq, DType::bf16, "dq");
    expect_dtype(op, dk, DType::bf16, "dk");
    expect_dtype(op, dv, DType::bf16, "dv");
    expect_dtype(op, dout, DType::bf16, "dout");
    expect_dtype(op, q, DType::bf16, "q");
    expect_dtype(op, k, DType::bf16, "k");
    expect_dtype(op, v, DType::bf16, "v");
    expect_dtype(op, out, DType::bf16, "out");
    expect_dtype(op, lse, DType::f32, "lse");
    const attn::Shape s = shape_of(op, q, k, v);
    expect_numel(op, dq, q.numel(), "dq");
    expect_numel(op, dk, k.numel(), "dk");
    expect_numel(op, dv, v.numel(), "dv");
    expect_numel(op, dout, q.numel(), "dout");
    expect_numel(op, out, q.numel(), "out");
    expect_numel(op, lse, s.B * s.H * s.T, "lse");
    const int32_t* seg = segments_of(op, segments, s);
    if (s.B <= 0 || s.T <= 0 || s.H <= 0) return;

    cudaStream_t st = as_stream(stream);
    ScratchBuffer delta(static_cast<size_t>(s.B * s.H * s.T) * sizeof(float), st, "attention_backward (bf16) delta");
    const int64_t rows = s.B * s.T * s.H;
    attention_bf16_delta_kernel<<<static_cast<unsigned>(ceil_div<int64_t>(rows, kDeltaRowsPerBlock)),
                                  kDeltaRowsPerBlock * kWarpSize, 0, st>>>(
        delta.as<float>(), static_cast<const bf16*>(dout.data), static_cast<const bf16*>(out.data), s.B, s.T, s.H,
        s.D);
    RPT_CUDA_LAUNCH_CHECK();
    const float scale = 1.0f / std::sqrt(static_cast<float>(s.D));
    const BackwardParams p{static_cast<bf16*>(dq.data), static_cast<bf16*>(dk.data), static_cast<bf16*>(dv.data),
                           static_cast<const bf16*>(dout.data), static_cast<const bf16*>(q.data),
                           static_cast<const bf16*>(k.data), static_cast<const bf16*>(v.data), lse.f32(),
                           delta.as<float>(), seg, int(s.T), int(s.H), int(s.KVH), int(s.D), scale, scale * kLog2e,
                           s.D % 8 == 0 && aligned16(dout.data) && aligned16(q.data) && aligned16(k.data) &&
                               aligned16(v.data)};
    if (s.D <= kSmallHeadDim) backward_dp<kSmallHeadDim>(st, p, s.B);
    else if (s.D <= kMediumHeadDim) backward_dp<kMediumHeadDim>(st, p, s.B);
    else backward_dp<kMaxHeadDim>(st, p, s.B);
}

}  // namespace rpt::cuda::mixed
