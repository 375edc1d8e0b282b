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
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/cpu/cpu_common.h"
#include "kernels/cpu/rl_ops_cpu.h"

namespace rpt::cpu {

void kv_cache_append(float* suffix, const float* kv, const int32_t* slots, const int32_t* index, int64_t A, int64_t S,
                     int64_t Tmax, int64_t KVH, int64_t D) {
    for (int64_t a = 0; a < A; ++a)
        if (slots[a] < 0 || slots[a] >= S || index[a] < 0 || index[a] >= Tmax)
            throw std::out_of_range("kv_cache_append: row " + std::to_string(a) + " writes slot " +
                                    std::to_string(slots[a]) + ", position " + std::to_string(index[a]) +
                                    " outside the cache (" + std::to_string(S) + " slots, " + std::to_string(Tmax) +
                                    " positions)");
    const int64_t row = KVH * D;
#pragma omp parallel for schedule(static)
    for (int64_t a = 0; a < A; ++a)
        std::copy(kv + a * row, kv + (a + 1) * row, suffix + (static_cast<int64_t>(slots[a]) * Tmax + index[a]) * row);
}

void decode_attention(float* out, const float* q, const float* prefix_k, const float* prefix_v,
                      const int32_t* prefix_len, const float* suffix_k, const float* suffix_v,
                      const int32_t* suffix_len, const int32_t* slots, int64_t A, int64_t B, int64_t Tp, int64_t S,
                      int64_t Tmax, int64_t H, int64_t KVH, int64_t D, int64_t group_size) {
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
    const int64_t key_stride = KVH * D;  // floats between consecutive positions of one head
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
            const float* pk = prefix_k + g * Tp * key_stride + kvh * D;
            const float* pv = prefix_v + g * Tp * key_stride + kvh * D;
            const float* sk = suffix_k + s * Tmax * key_stride + kvh * D;
            const float* sv = suffix_v + s * Tmax * key_stride + kvh * D;
            for (int64_t h = kvh * heads_per_kv; h < (kvh + 1) * heads_per_kv; ++h) {
                const float* qh = q + (a * H + h) * D;
                float* o = out + (a * H + h) * D;
                std::fill(o, o + D, 0.0f);
                if (n == 0) continue;  // nothing to attend to: defined as a zero output
                float m = -INFINITY;
                for (int64_t j = 0; j < n; ++j) {
                    const float* kj = j < P ? pk + j * key_stride : sk + (j - P) * key_stride;
                    scores[j] = detail::dot(qh, kj, D) * scale;
                    m = std::max(m, scores[j]);
                }
                float sum = 0.0f;
                for (int64_t j = 0; j < n; ++j) {
                    scores[j] = std::exp(scores[j] - m);
                    sum += scores[j];
                }
                for (int64_t j = 0; j < n; ++j) {
                    const float* vj = j < P ? pv + j * key_stride : sv + (j - P) * key_stride;
                    detail::axpy(o, scores[j], vj, D);
                }
                const float inv = 1.0f / sum;
                for (int64_t d = 0; d < D; ++d) o[d] *= inv;
            }
        }
    }
}

}  // namespace rpt::cpu
