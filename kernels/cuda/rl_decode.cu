// Decoding over the shared-prefix KV cache on the GPU: appending one step's K/V to the
// active slots' suffix caches, and one step of attention for every active row.
//
// Row a (slot s, group g = s / group_size) attends to its group's prefix keys
// [0, prefix_len[g]) followed by its own suffix keys [0, suffix_len[a]). The prefix is
// stored once per group and read in place by all G slots of the group (which also makes
// it L2-resident while they run), never copied.
//
// Why it is fast: decode attention is a memory-bound matrix-vector product. Each block
// serves one (row, KV head, split of the keys) and all query heads that share that KV
// head (GQA), so every K/V row is loaded from memory once per group of heads, not once
// per head. Keys are split into fixed chunks of kKeysPerSplit (flash-decoding), so a long
// context spreads over many SMs even when few rows are active; a small combine kernel
// merges the per-split softmax states. Inside a block, each warp streams its own keys
// with coalesced loads (lane = head-dim element), kKeyUnroll keys in flight at once, and
// keeps an online softmax per head in registers; warps merge through shared memory.
// The split count depends only on the cache capacity (Tp + a slot's capacity), never on A, so a row's
// result does not depend on which other rows are in the batch.
//
// Paged suffix. A slot's generated K/V lives in blocks of a pool named by its block
// table (kernels/paged_kv.h; no table: the contiguous layout, block s = slot s). A block
// reads the table entries of its split's keys once into shared memory (at most
// kKeysPerSplit + 1 of them), so a key's address costs a shared load, not a global one;
// the keys are visited in the same order as with the contiguous layout, so both give
// the same bits.
//
// Storage type. The cache holds K/V as fp32 or bf16 (model/kv_cache.h; bf16 by default
// on the GPU); every kernel is a template on that type T and computes in fp32. Decode
// attention is bound by the bytes of K/V it streams, and a bf16 cache halves those bytes
// per key as well as its memory (not yet measured on a GPU). A bf16 row is read as __nv_bfloat162 pairs (lane l holds
// head-dim elements 2l, 2l + 1, then 2l + 64, ...: one 128-byte load per warp and key,
// the same width as fp32's lane = element) and widened to float2 in registers; odd head
// dims or views not 4-byte aligned fall back to one __nv_bfloat16 per lane. Appending
// rounds with __float2bfloat16_rn, the rounding of the CPU twin (kernels/bf16.h).
//
// Row type. The step's rows (the appended K/V, q and the attention output) are of the
// model's activation type R, fp32 or bf16 (a bf16 model decodes on bf16 rows,
// model/kv_cache.h); every kernel is also a template on R. A bf16 q is widened once into
// shared memory, all arithmetic and the split partials stay fp32, and the output is
// rounded once at its store (__float2bfloat16_rn): the CPU twin is the fp32 twin on the
// widened rows with the output rounded at the store (kernels/ops.h's emulation), so the
// two differ only by fp32 summation order. Appending bf16 rows to a bf16 cache copies
// the bits; to an fp32 cache it widens (exact).
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include <cuda_bf16.h>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/rl_ops_cuda.h"

namespace rpt::cuda {
namespace {

constexpr int kAppendThreads = 256;
constexpr int kDecodeWarps = 4;
constexpr int kDecodeThreads = kDecodeWarps * kWarpSize;
constexpr int kMaxGroupHeads = 8;    // query heads one block serves (a KV head's group, chunked)
constexpr int kKeysPerSplit = 256;   // keys per block: long contexts use several blocks per row
constexpr int kMaxHeadDim = 256;
// Suffix blocks one split's keys can touch: ceil(kKeysPerSplit / Tb) + 1 when the split
// does not start on a block boundary, kKeysPerSplit with one-token blocks; this bounds both.
constexpr int kMaxSplitBlocks = kKeysPerSplit + 1;

using bf16 = __nv_bfloat16;

// One fp32 value in a storage type (the cache's, or the rows' for the output).
__device__ __forceinline__ void store_as(float* dst, float x) { *dst = x; }
__device__ __forceinline__ void store_as(bf16* dst, float x) { *dst = __float2bfloat16_rn(x); }
// One stored value widened to fp32 (exact).
__device__ __forceinline__ float load_as_float(float x) { return x; }
__device__ __forceinline__ float load_as_float(bf16 x) { return __bfloat162float(x); }

// suffix[slot slots[a], token index[a]] = kv[a] at the pool row of kernels/paged_kv.h;
// one thread per element (grid-stride, 256 threads: consecutive threads write
// consecutive elements of a row, so stores coalesce), rows outside the cache or mapped
// to a block outside the pool skipped. T = cache type, R = row type (bf16 -> bf16
// copies the bits).
template <typename T, typename R>
__global__ void kv_cache_append_kernel(T* suffix, const R* kv, const int32_t* slots, const int32_t* index,
                                       int64_t A, paged_kv::Layout pool, int64_t row) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < A * row; i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t a = i / row, c = i % row;
        const int64_t s = slots[a], t = index[a];
        if (s < 0 || s >= pool.slots || t < 0 || t >= pool.slot_capacity()) continue;
        const int64_t block = paged_kv::block_of(pool, s, int32_t(t));
        if (!paged_kv::block_in_pool(pool, block)) continue;
        store_as(suffix + paged_kv::pool_row(pool, block, int32_t(t)) * row + c, load_as_float(kv[i]));
    }
}

// The head-dim element that lane `lane` holds in its slot e (0 <= e < EPL). Plain: lane,
// lane + 32, ... (fp32 and unpaired bf16). Pairs: 2 lane, 2 lane + 1, 2 lane + 64, ...
// (bf16 read as __nv_bfloat162). q and the warps' partial outputs live in shared memory
// at slot position lane + 32 e, so both layouts read them without bank conflicts.
template <bool kPairs>
__device__ __forceinline__ int lane_dim(int lane, int e) {
    return kPairs ? 2 * lane + (e & 1) + 2 * kWarpSize * (e >> 1) : lane + e * kWarpSize;
}

// A lane's EPL elements of one K or V row (zero outside [0, D) or when !valid), in fp32.
template <int EPL, bool kPairs>
__device__ __forceinline__ void load_row(float (&r)[EPL], const float* row, int lane, int64_t D, bool valid) {
    static_assert(!kPairs, "fp32 rows are read one element per lane");
#pragma unroll
    for (int e = 0; e < EPL; ++e) {
        const int d = lane_dim<false>(lane, e);
        r[e] = valid && d < D ? row[d] : 0.0f;
    }
}

template <int EPL, bool kPairs>
__device__ __forceinline__ void load_row(float (&r)[EPL], const __nv_bfloat16* row, int lane, int64_t D, bool valid) {
    if constexpr (kPairs) {
        static_assert(EPL % 2 == 0, "pairs need an even number of elements per lane");
#pragma unroll
        for (int e = 0; e < EPL; e += 2) {
            const int d = lane_dim<true>(lane, e);  // even; D is even, so d < D covers d + 1
            const float2 f = valid && d < D ? __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(row + d))
                                            : make_float2(0.0f, 0.0f);
            r[e] = f.x;
            r[e + 1] = f.y;
        }
    } else {
#pragma unroll
        for (int e = 0; e < EPL; ++e) {
            const int d = lane_dim<false>(lane, e);
            r[e] = valid && d < D ? __bfloat162float(row[d]) : 0.0f;
        }
    }
}

struct DecodeArgs {
    void* out;          // (A, H, D) of the row type R
    float* partial_o;   // (A, H, splits, D) unnormalised outputs per split (splits > 1)
    float* partial_ml;  // (A, H, splits, 2) running max and sum of each split
    const void* q;      // (A, H, D) of the row type R
    const void *prefix_k, *prefix_v, *suffix_k, *suffix_v;  // of the kernel's storage type T
    const int32_t *prefix_len, *suffix_len, *slots;
    paged_kv::Layout pool;  // the suffix pools' addressing (kernels/paged_kv.h)
    int64_t B, Tp, H, KVH, D, group_size;
    int splits, head_chunks;
    float scale;
};

// The row's slot, group and key count; false when the slot lies outside the cache.
__device__ __forceinline__ bool row_keys(const DecodeArgs& p, int64_t a, int64_t& s, int64_t& g, int64_t& P,
                                         int64_t& n) {
    s = p.slots[a];
    g = s / p.group_size;
    if (s < 0 || s >= p.pool.slots || g >= p.B) return false;
    P = min(max(int64_t(p.prefix_len[g]), int64_t(0)), p.Tp);
    n = P + min(max(int64_t(p.suffix_len[a]), int64_t(0)), p.pool.slot_capacity());
    return true;
}

// One block = (split of the keys, KV head x chunk of its query heads, row).
// T = K/V storage type, R = row type of q and out (each float or __nv_bfloat16). EPL =
// head-dim elements per lane (D <= 32 * EPL); lane l owns elements lane_dim<kPairs>(l, 0 .. EPL-1).
template <typename T, typename R, int EPL, bool kPairs>
__global__ void __launch_bounds__(kDecodeThreads) decode_attention_kernel(DecodeArgs p) {
    constexpr int kDim = kWarpSize * EPL;
    constexpr int kKeyUnroll = EPL >= 8 ? 2 : 4;  // keys loaded before any is used
    __shared__ float q_s[kMaxGroupHeads][kDim];
    __shared__ float acc_s[kDecodeWarps][kMaxGroupHeads][kDim];
    __shared__ float ml_s[kDecodeWarps][kMaxGroupHeads][2];
    __shared__ int32_t block_s[kMaxSplitBlocks];  // the split's suffix blocks; -1: outside the pool

    const int split = blockIdx.x;
    const int64_t a = blockIdx.z;
    const int64_t kvh = blockIdx.y / p.head_chunks, chunk = blockIdx.y % p.head_chunks;
    int64_t s, g, P, n;
    if (!row_keys(p, a, s, g, P, n)) return;
    const int64_t j0 = int64_t(split) * kKeysPerSplit;
    if (p.splits > 1 && j0 >= n) return;  // the combine reads only the splits that hold keys
    const int64_t j1 = min(n, j0 + kKeysPerSplit);
    const int64_t heads_per_kv = p.H / p.KVH;
    const int64_t h0 = kvh * heads_per_kv + chunk * kMaxGroupHeads;
    const int nh = int(min(int64_t(kMaxGroupHeads), heads_per_kv - chunk * kMaxGroupHeads));
    const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;

    // q pre-scaled by 1/sqrt(D), zero-padded to kDim; slot position lane + 32 e holds
    // element lane_dim(lane, e).
    for (int i = threadIdx.x; i < kMaxGroupHeads * kDim; i += kDecodeThreads) {
        const int h = i / kDim, slot = i % kDim;
        const int d = lane_dim<kPairs>(slot % kWarpSize, slot / kWarpSize);
        q_s[h][slot] =
            (h < nh && d < p.D) ? load_as_float(static_cast<const R*>(p.q)[(a * p.H + h0 + h) * p.D + d]) * p.scale
                                : 0.0f;
    }
    // The table entries of the split's suffix tokens [i0, i1), read once.
    const int32_t tb = int32_t(p.pool.block_tokens);
    const int32_t i0 = int32_t(max(j0, P) - P), i1 = int32_t(max(j1, P) - P);
    const int32_t first_block = paged_kv::block_index(p.pool, i0);
    const int split_blocks = i1 > i0 ? paged_kv::block_index(p.pool, i1 - 1) - first_block + 1 : 0;
    for (int b = threadIdx.x; b < split_blocks; b += kDecodeThreads) {
        const int64_t block = paged_kv::block_of(p.pool, s, (first_block + b) * tb);
        block_s[b] = paged_kv::block_in_pool(p.pool, block) ? int32_t(block) : -1;
    }
    __syncthreads();

    float m[kMaxGroupHeads], l[kMaxGroupHeads], acc[kMaxGroupHeads][EPL];
#pragma unroll
    for (int h = 0; h < kMaxGroupHeads; ++h) {
        m[h] = -INFINITY;
        l[h] = 0.0f;
#pragma unroll
        for (int e = 0; e < EPL; ++e) acc[h][e] = 0.0f;
    }

    const int64_t key_stride = p.KVH * p.D;
    const T* pk = static_cast<const T*>(p.prefix_k) + g * p.Tp * key_stride + kvh * p.D;
    const T* pv = static_cast<const T*>(p.prefix_v) + g * p.Tp * key_stride + kvh * p.D;
    const T* sk = static_cast<const T*>(p.suffix_k) + kvh * p.D;  // pool row 0 of this head
    const T* sv = static_cast<const T*>(p.suffix_v) + kvh * p.D;

    for (int64_t jb = j0 + warp; jb < j1; jb += int64_t(kDecodeWarps) * kKeyUnroll) {
        float kr[kKeyUnroll][EPL], vr[kKeyUnroll][EPL];
        bool valid[kKeyUnroll];
#pragma unroll
        for (int u = 0; u < kKeyUnroll; ++u) {
            const int64_t j = jb + int64_t(u) * kDecodeWarps;
            int64_t row = j;  // prefix row, or the suffix token's pool row
            valid[u] = j < j1;
            if (j >= P) {
                const int32_t i = int32_t(j - P);
                const int64_t block = valid[u] ? block_s[paged_kv::block_index(p.pool, i) - first_block] : -1;
                valid[u] = block >= 0;
                row = valid[u] ? paged_kv::pool_row(p.pool, block, i) : 0;
            }
            const T* kp = j < P ? pk + row * key_stride : sk + row * key_stride;
            const T* vp = j < P ? pv + row * key_stride : sv + row * key_stride;
            load_row<EPL, kPairs>(kr[u], kp, lane, p.D, valid[u]);
            load_row<EPL, kPairs>(vr[u], vp, lane, p.D, valid[u]);
        }
#pragma unroll
        for (int u = 0; u < kKeyUnroll; ++u) {
            if (!valid[u]) continue;  // warp-uniform
#pragma unroll
            for (int h = 0; h < kMaxGroupHeads; ++h) {
                if (h >= nh) continue;  // block-uniform
                float partial = 0.0f;
#pragma unroll
                for (int e = 0; e < EPL; ++e) partial += q_s[h][lane + e * kWarpSize] * kr[u][e];
                const float score = warp_sum(partial);
                const float m_new = fmaxf(m[h], score);
                const float correction = expf(m[h] - m_new);  // 0 on the first key (m = -inf)
                const float w = expf(score - m_new);
                l[h] = l[h] * correction + w;
#pragma unroll
                for (int e = 0; e < EPL; ++e) acc[h][e] = acc[h][e] * correction + w * vr[u][e];
                m[h] = m_new;
            }
        }
    }

    // Merge the warps' softmax states: rescale each to the common max.
#pragma unroll
    for (int h = 0; h < kMaxGroupHeads; ++h) {
#pragma unroll
        for (int e = 0; e < EPL; ++e) acc_s[warp][h][lane + e * kWarpSize] = acc[h][e];
        if (lane == 0) {
            ml_s[warp][h][0] = m[h];
            ml_s[warp][h][1] = l[h];
        }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < nh * kDim; i += kDecodeThreads) {
        const int h = i / kDim, slot = i % kDim;
        const int d = lane_dim<kPairs>(slot % kWarpSize, slot / kWarpSize);
        if (d >= p.D) continue;
        float mm = -INFINITY;
#pragma unroll
        for (int w = 0; w < kDecodeWarps; ++w) mm = fmaxf(mm, ml_s[w][h][0]);
        float sum = 0.0f, o = 0.0f;
        if (mm != -INFINITY) {
#pragma unroll
            for (int w = 0; w < kDecodeWarps; ++w) {
                const float c = expf(ml_s[w][h][0] - mm);  // 0 for a warp without keys
                sum += ml_s[w][h][1] * c;
                o += acc_s[w][h][slot] * c;
            }
        }
        const int64_t head_row = a * p.H + h0 + h;
        if (p.splits == 1) {
            store_as(static_cast<R*>(p.out) + head_row * p.D + d, sum > 0.0f ? o / sum : 0.0f);  // no keys: zero
        } else {
            const int64_t part = head_row * p.splits + split;
            p.partial_o[part * p.D + d] = o;
            if (d == 0) {
                p.partial_ml[part * 2] = mm;
                p.partial_ml[part * 2 + 1] = sum;
            }
        }
    }
}

// out[a, h] = sum_k exp(m_k - M) o_k / sum_k exp(m_k - M) l_k over the splits k that hold
// keys, stored as the row type R. One block per (row, head), one thread per head-dim element.
template <typename R>
__global__ void decode_combine_kernel(DecodeArgs p) {
    const int64_t head_row = blockIdx.x, a = head_row / p.H;
    int64_t s, g, P, n;
    if (!row_keys(p, a, s, g, P, n)) return;
    const int used = int(ceil_div<int64_t>(n, kKeysPerSplit));
    const float* ml = p.partial_ml + head_row * p.splits * 2;
    float mm = -INFINITY;
    for (int k = 0; k < used; ++k) mm = fmaxf(mm, ml[2 * k]);
    for (int64_t d = threadIdx.x; d < p.D; d += blockDim.x) {
        float sum = 0.0f, o = 0.0f;
        for (int k = 0; k < used; ++k) {
            const float c = expf(ml[2 * k] - mm);
            sum += ml[2 * k + 1] * c;
            o += p.partial_o[(head_row * p.splits + k) * p.D + d] * c;
        }
        store_as(static_cast<R*>(p.out) + head_row * p.D + d, sum > 0.0f ? o / sum : 0.0f);
    }
}

template <typename T, typename R, int EPL, bool kPairs>
void launch_decode(cudaStream_t stream, const DecodeArgs& p, dim3 grid) {
    decode_attention_kernel<T, R, EPL, kPairs><<<grid, kDecodeThreads, 0, stream>>>(p);
    RPT_CUDA_LAUNCH_CHECK();
}

// The narrowest per-lane width that covers D, one element per lane (fp32, or bf16
// without pairs).
template <typename T, typename R>
void launch_decode_plain(cudaStream_t st, const DecodeArgs& p, dim3 grid) {
    if (p.D <= kWarpSize) launch_decode<T, R, 1, false>(st, p, grid);
    else if (p.D <= 2 * kWarpSize) launch_decode<T, R, 2, false>(st, p, grid);
    else if (p.D <= 4 * kWarpSize) launch_decode<T, R, 4, false>(st, p, grid);
    else launch_decode<T, R, 8, false>(st, p, grid);
}

bool is_aligned4(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 4 == 0; }

// The main kernel for cache type T and row type R. A bf16 cache is read in pairs when D
// is even and the four K/V views are 4-byte aligned (a pair never straddles a row end).
template <typename T, typename R>
void launch_for_types(cudaStream_t st, const DecodeArgs& p, dim3 grid) {
    if constexpr (std::is_same_v<T, bf16>) {
        const bool pairs = p.D % 2 == 0 && is_aligned4(p.prefix_k) && is_aligned4(p.prefix_v) &&
                           is_aligned4(p.suffix_k) && is_aligned4(p.suffix_v);
        if (p.D <= kWarpSize || !pairs) launch_decode_plain<T, R>(st, p, grid);
        else if (p.D <= 2 * kWarpSize) launch_decode<T, R, 2, true>(st, p, grid);
        else if (p.D <= 4 * kWarpSize) launch_decode<T, R, 4, true>(st, p, grid);
        else launch_decode<T, R, 8, true>(st, p, grid);
    } else {
        launch_decode_plain<T, R>(st, p, grid);
    }
}

template <typename R>
void launch_combine(cudaStream_t st, const DecodeArgs& p, int64_t A) {
    const int threads = static_cast<int>(ceil_div<int64_t>(p.D, kWarpSize) * kWarpSize);
    decode_combine_kernel<R><<<static_cast<unsigned>(A * p.H), threads, 0, st>>>(p);
    RPT_CUDA_LAUNCH_CHECK();
}

template <typename T, typename R>
void append_rows(cudaStream_t stream, const Tensor& suffix, const Tensor& kv, const Tensor& slots,
                 const Tensor& index, const paged_kv::Layout& pool) {
    const int64_t row = suffix.dim(2) * suffix.dim(3);
    const int64_t A = slots.numel();
    kv_cache_append_kernel<T, R><<<grid_for(A * row, kAppendThreads), kAppendThreads, 0, stream>>>(
        static_cast<T*>(suffix.data), static_cast<const R*>(kv.data), slots.i32(), index.i32(), A, pool, row);
    RPT_CUDA_LAUNCH_CHECK();
}

// The kernels' DecodeArgs from the op's tensors (shapes checked by kernels/rl_ops.cpp).
DecodeArgs decode_args(const DecodeTensors& t) {
    DecodeArgs p{};
    p.out = t.out.data;
    p.q = t.q.data;
    p.prefix_k = t.prefix_k.data;
    p.prefix_v = t.prefix_v.data;
    p.suffix_k = t.suffix_k.data;
    p.suffix_v = t.suffix_v.data;
    p.prefix_len = t.prefix_len.i32();
    p.suffix_len = t.suffix_len.i32();
    p.slots = t.slots.i32();
    p.B = t.prefix_k.dim(0);
    p.Tp = t.prefix_k.dim(1);
    p.KVH = t.prefix_k.dim(2);
    p.pool = t.pool;
    p.H = t.q.dim(1);
    p.D = t.q.dim(2);
    p.group_size = t.group_size;
    p.scale = 1.0f / sqrtf(static_cast<float>(p.D));
    p.head_chunks = static_cast<int>(ceil_div<int64_t>(p.H / p.KVH, kMaxGroupHeads));
    const int64_t keys = p.Tp + p.pool.slot_capacity();
    p.splits = static_cast<int>(ceil_div<int64_t>(keys > 0 ? keys : 1, kKeysPerSplit));
    return p;
}

}  // namespace

void kv_cache_append(void* stream, Tensor suffix, Tensor kv, Tensor slots, Tensor index,
                     const paged_kv::Layout& pool) {
    cudaStream_t st = as_stream(stream);
    const bool cache16 = suffix.dtype == DType::bf16, rows16 = kv.dtype == DType::bf16;
    if (cache16 && rows16) append_rows<bf16, bf16>(st, suffix, kv, slots, index, pool);
    else if (cache16) append_rows<bf16, float>(st, suffix, kv, slots, index, pool);
    else if (rows16) append_rows<float, bf16>(st, suffix, kv, slots, index, pool);
    else append_rows<float, float>(st, suffix, kv, slots, index, pool);
}

void decode_attention(void* stream, const DecodeTensors& t) {
    const int64_t A = t.q.dim(0), D = t.q.dim(2);
    if (D > kMaxHeadDim)
        throw std::invalid_argument("decode_attention: head dim " + std::to_string(D) + " exceeds the CUDA limit " +
                                    std::to_string(kMaxHeadDim));
    if (A > kMaxGridY)
        throw std::invalid_argument("decode_attention: more than " + std::to_string(kMaxGridY) + " active rows");
    cudaStream_t st = as_stream(stream);
    DecodeArgs p = decode_args(t);
    const int64_t gy = p.KVH * p.head_chunks;
    if (gy > kMaxGridY) throw std::invalid_argument("decode_attention: too many heads for the grid");
    // Scratch only when the keys are split; freed on the stream after the combine.
    const size_t partial_floats = p.splits > 1 ? static_cast<size_t>(A * p.H * p.splits * (D + 2)) : 0;
    ScratchBuffer scratch(partial_floats * sizeof(float), st, "decode attention partials");
    if (p.splits > 1) {
        p.partial_o = scratch.as<float>();
        p.partial_ml = p.partial_o + A * p.H * p.splits * D;
    }
    const dim3 grid(static_cast<unsigned>(p.splits), static_cast<unsigned>(gy), static_cast<unsigned>(A));
    const bool cache16 = t.prefix_k.dtype == DType::bf16, rows16 = t.q.dtype == DType::bf16;
    if (cache16 && rows16) launch_for_types<bf16, bf16>(st, p, grid);
    else if (cache16) launch_for_types<bf16, float>(st, p, grid);
    else if (rows16) launch_for_types<float, bf16>(st, p, grid);
    else launch_for_types<float, float>(st, p, grid);
    if (p.splits > 1) {
        if (rows16) launch_combine<bf16>(st, p, A);
        else launch_combine<float>(st, p, A);
    }
}

}  // namespace rpt::cuda
