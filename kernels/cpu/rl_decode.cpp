// Decoding over the shared-prefix KV cache, CPU twin: appending a step's K/V to each
// active slot's suffix, and one step of attention for every active row.
//
// Row a (slot s, group g = s / group_size) attends to the concatenation of its group's
// prefix keys [0, prefix_len[g]) and its own suffix keys [0, suffix_len[a]). The prefix
// is stored once per group and read in place by all G slots, never copied.
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
void append_rows(T* suffix, const float* kv, const int32_t* slots, const int32_t* index, int64_t A, int64_t S,
                 int64_t Tmax, int64_t KVH, int64_t D) {
    for (int64_t a = 0; a < A; ++a)
        if (slots[a] < 0 || slots[a] >= S || index[a] < 0 || index[a] >= Tmax)
            throw std::out_of_range("kv_cache_append: row " + std::to_string(a) + " writes slot " +
                                    std::to_string(slots[a]) + ", position " + std::to_string(index[a]) +
                                    " outside the cache (" + std::to_string(S) + " slots, " + std::to_string(Tmax) +
                                    " positions)");
    const int64_t row = KVH * D;
#pragma omp parallel for schedule(static)
    for (int64_t a = 0; a < A; ++a) {
        T* dst = suffix + (static_cast<int64_t>(slots[a]) * Tmax + index[a]) * row;
        const float* src = kv + a * row;
        for (int64_t c = 0; c < row; ++c) store(dst + c, src[c]);
    }
}

// prefix_k/v (B, Tp, KVH, D) and suffix_k/v (S, Tmax, KVH, D) of element type T.
template <typename T>
void attend(float* out, const float* q, const T* prefix_k, const T* prefix_v, const int32_t* prefix_len,
            const T* suffix_k, const T* suffix_v, const int32_t* suffix_len, const int32_t* slots, int64_t A,
            int64_t B, int64_t Tp, int64_t S, int64_t Tmax, int64_t H, int64_t KVH, int64_t D, int64_t group_size) {
    for (int64_t a = 0; a < A; ++a) {
        const int64_t s = slots[a];
        if (s < 0 || s >= S || s / group_size >= B)
            throw std::out_of_range("decode_attention: row " + std::to_string(a) + " has slot " + std::to_string(s) +
                                    " outside [0, " + std::to_string(S) + ")");
        if (suffix_len[a] < 0 || suffix_len[a] > Tmax || prefix_len[s / group_size] < 0 ||
            prefix_len[s / group_size] > Tp)
            throw std::out_of_range("decode_attention: row " + std::to_string(a) +
                                    " has a prefix or suffix length outside the cache");
    }
    const int64_t heads_per_kv = H / KVH;
    const int64_t key_stride = KVH * D;  // elements between consecutive positions of one head
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
#pragma omp parallel
    {
        // Scores of one (row, query head) over all its keys: prefix then suffix.
        float* scores = detail::thread_scratch(detail::ScratchSlot::row, Tp + Tmax);
#pragma omp for schedule(static)
        for (int64_t item = 0; item < A * KVH; ++item) {
            const int64_t a = item / KVH, kvh = item % KVH;
            const int64_t s = slots[a], g = s / group_size;
            const int64_t P = prefix_len[g], L = suffix_len[a], n = P + L;
            const T* pk = prefix_k + g * Tp * key_stride + kvh * D;
            const T* pv = prefix_v + g * Tp * key_stride + kvh * D;
            const T* sk = suffix_k + s * Tmax * key_stride + kvh * D;
            const T* sv = suffix_v + s * Tmax * key_stride + kvh * D;
            for (int64_t h = kvh * heads_per_kv; h < (kvh + 1) * heads_per_kv; ++h) {
                const float* qh = q + (a * H + h) * D;
                float* o = out + (a * H + h) * D;
                std::fill(o, o + D, 0.0f);
                if (n == 0) continue;  // nothing to attend to: defined as a zero output
                float m = -INFINITY;
                for (int64_t j = 0; j < n; ++j) {
                    const T* kj = j < P ? pk + j * key_stride : sk + (j - P) * key_stride;
                    scores[j] = detail::dot(qh, kj, D) * scale;
                    m = std::max(m, scores[j]);
                }
                float sum = 0.0f;
                for (int64_t j = 0; j < n; ++j) {
                    scores[j] = std::exp(scores[j] - m);
                    sum += scores[j];
                }
                for (int64_t j = 0; j < n; ++j) {
                    const T* vj = j < P ? pv + j * key_stride : sv + (j - P) * key_stride;
                    detail::axpy(o, scores[j], vj, D);
                }
                const float inv = 1.0f / sum;
                for (int64_t d = 0; d < D; ++d) o[d] *= inv;
            }
        }
    }
}

}  // namespace

void kv_cache_append(float* suffix, const float* kv, const int32_t* slots, const int32_t* index, int64_t A, int64_t S,
                     int64_t Tmax, int64_t KVH, int64_t D) {
    append_rows(suffix, kv, slots, index, A, S, Tmax, KVH, D);
}

void kv_cache_append(uint16_t* suffix, const float* kv, const int32_t* slots, const int32_t* index, int64_t A,
                     int64_t S, int64_t Tmax, int64_t KVH, int64_t D) {
    append_rows(suffix, kv, slots, index, A, S, Tmax, KVH, D);
}

void decode_attention(float* out, const float* q, const float* prefix_k, const float* prefix_v,
                      const int32_t* prefix_len, const float* suffix_k, const float* suffix_v,
                      const int32_t* suffix_len, const int32_t* slots, int64_t A, int64_t B, int64_t Tp, int64_t S,
                      int64_t Tmax, int64_t H, int64_t KVH, int64_t D, int64_t group_size) {
    attend(out, q, prefix_k, prefix_v, prefix_len, suffix_k, suffix_v, suffix_len, slots, A, B, Tp, S, Tmax, H, KVH,
           D, group_size);
}

void decode_attention(float* out, const float* q, const uint16_t* prefix_k, const uint16_t* prefix_v,
                      const int32_t* prefix_len, const uint16_t* suffix_k, const uint16_t* suffix_v,
                      const int32_t* suffix_len, const int32_t* slots, int64_t A, int64_t B, int64_t Tp, int64_t S,
                      int64_t Tmax, int64_t H, int64_t KVH, int64_t D, int64_t group_size) {
    attend(out, q, prefix_k, prefix_v, prefix_len, suffix_k, suffix_v, suffix_len, slots, A, B, Tp, S, Tmax, H, KVH,
           D, group_size);
}

}  // namespace rpt::cpu
