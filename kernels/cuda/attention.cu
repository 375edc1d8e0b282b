// Causal grouped-query attention, flash-style, fp32 (forward and backward).
//
//   q (B, T, H, D), k and v (B, T, KVH, D), out (B, T, H, D), lse (B, H, T)
//   S = (q k^T) / sqrt(D), causal (query t sees keys 0..t), P = softmax(S), out = P v;
//   query head h reads KV head h / (H / KVH).
//
// No T x T matrix ever exists: scores are produced one (query tile x key tile) block at a
// time in registers, softmax is computed online (running max m and sum l per query), and
// the backward pass recomputes P from the saved lse. Everything is deterministic and
// atomic-free: every output element has exactly one writer that sums in a fixed order.
//
// Thread layout (all three kernels): 256 threads as a 16 x 16 grid (tx, ty). A thread owns
// 4 "row" items ty*4 + i (i < 4) and strided "column" items tx + 16 j, which makes every
// shared-memory access conflict-free or a broadcast:
//   * row-side operands are stored transposed, [d][row] with stride rows + 4, and read as
//     one float4 (4 rows) that the 16 tx-threads of a ty share (broadcast);
//   * column-side operands are stored row-major with stride D + 1, so the 16 tx-threads
//     reading item tx + 16 j at the same d hit 16 different banks.
// Inner loops are then 1-2 LDS.128 + a few LDS.32 per 8-16 FMAs, all operands on chip.
//
// Head dims: kernels are templated on the padded width DP in {32, 64, 128} and take the
// real D at run time (D <= DP, padding lanes are zero), so every D up to 128 works; D
// that is not a multiple of 32 wastes the padding's FLOPs. D > 128 is rejected.
//
// Packed rows (segments (B, T) i32, see kernels/ops.h): a key of another sequence of the
// row is masked like a future key (attn::key_visible, kernels/attention_args.h, the rule
// the CPU twin and the reference share), and a whole tile of
// keys that no query of the tile can see is skipped (keys_hidden: ids never decrease
// along a row, so it takes the first query's id and the tile's first and last key ids).
//
// What limits it: fp32 FMA on CUDA cores (no tensor cores; the bf16 path will use MMA),
// and the shared-memory footprint (76-120 KB per block at D = 128: 1-2 blocks per SM)
// without cp.async double buffering, so tile loads are not overlapped with math.
#include <algorithm>
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_ops.h"

namespace rpt::cuda {

namespace {

constexpr int kTileThreadsX = 16;
constexpr int kTileThreadsY = 16;
constexpr int kAttnThreads = kTileThreadsX * kTileThreadsY;
constexpr int kRowsPerThread = 4;
constexpr int kRowTile = kTileThreadsY * kRowsPerThread;  // 64 row items per block
constexpr int kColTile = 32;                              // column items per inner tile
constexpr int kColsPerThread = kColTile / kTileThreadsX;  // 2
constexpr int kRowPad = 4;                                // keeps float4 alignment, spreads banks
constexpr int kRowStride = kRowTile + kRowPad;            // transposed [d][row] buffers
constexpr int kMaxHeadDim = 128;
static_assert(kRowsPerThread == 4, "row-side operands are read as one float4");

// What the kernels read: the op's arguments, the score scale 1/sqrt(D) and, for the
// backward, the row term delta (B, H, T) of the softmax backward.
struct ForwardKernelArgs {
    attn::ForwardArgs a;
    float scale;
};
struct BackwardKernelArgs {
    attn::BackwardArgs a;
    const float* delta;
    float scale;
};

// attn::key_visible within a row of T tokens: rows past T (tile padding) see nothing.
__device__ __forceinline__ bool key_visible(const int32_t* row_segments, int64_t tq, int64_t tk, int64_t T) {
    return tq < T && attn::key_visible(row_segments, tq, tk);
}

// Whether every key in [k0, k1) (k1 <= T) belongs to a sequence earlier than that of the
// tile's first query (id query_segment, the smallest of its tile): then no query of the
// tile sees any of them. The decision is the same for every thread of a block.
__device__ __forceinline__ bool keys_hidden(const int32_t* row_segments, int32_t query_segment, int64_t k0,
                                            int64_t k1) {
    return row_segments && query_segment != 0 && row_segments[k0] != 0 && row_segments[k1 - 1] < query_segment;
}

// Shared-memory layouts, in floats.
template <int DP>
struct ForwardSmem {
    static constexpr int kColStride = DP + 1;
    static constexpr int kQt = 0;                             // [DP][kRowStride]  scaled queries, transposed
    static constexpr int kK = kQt + DP * kRowStride;          // [kColTile][DP + 1] keys
    static constexpr int kV = kK + kColTile * kColStride;     // [kColTile][DP + 1] values
    static constexpr int kPt = kV + kColTile * kColStride;    // [kColTile][kRowStride] P, transposed
    static constexpr int kFloats = kPt + kColTile * kRowStride;
};

template <int DP>
struct DqSmem {
    static constexpr int kColStride = DP + 1;
    static constexpr int kQt = 0;                             // [DP][kRowStride] scaled queries
    static constexpr int kdOt = kQt + DP * kRowStride;        // [DP][kRowStride] dout
    static constexpr int kK = kdOt + DP * kRowStride;         // [kColTile][DP + 1]
    static constexpr int kV = kK + kColTile * kColStride;     // [kColTile][DP + 1]
    static constexpr int kdSt = kV + kColTile * kColStride;   // [kColTile][kRowStride]
    static constexpr int kFloats = kdSt + kColTile * kRowStride;
};

template <int DP>
struct DkvSmem {
    static constexpr int kColStride = DP + 1;
    static constexpr int kKt = 0;                             // [DP][kRowStride] keys, transposed
    static constexpr int kVt = kKt + DP * kRowStride;         // [DP][kRowStride] values, transposed
    static constexpr int kQ = kVt + DP * kRowStride;          // [kColTile][DP + 1] scaled queries
    static constexpr int kdO = kQ + kColTile * kColStride;    // [kColTile][DP + 1] dout
    static constexpr int kP = kdO + kColTile * kColStride;    // [kColTile][kRowStride] P (query-major)
    static constexpr int kdS = kP + kColTile * kRowStride;    // [kColTile][kRowStride] dS
    static constexpr int kLse = kdS + kColTile * kRowStride;  // [kColTile]
    static constexpr int kDelta = kLse + kColTile;            // [kColTile]
    // Segment ids (i32 in float slots) of the block's keys and of the query tile, so the
    // mask reads shared memory instead of keeping a global pointer live (register budget).
    static constexpr int kSegK = kDelta + kColTile;           // [kRowTile]
    static constexpr int kSegQ = kSegK + kRowTile;            // [kColTile]
    static constexpr int kFloats = kSegQ + kColTile;
};

// Offset of element (b, t, head, 0) of a (B, T, heads, D) tensor.
__device__ __forceinline__ int64_t token_offset(int64_t b, int64_t t, int64_t T, int64_t heads, int64_t head,
                                                int64_t D) {
    return ((b * T + t) * heads + head) * D;
}

// dst[d * kRowStride + r] = src row (t0 + r) * scale, rows r < kRowTile, zero-padded past T
// and past D. Global reads are coalesced along d.
template <int DP>
__device__ void load_rows_transposed(float* dst, const float* src, int64_t b, int64_t t0, int64_t T, int64_t heads,
                                     int64_t head, int64_t D, float scale) {
    for (int idx = threadIdx.x; idx < kRowTile * DP; idx += kAttnThreads) {
        const int r = idx / DP, d = idx % DP;
        const int64_t t = t0 + r;
        dst[d * kRowStride + r] = (t < T && d < D) ? src[token_offset(b, t, T, heads, head, D) + d] * scale : 0.0f;
    }
}

// dst[c * (DP + 1) + d] = src row (t0 + c) * scale, rows c < kColTile, zero-padded.
template <int DP>
__device__ void load_cols(float* dst, const float* src, int64_t b, int64_t t0, int64_t T, int64_t heads, int64_t head,
                          int64_t D, float scale) {
    for (int idx = threadIdx.x; idx < kColTile * DP; idx += kAttnThreads) {
        const int c = idx / DP, d = idx % DP;
        const int64_t t = t0 + c;
        dst[c * (DP + 1) + d] = (t < T && d < D) ? src[token_offset(b, t, T, heads, head, D) + d] * scale : 0.0f;
    }
}

// Reductions over the 16 tx-threads that share a row (lanes differing in their low 4 bits).
__device__ __forceinline__ float row_group_max(float v) {
    for (int offset = kTileThreadsX / 2; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
    return v;
}
__device__ __forceinline__ float row_group_sum(float v) {
    for (int offset = kTileThreadsX / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullMask, v, offset);
    return v;
}

__device__ __forceinline__ float4 load4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ void store4(float* p, float a, float b, float c, float d) {
    *reinterpret_cast<float4*>(p) = make_float4(a, b, c, d);
}

// ---- forward ---------------------------------------------------------------------------
// Grid (query tiles of 64, H, B); the heaviest (latest) query tiles are launched first so
// the causal triangle's tail does not leave SMs idle. Per key tile of 32: S = Q K^T
// (4 x 2 per thread), online softmax in registers, P to shared memory (transposed), then
// O += P V (4 x DP/16 per thread).
template <int DP>
__global__ void __launch_bounds__(kAttnThreads)
    attention_forward_kernel(ForwardKernelArgs p) {
    float* out = p.a.out;
    float* lse = p.a.lse;
    const float *q = p.a.q, *k = p.a.k, *v = p.a.v;
    const int32_t* segments = p.a.segments;
    const int64_t T = p.a.shape.T, H = p.a.shape.H, KVH = p.a.shape.KVH, D = p.a.shape.D;
    const float scale = p.scale;
    using L = ForwardSmem<DP>;
    constexpr int kDimCols = DP / kTileThreadsX;
    extern __shared__ float4 smem4[];
    float* smem = reinterpret_cast<float*>(smem4);
    float* Qt = smem + L::kQt;
    float* Ks = smem + L::kK;
    float* Vs = smem + L::kV;
    float* Pt = smem + L::kPt;

    const int tx = threadIdx.x % kTileThreadsX, ty = threadIdx.x / kTileThreadsX;
    const int64_t q0 = int64_t(gridDim.x - 1 - blockIdx.x) * kRowTile;
    const int64_t h = blockIdx.y, b = blockIdx.z;
    const int64_t kvh = h / (H / KVH);
    const int32_t* row_segments = segments ? segments + b * T : nullptr;

    load_rows_transposed<DP>(Qt, q, b, q0, T, H, h, D, scale);

    float m[kRowsPerThread], l[kRowsPerThread], o[kRowsPerThread][kDimCols];
#pragma unroll
    for (int i = 0; i < kRowsPerThread; ++i) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
#pragma unroll
        for (int jj = 0; jj < kDimCols; ++jj) o[i][jj] = 0.0f;
    }

    const int64_t key_end = q0 + kRowTile < T ? q0 + kRowTile : T;
    const int32_t query_segment = row_segments ? row_segments[q0] : 0;
    for (int64_t k0 = 0; k0 < key_end; k0 += kColTile) {
        if (keys_hidden(row_segments, query_segment, k0, min(k0 + kColTile, T))) continue;
        __syncthreads();  // the previous tile's readers of Ks/Vs/Pt are done (and Qt is loaded)
        load_cols<DP>(Ks, k, b, k0, T, KVH, kvh, D, 1.0f);
        load_cols<DP>(Vs, v, b, k0, T, KVH, kvh, D, 1.0f);
        __syncthreads();

        float s[kRowsPerThread][kColsPerThread] = {};
#pragma unroll 8
        for (int d = 0; d < DP; ++d) {
            const float4 qv = load4(Qt + d * kRowStride + ty * kRowsPerThread);
            const float qr[kRowsPerThread] = {qv.x, qv.y, qv.z, qv.w};
#pragma unroll
            for (int j = 0; j < kColsPerThread; ++j) {
                const float kd = Ks[(tx + kTileThreadsX * j) * L::kColStride + d];
#pragma unroll
                for (int i = 0; i < kRowsPerThread; ++i) s[i][j] += qr[i] * kd;
            }
        }

#pragma unroll
        for (int i = 0; i < kRowsPerThread; ++i) {
            const int64_t tq = q0 + ty * kRowsPerThread + i;
            float row_max = -INFINITY;
#pragma unroll
            for (int j = 0; j < kColsPerThread; ++j) {
                const int64_t tk = k0 + tx + kTileThreadsX * j;
                if (!key_visible(row_segments, tq, tk, T)) s[i][j] = -INFINITY;
                row_max = fmaxf(row_max, s[i][j]);
            }
            row_max = row_group_max(row_max);
            const float m_new = fmaxf(m[i], row_max);
            const float m_use = m_new == -INFINITY ? 0.0f : m_new;  // nothing visible yet (padding, other sequences)
            float row_sum = 0.0f;
#pragma unroll
            for (int j = 0; j < kColsPerThread; ++j) {
                s[i][j] = expf(s[i][j] - m_use);  // exp(-inf) = 0 for masked keys
                row_sum += s[i][j];
            }
            row_sum = row_group_sum(row_sum);
            const float alpha = expf(m[i] - m_use);  // 0 on the first tile (m = -inf)
            l[i] = l[i] * alpha + row_sum;
            m[i] = m_new;
#pragma unroll
            for (int jj = 0; jj < kDimCols; ++jj) o[i][jj] *= alpha;
        }
#pragma unroll
        for (int j = 0; j < kColsPerThread; ++j)
            store4(Pt + (tx + kTileThreadsX * j) * kRowStride + ty * kRowsPerThread, s[0][j], s[1][j], s[2][j],
                   s[3][j]);
        __syncthreads();

#pragma unroll 4
        for (int c = 0; c < kColTile; ++c) {
            const float4 pv = load4(Pt + c * kRowStride + ty * kRowsPerThread);
            const float pr[kRowsPerThread] = {pv.x, pv.y, pv.z, pv.w};
#pragma unroll
            for (int jj = 0; jj < kDimCols; ++jj) {
                const float vd = Vs[c * L::kColStride + tx + kTileThreadsX * jj];
#pragma unroll
                for (int i = 0; i < kRowsPerThread; ++i) o[i][jj] += pr[i] * vd;
            }
        }
    }

#pragma unroll
    for (int i = 0; i < kRowsPerThread; ++i) {
        const int64_t tq = q0 + ty * kRowsPerThread + i;
        if (tq >= T) continue;
        const float inv_l = 1.0f / l[i];
        float* dst = out + token_offset(b, tq, T, H, h, D);
#pragma unroll
        for (int jj = 0; jj < kDimCols; ++jj) {
            const int dd = tx + kTileThreadsX * jj;
            if (dd < D) dst[dd] = o[i][jj] * inv_l;
        }
        if (tx == 0) lse[(b * H + h) * T + tq] = m[i] + logf(l[i]);
    }
}

// ---- backward ---------------------------------------------------------------------------

// delta[b, h, t] = sum_d dout[b, t, h, d] * out[b, t, h, d]: the row term of the softmax
// backward, dS = P * (dP - delta). One warp per (b, t, h) row, coalesced along d.
constexpr int kDeltaRowsPerBlock = 8;
__global__ void attention_delta_kernel(float* delta, const float* dout, const float* out, int64_t B, int64_t T,
                                       int64_t H, int64_t D) {
    const int64_t row = blockIdx.x * int64_t(kDeltaRowsPerBlock) + threadIdx.x / kWarpSize;  // (b, t, h) flattened
    const int lane = threadIdx.x % kWarpSize;
    if (row >= B * T * H) return;
    const float* g = dout + row * D;
    const float* o = out + row * D;
    float acc = 0.0f;
    for (int64_t d = lane; d < D; d += kWarpSize) acc += g[d] * o[d];
    acc = warp_sum(acc);
    if (lane == 0) {
        const int64_t h = row % H, t = (row / H) % T, b = row / (H * T);
        delta[(b * H + h) * T + t] = acc;
    }
}

// dq for one (query tile of 64, h, b): loop over key tiles of 32, recompute
// S = Q K^T and dP = dO V^T (4 x 2 each per thread, one fused d loop), P = exp(S - lse),
// dS = P (dP - delta) to shared memory, then dQ += dS K. Overwrites dq.
template <int DP>
__global__ void __launch_bounds__(kAttnThreads)
    attention_backward_dq_kernel(BackwardKernelArgs p) {
    float* dq = p.a.dq;
    const float *dout = p.a.dout, *q = p.a.q, *k = p.a.k, *v = p.a.v, *lse = p.a.lse, *delta = p.delta;
    const int32_t* segments = p.a.segments;
    const int64_t T = p.a.shape.T, H = p.a.shape.H, KVH = p.a.shape.KVH, D = p.a.shape.D;
    const float scale = p.scale;
    using L = DqSmem<DP>;
    constexpr int kDimCols = DP / kTileThreadsX;
    extern __shared__ float4 smem4[];
    float* smem = reinterpret_cast<float*>(smem4);
    float* Qt = smem + L::kQt;
    float* dOt = smem + L::kdOt;
    float* Ks = smem + L::kK;
    float* Vs = smem + L::kV;
    float* dSt = smem + L::kdSt;

    const int tx = threadIdx.x % kTileThreadsX, ty = threadIdx.x / kTileThreadsX;
    const int64_t q0 = int64_t(gridDim.x - 1 - blockIdx.x) * kRowTile;
    const int64_t h = blockIdx.y, b = blockIdx.z;
    const int64_t kvh = h / (H / KVH);
    const int32_t* row_segments = segments ? segments + b * T : nullptr;

    load_rows_transposed<DP>(Qt, q, b, q0, T, H, h, D, scale);
    load_rows_transposed<DP>(dOt, dout, b, q0, T, H, h, D, 1.0f);

    float row_lse[kRowsPerThread], row_delta[kRowsPerThread], acc[kRowsPerThread][kDimCols];
#pragma unroll
    for (int i = 0; i < kRowsPerThread; ++i) {
        const int64_t tq = q0 + ty * kRowsPerThread + i;
        row_lse[i] = tq < T ? lse[(b * H + h) * T + tq] : 0.0f;
        row_delta[i] = tq < T ? delta[(b * H + h) * T + tq] : 0.0f;
#pragma unroll
        for (int jj = 0; jj < kDimCols; ++jj) acc[i][jj] = 0.0f;
    }

    const int64_t key_end = q0 + kRowTile < T ? q0 + kRowTile : T;
    const int32_t query_segment = row_segments ? row_segments[q0] : 0;
    for (int64_t k0 = 0; k0 < key_end; k0 += kColTile) {
        if (keys_hidden(row_segments, query_segment, k0, min(k0 + kColTile, T))) continue;
        __syncthreads();
        load_cols<DP>(Ks, k, b, k0, T, KVH, kvh, D, 1.0f);
        load_cols<DP>(Vs, v, b, k0, T, KVH, kvh, D, 1.0f);
        __syncthreads();

        float s[kRowsPerThread][kColsPerThread] = {}, dp[kRowsPerThread][kColsPerThread] = {};
#pragma unroll 4
        for (int d = 0; d < DP; ++d) {
            const float4 qv = load4(Qt + d * kRowStride + ty * kRowsPerThread);
            const float4 gv = load4(dOt + d * kRowStride + ty * kRowsPerThread);
            const float qr[kRowsPerThread] = {qv.x, qv.y, qv.z, qv.w};
            const float gr[kRowsPerThread] = {gv.x, gv.y, gv.z, gv.w};
#pragma unroll
            for (int j = 0; j < kColsPerThread; ++j) {
                const int c = tx + kTileThreadsX * j;
                const float kd = Ks[c * L::kColStride + d], vd = Vs[c * L::kColStride + d];
#pragma unroll
                for (int i = 0; i < kRowsPerThread; ++i) {
                    s[i][j] += qr[i] * kd;
                    dp[i][j] += gr[i] * vd;
                }
            }
        }

#pragma unroll
        for (int i = 0; i < kRowsPerThread; ++i) {
            const int64_t tq = q0 + ty * kRowsPerThread + i;
#pragma unroll
            for (int j = 0; j < kColsPerThread; ++j) {
                const int64_t tk = k0 + tx + kTileThreadsX * j;
                const float p = key_visible(row_segments, tq, tk, T) ? expf(s[i][j] - row_lse[i]) : 0.0f;
                s[i][j] = p * (dp[i][j] - row_delta[i]);  // dS
            }
        }
#pragma unroll
        for (int j = 0; j < kColsPerThread; ++j)
            store4(dSt + (tx + kTileThreadsX * j) * kRowStride + ty * kRowsPerThread, s[0][j], s[1][j], s[2][j],
                   s[3][j]);
        __syncthreads();

#pragma unroll 4
        for (int c = 0; c < kColTile; ++c) {
            const float4 sv = load4(dSt + c * kRowStride + ty * kRowsPerThread);
            const float sr[kRowsPerThread] = {sv.x, sv.y, sv.z, sv.w};
#pragma unroll
            for (int jj = 0; jj < kDimCols; ++jj) {
                const float kd = Ks[c * L::kColStride + tx + kTileThreadsX * jj];
#pragma unroll
                for (int i = 0; i < kRowsPerThread; ++i) acc[i][jj] += sr[i] * kd;
            }
        }
    }

#pragma unroll
    for (int i = 0; i < kRowsPerThread; ++i) {
        const int64_t tq = q0 + ty * kRowsPerThread + i;
        if (tq >= T) continue;
        float* dst = dq + token_offset(b, tq, T, H, h, D);
#pragma unroll
        for (int jj = 0; jj < kDimCols; ++jj) {
            const int dd = tx + kTileThreadsX * jj;
            if (dd < D) dst[dd] = acc[i][jj] * scale;  // dS/dq = scale * k
        }
    }
}

// dk, dv for one (key tile of 64, kv head, b): loop over the query heads of the group and
// over the query tiles (of 32) at or after the key tile, recompute S^T and dP^T
// (4 keys x 2 queries per thread), then dV += P^T dO and dK += dS^T (scale * Q).
// Every dk/dv element has one writer: no atomics across heads or query tiles.
// Two blocks per SM (a 128-register budget) is what the D = 128 tile's shared memory
// allows on H100 anyway; stating it keeps ptxas from squeezing the small-D variants.
constexpr int kDkvBlocksPerSm = 2;
template <int DP>
__global__ void __launch_bounds__(kAttnThreads, kDkvBlocksPerSm)
    attention_backward_dkv_kernel(BackwardKernelArgs p) {
    float *dk = p.a.dk, *dv = p.a.dv;
    const float *dout = p.a.dout, *q = p.a.q, *k = p.a.k, *v = p.a.v, *lse = p.a.lse, *delta = p.delta;
    const int32_t* segments = p.a.segments;
    const int64_t T = p.a.shape.T, H = p.a.shape.H, KVH = p.a.shape.KVH, D = p.a.shape.D;
    const float scale = p.scale;
    using L = DkvSmem<DP>;
    constexpr int kDimCols = DP / kTileThreadsX;
    extern __shared__ float4 smem4[];
    float* smem = reinterpret_cast<float*>(smem4);
    float* Kt = smem + L::kKt;
    float* Vt = smem + L::kVt;
    float* Qs = smem + L::kQ;
    float* dOs = smem + L::kdO;
    float* Ps = smem + L::kP;
    float* dSs = smem + L::kdS;
    float* lse_s = smem + L::kLse;
    float* delta_s = smem + L::kDelta;
    int32_t* seg_k = reinterpret_cast<int32_t*>(smem + L::kSegK);
    int32_t* seg_q = reinterpret_cast<int32_t*>(smem + L::kSegQ);

    const int tx = threadIdx.x % kTileThreadsX, ty = threadIdx.x / kTileThreadsX;
    const int64_t k0 = int64_t(blockIdx.x) * kRowTile;
    const int64_t kvh = blockIdx.y, b = blockIdx.z;
    const int64_t group = H / KVH;
    const int32_t* row_segments = segments ? segments + b * T : nullptr;  // read into smem only

    load_rows_transposed<DP>(Kt, k, b, k0, T, KVH, kvh, D, 1.0f);
    load_rows_transposed<DP>(Vt, v, b, k0, T, KVH, kvh, D, 1.0f);
    for (int r = threadIdx.x; r < kRowTile; r += kAttnThreads)
        seg_k[r] = (row_segments && k0 + r < T) ? row_segments[k0 + r] : 0;

    float dk_acc[kRowsPerThread][kDimCols], dv_acc[kRowsPerThread][kDimCols];
#pragma unroll
    for (int i = 0; i < kRowsPerThread; ++i)
#pragma unroll
        for (int jj = 0; jj < kDimCols; ++jj) dk_acc[i][jj] = dv_acc[i][jj] = 0.0f;

    const int64_t first_query_tile = (k0 / kColTile) * kColTile;  // earlier queries cannot see these keys
    for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
        for (int64_t q0 = first_query_tile; q0 < T; q0 += kColTile) {
            if (keys_hidden(row_segments, row_segments ? row_segments[q0] : 0, k0, min(k0 + kRowTile, T))) continue;
            __syncthreads();
            load_cols<DP>(Qs, q, b, q0, T, H, h, D, scale);
            load_cols<DP>(dOs, dout, b, q0, T, H, h, D, 1.0f);
            for (int r = threadIdx.x; r < kColTile; r += kAttnThreads) {
                const int64_t tq = q0 + r;
                lse_s[r] = tq < T ? lse[(b * H + h) * T + tq] : 0.0f;
                delta_s[r] = tq < T ? delta[(b * H + h) * T + tq] : 0.0f;
                seg_q[r] = (row_segments && tq < T) ? row_segments[tq] : 0;
            }
            __syncthreads();

            float s[kRowsPerThread][kColsPerThread] = {}, dp[kRowsPerThread][kColsPerThread] = {};
#pragma unroll 4
            for (int d = 0; d < DP; ++d) {
                const float4 kv4 = load4(Kt + d * kRowStride + ty * kRowsPerThread);
                const float4 vv4 = load4(Vt + d * kRowStride + ty * kRowsPerThread);
                const float kr[kRowsPerThread] = {kv4.x, kv4.y, kv4.z, kv4.w};
                const float vr[kRowsPerThread] = {vv4.x, vv4.y, vv4.z, vv4.w};
#pragma unroll
                for (int j = 0; j < kColsPerThread; ++j) {
                    const int r = tx + kTileThreadsX * j;
                    const float qd = Qs[r * L::kColStride + d], gd = dOs[r * L::kColStride + d];
#pragma unroll
                    for (int i = 0; i < kRowsPerThread; ++i) {
                        s[i][j] += kr[i] * qd;
                        dp[i][j] += vr[i] * gd;
                    }
                }
            }

#pragma unroll
            for (int j = 0; j < kColsPerThread; ++j) {
                const int r = tx + kTileThreadsX * j;
                const int64_t tq = q0 + r;
#pragma unroll
                for (int i = 0; i < kRowsPerThread; ++i) {
                    const int64_t tk = k0 + ty * kRowsPerThread + i;
                    const bool visible = tq < T && attn::key_visible(tq, tk, seg_q[r], seg_k[ty * kRowsPerThread + i]);
                    const float p = visible ? expf(s[i][j] - lse_s[r]) : 0.0f;
                    s[i][j] = p;
                    dp[i][j] = p * (dp[i][j] - delta_s[r]);  // dS
                }
                store4(Ps + r * kRowStride + ty * kRowsPerThread, s[0][j], s[1][j], s[2][j], s[3][j]);
                store4(dSs + r * kRowStride + ty * kRowsPerThread, dp[0][j], dp[1][j], dp[2][j], dp[3][j]);
            }
            __syncthreads();

#pragma unroll 2
            for (int r = 0; r < kColTile; ++r) {
                const float4 pv = load4(Ps + r * kRowStride + ty * kRowsPerThread);
                const float4 sv = load4(dSs + r * kRowStride + ty * kRowsPerThread);
                const float pr[kRowsPerThread] = {pv.x, pv.y, pv.z, pv.w};
                const float sr[kRowsPerThread] = {sv.x, sv.y, sv.z, sv.w};
#pragma unroll
                for (int jj = 0; jj < kDimCols; ++jj) {
                    const int dd = tx + kTileThreadsX * jj;
                    const float gd = dOs[r * L::kColStride + dd], qd = Qs[r * L::kColStride + dd];
#pragma unroll
                    for (int i = 0; i < kRowsPerThread; ++i) {
                        dv_acc[i][jj] += pr[i] * gd;
                        dk_acc[i][jj] += sr[i] * qd;  // Qs already carries the 1/sqrt(D) scale
                    }
                }
            }
        }
    }

#pragma unroll
    for (int i = 0; i < kRowsPerThread; ++i) {
        const int64_t tk = k0 + ty * kRowsPerThread + i;
        if (tk >= T) continue;
        float* dk_dst = dk + token_offset(b, tk, T, KVH, kvh, D);
        float* dv_dst = dv + token_offset(b, tk, T, KVH, kvh, D);
#pragma unroll
        for (int jj = 0; jj < kDimCols; ++jj) {
            const int dd = tx + kTileThreadsX * jj;
            if (dd < D) {
                dk_dst[dd] = dk_acc[i][jj];
                dv_dst[dd] = dv_acc[i][jj];
            }
        }
    }
}

// ---- host side ----------------------------------------------------------------------------

// Sets the dynamic shared-memory limit of `kernel` (needed above 48 KB) and returns bytes.
template <typename Kernel>
size_t prepare_smem(Kernel kernel, int floats) {
    const size_t bytes = static_cast<size_t>(floats) * sizeof(float);
    RPT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
    return bytes;
}

unsigned tiles(int64_t T) { return static_cast<unsigned>(ceil_div<int64_t>(T, kRowTile)); }

void check_shape(const char* op, int64_t B, int64_t H, int64_t KVH, int64_t D) {
    if (D < 1 || D > kMaxHeadDim)
        throw std::invalid_argument(std::string(op) + " (CUDA): head dim " + std::to_string(D) + " not in [1, " +
                                    std::to_string(kMaxHeadDim) + "]");
    if (KVH < 1 || H % KVH != 0 || H > kMaxGridY || B > kMaxGridY)
        throw std::invalid_argument(std::string(op) + " (CUDA): unsupported heads/batch shape");
}

template <int DP>
void forward_dp(cudaStream_t s, const ForwardKernelArgs& p) {
    const attn::Shape& sh = p.a.shape;
    const size_t smem = prepare_smem(attention_forward_kernel<DP>, ForwardSmem<DP>::kFloats);
    const dim3 grid(tiles(sh.T), static_cast<unsigned>(sh.H), static_cast<unsigned>(sh.B));
    attention_forward_kernel<DP><<<grid, kAttnThreads, smem, s>>>(p);
    RPT_CUDA_LAUNCH_CHECK();
}

template <int DP>
void backward_dp(cudaStream_t s, const BackwardKernelArgs& p) {
    const attn::Shape& sh = p.a.shape;
    const size_t dq_smem = prepare_smem(attention_backward_dq_kernel<DP>, DqSmem<DP>::kFloats);
    const dim3 dq_grid(tiles(sh.T), static_cast<unsigned>(sh.H), static_cast<unsigned>(sh.B));
    attention_backward_dq_kernel<DP><<<dq_grid, kAttnThreads, dq_smem, s>>>(p);
    RPT_CUDA_LAUNCH_CHECK();
    const size_t dkv_smem = prepare_smem(attention_backward_dkv_kernel<DP>, DkvSmem<DP>::kFloats);
    const dim3 dkv_grid(tiles(sh.T), static_cast<unsigned>(sh.KVH), static_cast<unsigned>(sh.B));
    attention_backward_dkv_kernel<DP><<<dkv_grid, kAttnThreads, dkv_smem, s>>>(p);
    RPT_CUDA_LAUNCH_CHECK();
}

// The padded head dim a runtime D runs with.
constexpr int kSmallHeadDim = 32, kMediumHeadDim = 64;

}  // namespace

void attention_forward(void* stream, const attn::ForwardArgs& a) {
    const auto [B, T, H, KVH, D] = a.shape;
    if (B <= 0 || T <= 0 || H <= 0) return;
    check_shape("attention_forward", B, H, KVH, D);
    cudaStream_t s = as_stream(stream);
    const ForwardKernelArgs p{a, 1.0f / std::sqrt(static_cast<float>(D))};
    if (D <= kSmallHeadDim) forward_dp<kSmallHeadDim>(s, p);
    else if (D <= kMediumHeadDim) forward_dp<kMediumHeadDim>(s, p);
    else forward_dp<kMaxHeadDim>(s, p);
}

void attention_backward(void* stream, const attn::BackwardArgs& a) {
    const auto [B, T, H, KVH, D] = a.shape;
    if (B <= 0 || T <= 0 || H <= 0) return;
    check_shape("attention_backward", B, H, KVH, D);
    cudaStream_t s = as_stream(stream);
    ScratchBuffer delta(static_cast<size_t>(B * H * T) * sizeof(float), s, "attention_backward delta");
    const int64_t rows = B * T * H;
    attention_delta_kernel<<<static_cast<unsigned>(ceil_div<int64_t>(rows, kDeltaRowsPerBlock)),
                             kDeltaRowsPerBlock * kWarpSize, 0, s>>>(delta.as<float>(), a.dout, a.out, B, T, H, D);
    RPT_CUDA_LAUNCH_CHECK();
    const BackwardKernelArgs p{a, delta.as<float>(), 1.0f / std::sqrt(static_cast<float>(D))};
    if (D <= kSmallHeadDim) backward_dp<kSmallHeadDim>(s, p);
    else if (D <= kMediumHeadDim) backward_dp<kMediumHeadDim>(s, p);
    else backward_dp<kMaxHeadDim>(s, p);
}

}  // namespace rpt::cuda
