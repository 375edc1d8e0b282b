// Decoding over the shared-prefix KV cache, CPU twin: appending a step's K/V to each
// active slot's suffix, and one step of attention for every active row.
//
// Row a (slot s, group g = s / group_size) attends to the concatenation of its group's
// prefix keys [0, prefix_len[g]) and its own suffix keys [0, suffix_len[a]). The prefix
// is stored once per group and read in place by all G slots, never copied. The suffix
// lives in a pool of blocks named by a block table (kernels/paged_kv.h; no table: the
// contiguous layout); keys are visited in the same order whatever the layout, so paged
// and contiguous caches give the same bits.
//
// Why it is fast enough: work items are (row, kv head); the H / KVH query heads of one
// kv head run back to back in one item, so the keys they share are still hot in cache
// for the second and later heads; scores and weighted sums use the fixed-lane dot/axpy
// helpers (vectorised and deterministic), and OpenMP spreads items over cores.
//
// The cache stores K/V as fp32 or bf16 (raw bits in uint16_t). One template serves both:
// appending rounds fp32 to bf16 to nearest even (kernels/bf16.h, the same rounding as
// `__float2bfloat16_rn` on the GPU), and attention widens each bf16 element by a shift as
// dot/axpy read it, so all arithmetic stays fp32 and the fp32 instantiation is the plain
// fp32 code.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/cpu/cpu_common.h"
#include "kernels/cpu/rl_ops_cpu.h"

namespace rpt::cpu {

namespace {

// Stores one fp32 value in the cache's element type.
inline void store(float* dst, float x) { *dst = x; }
inline void store(uint16_t* dst, float x) { *dst = f32_to_bf16(x); }

template <typename T>
void append_rows(T* suffix, const float* kv, const int32_t* slots, const int32_t* index, int64_t A,
                 const paged_kv::Layout& pool, int64_t KVH, int64_t D) {
    for (int64_t a = 0; a < A; ++a) {
        if (slots[a] < 0 || slots[a] >= pool.slots || index[a] < 0 || index[a] >= pool.slot_capacity())
            throw std::out_of_range("kv_cache_append: row " + std::to_string(a) + " writes slot " +
                                    std::to_string(slots[a]) + ", position " + std::to_string(index[a]) +
                                    " outside the cache (" + std::to_string(pool.slots) + " slots, " +
                                    std::to_string(pool.slot_capacity()) + " positions)");
        const int64_t block = paged_kv::block_of(pool, slots[a], index[a]);
        if (!paged_kv::block_in_pool(pool, block))
            throw std::out_of_range("kv_cache_append: row " + std::to_string(a) + " (slot " +
                                    std::to_string(slots[a]) + ", position " + std::to_string(index[a]) +
                                    ") maps to block " + std::to_string(block) + " outside the pool of " +
                                    std::to_string(pool.blocks));
    }
    const int64_t row = KVH * D;
#pragma omp parallel for schedule(static)
    for (int64_t a = 0; a < A; ++a) {
        const int64_t block = paged_kv::block_of(pool, slots[a], index[a]);
        T* dst = suffix + paged_kv::pool_row(pool, block, index[a]) * row;
        const float* src = kv + a * row;
        for (int64_t c = 0; c < row; ++c) store(dst + c, src[c]);
    }
}

// Calls visit(j, row) for the n = P + L keys of one slot in attention order: the group's
// prefix rows prefix[0, P), then the slot's suffix tokens [0, L) block by block (one
// table read per block). `prefix` and `pool` point at one head's first element; rows
// are key_stride elements apart.
template <typename T, typename Visit>
inline void visit_keys(const T* prefix, int64_t P, const T* pool, const paged_kv::Layout& layout, int64_t s,
                       int64_t L, int64_t key_stride, Visit&& visit) {
    for (int64_t j = 0; j < P; ++j) visit(j, prefix + j * key_stride);
    for (int32_t i0 = 0; i0 < L; i0 += int32_t(layout.block_tokens)) {
        const T* first = pool + paged_kv::pool_row(layout, paged_kv::block_of(layout, s, i0), i0) * key_stride;
        const int64_t m = std::min(layout.block_tokens, L - i0);
        for (int64_t t = 0; t < m; ++t) visit(P + i0 + t, first + t * key_stride);
    }
}

// Throws unless every row's slot, lengths and suffix blocks lie inside the cache.
void check_rows(const int32_t* prefix_len, const int32_t* suffix_len, const int32_t* slots, int64_t A, int64_t B,
                int64_t Tp, const paged_kv::Layout& pool, int64_t group_size) {
    for (int64_t a = 0; a < A; ++a) {
        const int64_t s = slots[a];
        if (s < 0 || s >= pool.slots || s / group_size >= B)
            throw std::out_of_range("decode_attention: row " + std::to_string(a) + " has slot " + std::to_string(s) +
                                    " outside [0, " + std::to_string(pool.slots) + ")");
        if (suffix_len[a] < 0 || suffix_len[a] > pool.slot_capacity() || prefix_len[s / group_size] < 0 ||
            prefix_len[s / group_size] > Tp)
            throw std::out_of_range("decode_attention: row " + std::to_string(a) +
                                    " has a prefix or suffix length outside the cache");
        for (int32_t i = 0; i < suffix_len[a]; i += int32_t(pool.block_tokens))
            if (!paged_kv::block_in_pool(pool, paged_kv::block_of(pool, s, i)))
                throw std::out_of_range("decode_attention: row " + std::to_string(a) + " (slot " + std::to_string(s) +
                                        ") reads token " + std::to_string(i) + " from block " +
                                        std::to_string(paged_kv::block_of(pool, s, i)) + " outside the pool of " +
                                        std::to_string(pool.blocks));
    }
}

// prefix_k/v (B, Tp, KVH, D) and the suffix pools suffix_k/v (N, Tb, KVH, D) of element
// type T, addressed by `pool` (kernels/paged_kv.h).
template <typename T>
void attend(float* out, const float* q, const T* prefix_k, const T* prefix_v, const int32_t* prefix_len,
            const T* suffix_k, const T* suffix_v, const int32_t* suffix_len, const int32_t* slots, int64_t A,
            int64_t B, int64_t Tp, const paged_kv::Layout& pool, int64_t H, int64_t KVH, int64_t D,
            int64_t group_size) {
    check_rows(prefix_len, suffix_len, slots, A, B, Tp, pool, group_size);
    const int64_t heads_per_kv = H / KVH;
    const int64_t key_stride = KVH * D;  // elements between consecutive positions of one head
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
#pragma omp parallel
    {
        // Scores of one (row, query head) over all its keys: prefix then suffix.
        float* scores = detail::thread_scratch(detail::ScratchSlot::row, Tp + pool.slot_capacity());
#pragma omp for schedule(static)
        for (int64_t item = 0; item < A * KVH; ++item) {
            const int64_t a = item / KVH, kvh = item % KVH;
            const int64_t s = slots[a], g = s / group_size;
            const int64_t P = prefix_len[g], L = suffix_len[a], n = P + L;
            const T* pk = prefix_k + g * Tp * key_stride + kvh * D;
            const T* pv = prefix_v + g * Tp * key_stride + kvh * D;
            const T* sk = suffix_k + kvh * D;
            const T* sv = suffix_v + kvh * D;
            for (int64_t h = kvh * heads_per_kv; h < (kvh + 1) * heads_per_kv; ++h) {
                const float* qh = q + (a * H + h) * D;
                float* o = out + (a * H + h) * D;
                std::fill(o, o + D, 0.0f);
                if (n == 0) continue;  // nothing to attend to: defined as a zero output
                float m = -INFINITY;
                visit_keys(pk, P, sk, pool, s, L, key_stride, [&](int64_t j, const T* kj) {
                    scores[j] = detail::dot(qh, kj, D) * scale;
                    m = std::max(m, scores[j]);
                });
                float sum = 0.0f;
                for (int64_t j = 0; j < n; ++j) {
                    scores[j] = std::exp(scores[j] - m);
                    sum += scores[j];
                }
                visit_keys(pv, P, sv, pool, s, L, key_stride,
                           [&](int64_t j, const T* vj) { detail::axpy(o, scores[j], vj, D); });
                const float inv = 1.0f / sum;
                for (int64_t d = 0; d < D; ++d) o[d] *= inv;
            }
        }
    }
}

}  // namespace

void kv_cache_append(float* suffix, const float* kv, const int32_t* slots, const int32_t* index, int64_t A,
                     const paged_kv::Layout& pool, int64_t KVH, int64_t D) {
    append_rows(suffix, kv, slots, index, A, pool, KVH, D);
}

void kv_cache_append(uint16_t* suffix, const float* kv, const int32_t* slots, const int32_t* index, int64_t A,
                     const paged_kv::Layout& pool, int64_t KVH, int64_t D) {
    append_rows(suffix, kv, slots, index, A, pool, KVH, D);
}

void decode_attention(float* out, const float* q, const float* prefix_k, const float* prefix_v,
                      const int32_t* prefix_len, const float* suffix_k, const float* suffix_v,
                      const int32_t* suffix_len, const int32_t* slots, int64_t A, int64_t B, int64_t Tp,
                      const paged_kv::Layout& pool, int64_t H, int64_t KVH, int64_t D, int64_t group_size) {
    attend(out, q, prefix_k, prefix_v, prefix_len, suffix_k, suffix_v, suffix_len, slots, A, B, Tp, pool, H, KVH, D,
           group_size);
}

void decode_attention(float* out, const float* q, const uint16_t* prefix_k, const uint16_t* prefix_v,
                      const int32_t* prefix_len, const uint16_t* suffix_k, const uint16_t* suffix_v,
                      const int32_t* suffix_len, const int32_t* slots, int64_t A, int64_t B, int64_t Tp,
                      const paged_kv::Layout& pool, int64_t H, int64_t KVH, int64_t D, int64_t group_size) {
    attend(out, q, prefix_k, prefix_v, prefix_len, suffix_k, suffix_v, suffix_len, slots, A, B, Tp, pool, H, KVH, D,
           group_size);
}

}  // namespace rpt::cpu
