// Causal grouped-query attention, exact (no approximation), with the log-sum-exp saved.
//
// Layout q, out (B, T, H, D); k, v (B, T, KVH, D); query head h reads KV head
// h / (H / KVH). For query t of a head: s_j = q_t . k_j / sqrt(D) for j <= t,
// p = softmax(s), out_t = sum_j p_j v_j, lse_t = log sum_j exp(s_j).
//
// Blocked scheme. Threads own (batch, KV head) pairs in both passes. A thread first packs
// its K and V into per-thread scratch panels: K^T and V^T (D x Tp, keys contiguous) and
// K, V with rows padded to Dp = D rounded up to kNB (zeros in the padding). Queries are
// then taken kBQ at a time (per query head of the group): a block of rows against the
// keys 0 .. end of the block (later keys are fully masked and skipped). Every product is
// one small register-blocked kernel (block_mm: kMR rows x kNB columns, the reduction
// index innermost in increasing order), vectorised over keys for scores and over D for
// the weighted sums. exp is the branch-free polynomial detail::exp_poly (cpu_common.h,
// ~2 ulp), applied to whole rows so that it vectorises.
//
// Forward per query block: S = (Q K^T) * scale, row max over j <= t, P = exp(S - m)
// (0 for j > t), out = (P V) / sum P, lse = m + log sum P.
//
// Backward per query block recomputes P = exp(S - lse) once and reuses it:
//   dP = dout V^T,  dS = P (dP - dout_t . out_t) * scale,
//   dV += P^T dout,  dK += dS^T Q,  dQ = dS K.
// dK and dV accumulate in padded per-thread panels over the group's query heads and the
// query blocks in a fixed order, then are copied out: no atomics, and every output element
// is produced by one thread in a fixed order, so the bits do not depend on thread count.
// Scratch is per-thread and reused across calls (no allocation in the hot loops).
//
// Packed rows (segments, kernels/ops.h; the rule is attn::key_visible in
// kernels/attention_args.h): the keys of other sequences of the row are
// masked per query row (-inf before the softmax, P = 0 in the backward). Whole key
// column tiles that no query of the block can see (earlier sequences, between the shared
// prompt and the block's first query's sequence: a "hole", found by binary search since
// ids never decrease along a row) are skipped in every product, so a packed row costs
// about what its sequences would cost alone plus the prompt once.
#include <algorithm>
#include <cmath>
#include <limits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "kernels/cpu/cpu_common.h"
#include "kernels/cpu/cpu_ops.h"

namespace rpt::cpu {

namespace {

using detail::round_up;

constexpr int64_t kMR = 4;    // rows per micro tile
constexpr int64_t kNB = 32;   // columns per micro tile (two AVX-512 vectors)
constexpr int64_t kBQ = 32;   // queries per block

// exp over a row, vectorised (detail::exp_poly).
inline void vexp(float* __restrict x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) x[i] = detail::exp_poly(x[i]);
}

// max of x[0..n) with a fixed-lane reduction (a plain std::max loop stays scalar).
inline float row_max(const float* __restrict x, int64_t n) {
    constexpr int L = detail::kLanes;
    float mx[L];
    for (int l = 0; l < L; ++l) mx[l] = -std::numeric_limits<float>::infinity();
    int64_t i = 0;
    for (; i + L <= n; i += L)
        for (int l = 0; l < L; ++l) mx[l] = x[i + l] > mx[l] ? x[i + l] : mx[l];
    for (int l = 0; i + l < n; ++l) mx[l] = x[i + l] > mx[l] ? x[i + l] : mx[l];
    for (int w = L / 2; w > 0; w /= 2)
        for (int l = 0; l < w; ++l) mx[l] = mx[l + w] > mx[l] ? mx[l + w] : mx[l];
    return mx[0];
}

// C[m][n] (+)= sum_k A[m * a_rs + k * a_cs] * Bm[k * ldb + n] for m < M, n < N, k < K in
// increasing k. N must be a multiple of kNB; C and Bm rows hold at least N floats.
template <int64_t MR>
inline void micro(float* C, int64_t ldc, const float* A, int64_t a_rs, int64_t a_cs, const float* Bm, int64_t ldb,
                  int64_t K, bool accumulate) {
#if defined(__AVX512F__)
    __m512 c[MR][2];
    for (int64_t r = 0; r < MR; ++r) {
        c[r][0] = accumulate ? _mm512_loadu_ps(C + r * ldc) : _mm512_setzero_ps();
        c[r][1] = accumulate ? _mm512_loadu_ps(C + r * ldc + 16) : _mm512_setzero_ps();
    }
    for (int64_t k = 0; k < K; ++k) {
        const __m512 b0 = _mm512_loadu_ps(Bm + k * ldb);
        const __m512 b1 = _mm512_loadu_ps(Bm + k * ldb + 16);
        for (int64_t r = 0; r < MR; ++r) {
            const __m512 a = _mm512_set1_ps(A[r * a_rs + k * a_cs]);
            c[r][0] = _mm512_fmadd_ps(a, b0, c[r][0]);
            c[r][1] = _mm512_fmadd_ps(a, b1, c[r][1]);
        }
    }
    for (int64_t r = 0; r < MR; ++r) {
        _mm512_storeu_ps(C + r * ldc, c[r][0]);
        _mm512_storeu_ps(C + r * ldc + 16, c[r][1]);
    }
#else
    float c[MR][kNB];
    for (int64_t r = 0; r < MR; ++r)
        for (int64_t l = 0; l < kNB; ++l) c[r][l] = accumulate ? C[r * ldc + l] : 0.0f;
    for (int64_t k = 0; k < K; ++k) {
        const float* b = Bm + k * ldb;
        for (int64_t r = 0; r < MR; ++r) {
            const float a = A[r * a_rs + k * a_cs];
            for (int64_t l = 0; l < kNB; ++l) c[r][l] += a * b[l];
        }
    }
    for (int64_t r = 0; r < MR; ++r)
        for (int64_t l = 0; l < kNB; ++l) C[r * ldc + l] = c[r][l];
#endif
}

void block_mm(float* C, int64_t ldc, const float* A, int64_t a_rs, int64_t a_cs, const float* Bm, int64_t ldb,
              int64_t M, int64_t N, int64_t K, bool accumulate) {
    for (int64_t n0 = 0; n0 < N; n0 += kNB) {
        int64_t m = 0;
        for (; m + kMR <= M; m += kMR)
            micro<kMR>(C + m * ldc + n0, ldc, A + m * a_rs, a_rs, a_cs, Bm + n0, ldb, K, accumulate);
        for (; m < M; ++m) micro<1>(C + m * ldc + n0, ldc, A + m * a_rs, a_rs, a_cs, Bm + n0, ldb, K, accumulate);
    }
}

// sum of x[0..n) with row_max's fixed-lane order (the bits do not depend on threads).
inline float row_sum(const float* __restrict x, int64_t n) {
    float acc[detail::kLanes] = {};
    int64_t i = 0;
    for (; i + detail::kLanes <= n; i += detail::kLanes)
        for (int l = 0; l < detail::kLanes; ++l) acc[l] += x[i + l];
    for (int l = 0; i + l < n; ++l) acc[l] += x[i + l];
    return detail::fold_lanes(acc);
}

// Sets s[j] = fill for the keys j in [j0, j1) that a query of segment `own` must not see:
// those of other sequences packed in the row (id != 0, != own). No-op for plain rows.
// (The causal part of the rule is the loop bounds; a query of the prompt sees only the
// prompt, so own == 0 needs no mask.)
inline void mask_other_segments(float* __restrict s, const int32_t* __restrict row_segments, int32_t own, int64_t j0,
                                int64_t j1, float fill) {
    if (!row_segments || own == 0) return;
    for (int64_t j = j0; j < j1; ++j)
        if (!attn::segment_visible(own, row_segments[j])) s[j] = fill;
}

// Key columns [begin, end), multiples of kNB, that no query of a block starting at t0 can
// see: keys of earlier sequences of the packed row. Empty for plain rows and for blocks
// that start in the prompt.
struct KeyHole {
    int64_t begin = 0, end = 0;
    bool empty() const { return end <= begin; }
};

KeyHole key_hole(const int32_t* row_segments, int64_t prompt_end, int64_t t0) {
    if (!row_segments || row_segments[t0] == 0) return {};
    const int32_t own = row_segments[t0];
    const int64_t own_start = std::lower_bound(row_segments, row_segments + t0, own) - row_segments;
    return {round_up(prompt_end, kNB), own_start / kNB * kNB};
}

// Calls f(begin, end, first) for [0, limit) minus the hole (limit > hole.end), in
// increasing order; `first` marks the first range (an overwriting product accumulates
// from the second on). Products and per-row loops alike never touch the hole.
template <typename F>
void for_visible(const KeyHole& hole, int64_t limit, F f) {
    if (hole.empty()) {
        f(int64_t(0), limit, true);
        return;
    }
    f(int64_t(0), hole.begin, true);
    f(hole.end, limit, false);
}

// The length of a row's shared prompt: its leading run of segment id 0.
int64_t prompt_length(const int32_t* row_segments, int64_t T) {
    if (!row_segments) return T;
    return std::find_if(row_segments, row_segments + T, [](int32_t id) { return id != 0; }) - row_segments;
}

// Per-thread panels of one (batch, KV head): kt/vt (D x Tp), kp/vp (Tp x Dp).
struct KvPanels {
    float* kt;
    float* vt;
    float* kp;
    float* vp;
};

// Packs the panels that are not null; padding is zeroed.
void pack_kv(const KvPanels& p, const float* k, const float* v, int64_t b, int64_t kvh, int64_t T, int64_t KVH,
             int64_t D, int64_t Tp, int64_t Dp) {
    const float* k0 = k + (b * T * KVH + kvh) * D;
    const float* v0 = v + (b * T * KVH + kvh) * D;
    const int64_t ld = KVH * D;
    const auto transpose = [&](float* dst, const float* src) {
        if (!dst) return;
        for (int64_t d = 0; d < D; ++d) {
            float* row = dst + d * Tp;
            for (int64_t j = 0; j < T; ++j) row[j] = src[j * ld + d];
            std::fill(row + T, row + Tp, 0.0f);
        }
    };
    const auto pad_rows = [&](float* dst, const float* src) {
        if (!dst) return;
        for (int64_t j = 0; j < T; ++j) {
            std::copy_n(src + j * ld, D, dst + j * Dp);
            std::fill(dst + j * Dp + D, dst + (j + 1) * Dp, 0.0f);
        }
        std::fill(dst + T * Dp, dst + Tp * Dp, 0.0f);
    };
    transpose(p.kt, k0);
    transpose(p.vt, v0);
    pad_rows(p.kp, k0);
    pad_rows(p.vp, v0);
}

}  // namespace

void attention_forward(const attn::ForwardArgs& a) {
    const int64_t B = a.shape.B, T = a.shape.T, H = a.shape.H, KVH = a.shape.KVH, D = a.shape.D;
    float* out = a.out;
    float* lse = a.lse;
    const float *q = a.q, *k = a.k, *v = a.v;
    const int32_t* segments = a.segments;
    const int64_t group = H / KVH;
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    const int64_t Tp = round_up(T, kNB), Dp = round_up(D, kNB);
#pragma omp parallel
    {
        // kt, vt, kp, vp, q block, s block, o block
        const int64_t need = 4 * Tp * Dp + kBQ * Dp + kBQ * Tp + kBQ * Dp;
        float* base = detail::thread_scratch(detail::ScratchSlot::row, need);
        const KvPanels pan{base, nullptr, nullptr, base + 3 * Tp * Dp};
        float* qb = base + 4 * Tp * Dp;
        float* sb = qb + kBQ * Dp;
        float* ob = sb + kBQ * Tp;
#pragma omp for schedule(static)
        for (int64_t bk = 0; bk < B * KVH; ++bk) {
            const int64_t b = bk / KVH, kvh = bk % KVH;
            const int32_t* row_segments = segments ? segments + b * T : nullptr;
            const int64_t prompt_end = prompt_length(row_segments, T);
            pack_kv(pan, k, v, b, kvh, T, KVH, D, Tp, Dp);
            for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
                for (int64_t t0 = 0; t0 < T; t0 += kBQ) {
                    const int64_t nq = std::min(kBQ, T - t0), t1 = t0 + nq;
                    const int64_t nk = round_up(t1, kNB);  // key columns computed (padded)
                    const KeyHole hole = key_hole(row_segments, prompt_end, t0);
                    for (int64_t i = 0; i < nq; ++i) {
                        const float* qt = q + ((b * T + t0 + i) * H + h) * D;
                        std::copy_n(qt, D, qb + i * Dp);
                    }
                    for_visible(hole, nk, [&](int64_t j0, int64_t j1, bool) {
                        block_mm(sb + j0, Tp, qb, Dp, 1, pan.kt + j0, Tp, nq, j1 - j0, D, false);
                    });
                    for (int64_t i = 0; i < nq; ++i) {
                        float* s = sb + i * Tp;
                        const int64_t n = t0 + i + 1;  // keys up to the query (the hole excluded)
                        const int32_t own = row_segments ? row_segments[t0 + i] : 0;
                        float m = -std::numeric_limits<float>::infinity();
                        for_visible(hole, n, [&](int64_t j0, int64_t j1, bool) {
                            for (int64_t j = j0; j < j1; ++j) s[j] *= scale;
                            mask_other_segments(s, row_segments, own, j0, j1, -std::numeric_limits<float>::infinity());
                            m = std::max(m, row_max(s + j0, j1 - j0));
                        });
                        float sum = 0.0f;
                        for_visible(hole, n, [&](int64_t j0, int64_t j1, bool) {
                            for (int64_t j = j0; j < j1; ++j) s[j] -= m;
                            vexp(s + j0, j1 - j0);
                            sum += row_sum(s + j0, j1 - j0);
                        });
                        std::fill(s + n, s + t1, 0.0f);
                        lse[(b * H + h) * T + t0 + i] = m + std::log(sum);
                        const float inv = 1.0f / sum;
                        for_visible(hole, n, [&](int64_t j0, int64_t j1, bool) {
                            for (int64_t j = j0; j < j1; ++j) s[j] *= inv;
                        });
                    }
                    for_visible(hole, t1, [&](int64_t j0, int64_t j1, bool first) {
                        block_mm(ob, Dp, sb + j0, Tp, 1, pan.vp + j0 * Dp, Dp, nq, Dp, j1 - j0, !first);
                    });
                    for (int64_t i = 0; i < nq; ++i)
                        std::copy_n(ob + i * Dp, D, out + ((b * T + t0 + i) * H + h) * D);
                }
            }
        }
    }
}

void attention_backward(const attn::BackwardArgs& a) {
    const int64_t B = a.shape.B, T = a.shape.T, H = a.shape.H, KVH = a.shape.KVH, D = a.shape.D;
    float *dq = a.dq, *dk = a.dk, *dv = a.dv;
    const float *dout = a.dout, *q = a.q, *k = a.k, *v = a.v, *out = a.out, *lse = a.lse;
    const int32_t* segments = a.segments;
    const int64_t group = H / KVH;
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    const int64_t Tp = round_up(T, kNB), Dp = round_up(D, kNB);
#pragma omp parallel
    {
        // kt, vt, kp, vp, dkp, dvp, q block, dout block, dq block, p block, ds block, delta
        const int64_t need = 6 * Tp * Dp + 3 * kBQ * Dp + 2 * kBQ * Tp + kBQ;
        float* base = detail::thread_scratch(detail::ScratchSlot::row, need);
        const KvPanels pan{base, base + Tp * Dp, base + 2 * Tp * Dp, nullptr};
        float* dkp = base + 4 * Tp * Dp;
        float* dvp = base + 5 * Tp * Dp;
        float* qb = base + 6 * Tp * Dp;
        float* gb = qb + kBQ * Dp;
        float* dqb = gb + kBQ * Dp;
        float* pb = dqb + kBQ * Dp;
        float* dsb = pb + kBQ * Tp;
        float* delta = dsb + kBQ * Tp;
#pragma omp for schedule(static)
        for (int64_t bk = 0; bk < B * KVH; ++bk) {
            const int64_t b = bk / KVH, kvh = bk % KVH;
            const int32_t* row_segments = segments ? segments + b * T : nullptr;
            const int64_t prompt_end = prompt_length(row_segments, T);
            pack_kv(pan, k, v, b, kvh, T, KVH, D, Tp, Dp);
            std::fill_n(dkp, Tp * Dp, 0.0f);
            std::fill_n(dvp, Tp * Dp, 0.0f);
            std::fill_n(qb, kBQ * Dp, 0.0f);
            std::fill_n(gb, kBQ * Dp, 0.0f);
            for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
                for (int64_t t0 = 0; t0 < T; t0 += kBQ) {
                    const int64_t nq = std::min(kBQ, T - t0), t1 = t0 + nq;
                    const int64_t nk = round_up(t1, kNB);
                    const KeyHole hole = key_hole(row_segments, prompt_end, t0);
                    for (int64_t i = 0; i < nq; ++i) {
                        const int64_t row = ((b * T + t0 + i) * H + h) * D;
                        std::copy_n(q + row, D, qb + i * Dp);
                        std::copy_n(dout + row, D, gb + i * Dp);
                        delta[i] = detail::dot(dout + row, out + row, D);
                    }
                    for_visible(hole, nk, [&](int64_t j0, int64_t j1, bool) {
                        block_mm(pb + j0, Tp, qb, Dp, 1, pan.kt + j0, Tp, nq, j1 - j0, D, false);   // S (unscaled)
                        block_mm(dsb + j0, Tp, gb, Dp, 1, pan.vt + j0, Tp, nq, j1 - j0, D, false);  // dP
                    });
                    for (int64_t i = 0; i < nq; ++i) {
                        float* p = pb + i * Tp;
                        float* ds = dsb + i * Tp;
                        const int64_t n = t0 + i + 1;
                        const float row_lse = lse[(b * H + h) * T + t0 + i];
                        const int32_t own = row_segments ? row_segments[t0 + i] : 0;
                        for_visible(hole, n, [&](int64_t j0, int64_t j1, bool) {
                            for (int64_t j = j0; j < j1; ++j) p[j] = p[j] * scale - row_lse;
                            vexp(p + j0, j1 - j0);
                            mask_other_segments(p, row_segments, own, j0, j1, 0.0f);
                        });
                        std::fill(p + n, p + t1, 0.0f);
                        const float di = delta[i];
                        for_visible(hole, t1, [&](int64_t j0, int64_t j1, bool) {
                            for (int64_t j = j0; j < j1; ++j) ds[j] = p[j] * (ds[j] - di) * scale;
                        });
                    }
                    // dV += P^T dout, dK += dS^T Q (rows j < t1), dQ = dS K.
                    for_visible(hole, t1, [&](int64_t j0, int64_t j1, bool first) {
                        block_mm(dvp + j0 * Dp, Dp, pb + j0, 1, Tp, gb, Dp, j1 - j0, Dp, nq, true);
                        block_mm(dkp + j0 * Dp, Dp, dsb + j0, 1, Tp, qb, Dp, j1 - j0, Dp, nq, true);
                        block_mm(dqb, Dp, dsb + j0, Tp, 1, pan.kp + j0 * Dp, Dp, nq, Dp, j1 - j0, !first);
                    });
                    for (int64_t i = 0; i < nq; ++i)
                        std::copy_n(dqb + i * Dp, D, dq + ((b * T + t0 + i) * H + h) * D);
                }
            }
            for (int64_t j = 0; j < T; ++j) {
                const int64_t r = ((b * T + j) * KVH + kvh) * D;
                std::copy_n(dkp + j * Dp, D, dk + r);
                std::copy_n(dvp + j * Dp, D, dv + r);
            }
        }
    }
}

}  // namespace rpt::cpu
