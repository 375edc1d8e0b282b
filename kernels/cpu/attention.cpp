// Causal grouped-query attention, exact (no approximation), with the log-sum-exp saved.
//
// Layout q, out (B, T, H, D); k, v (B, T, KVH, D); query head h reads KV head
// h / (H / KVH). For query t of a head: s_j = q_t . k_j / sqrt(D) for j <= t,
// p = softmax(s), out_t = sum_j p_j v_j, lse_t = log sum_j exp(s_j).
//
// Forward: threads over (batch, head) pairs; each query's scores live in a row buffer
// of T floats; dot products run over contiguous D with fixed-lane accumulation
// (vectorised and deterministic). Memory stays O(T) per thread: no T x T matrix.
//
// Backward recomputes p_j = exp(s_j - lse_t) (no saved probabilities) and uses
//   dv_j += p_j dout_t,   dp_j = dout_t . v_j,   ds_j = p_j (dp_j - dout_t . out_t),
//   dq_t = sum_j ds_j k_j / sqrt(D),   dk_j += ds_j q_t / sqrt(D).
// dk and dv of a KV head collect from all H / KVH query heads of its group, so threads
// own (batch, KV head) pairs and loop over the group's query heads and queries in a
// fixed order: no atomics, same bits for any thread count. Outputs are overwritten.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/cpu_common.h"
#include "kernels/cpu/cpu_ops.h"

namespace rpt::cpu {

using detail::axpy;
using detail::dot;

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, int64_t B, int64_t T,
                       int64_t H, int64_t KVH, int64_t D) {
    const int64_t group = H / KVH;
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
#pragma omp parallel
    {
        std::vector<float> p(static_cast<size_t>(T)), acc(static_cast<size_t>(D));
#pragma omp for schedule(static)
        for (int64_t bh = 0; bh < B * H; ++bh) {
            const int64_t b = bh / H, h = bh % H, kvh = h / group;
            for (int64_t t = 0; t < T; ++t) {
                const float* qt = q + ((b * T + t) * H + h) * D;
                float m = -std::numeric_limits<float>::infinity();
                for (int64_t j = 0; j <= t; ++j) {
                    p[j] = dot(qt, k + ((b * T + j) * KVH + kvh) * D, D) * scale;
                    m = std::max(m, p[j]);
                }
                float sum = 0.0f;
                for (int64_t j = 0; j <= t; ++j) {
                    p[j] = std::exp(p[j] - m);
                    sum += p[j];
                }
                std::fill(acc.begin(), acc.end(), 0.0f);
                for (int64_t j = 0; j <= t; ++j) axpy(acc.data(), p[j], v + ((b * T + j) * KVH + kvh) * D, D);
                const float inv_sum = 1.0f / sum;
                float* ot = out + ((b * T + t) * H + h) * D;
                for (int64_t d = 0; d < D; ++d) ot[d] = acc[d] * inv_sum;
                lse[(b * H + h) * T + t] = m + std::log(sum);
            }
        }
    }
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, int64_t B, int64_t T, int64_t H,
                        int64_t KVH, int64_t D) {
    const int64_t group = H / KVH;
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
#pragma omp parallel
    {
        std::vector<float> dqt(static_cast<size_t>(D));
#pragma omp for schedule(static)
        for (int64_t bk = 0; bk < B * KVH; ++bk) {
            const int64_t b = bk / KVH, kvh = bk % KVH;
            const auto kv_row = [&](int64_t j) { return ((b * T + j) * KVH + kvh) * D; };
            for (int64_t j = 0; j < T; ++j) {
                std::fill_n(dk + kv_row(j), D, 0.0f);
                std::fill_n(dv + kv_row(j), D, 0.0f);
            }
            for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
                for (int64_t t = 0; t < T; ++t) {
                    const int64_t row = ((b * T + t) * H + h) * D;
                    const float* qt = q + row;
                    const float* dout_t = dout + row;
                    const float row_lse = lse[(b * H + h) * T + t];
                    const float delta = dot(dout_t, out + row, D);  // dout_t . out_t
                    std::fill(dqt.begin(), dqt.end(), 0.0f);
                    for (int64_t j = 0; j <= t; ++j) {
                        const float pj = std::exp(dot(qt, k + kv_row(j), D) * scale - row_lse);
                        const float ds = pj * (dot(dout_t, v + kv_row(j), D) - delta) * scale;
                        axpy(dv + kv_row(j), pj, dout_t, D);
                        axpy(dqt.data(), ds, k + kv_row(j), D);
                        axpy(dk + kv_row(j), ds, qt, D);
                    }
                    std::copy(dqt.begin(), dqt.end(), dq + row);
                }
            }
        }
    }
}

}  // namespace rpt::cpu
