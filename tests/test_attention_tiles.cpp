// The index math of the bf16 tensor-core attention (kernels/cuda/attention_tiles.h), on
// the CPU: the kernels first run on a lent GPU, so everything that can be checked without
// one is checked here. The tile plan visits every (query, key) pair that attn::key_visible
// allows, in both the query-major loops (forward, dQ) and the key-major loop (dK/dV); a
// skipped block holds no visible pair and an unmasked block no hidden one; the in-block
// mask in either frame equals the one rule at the tile borders and on the padding; the
// softmax pass's lanes cover the score tile once, without shared-memory bank conflicts;
// the shared-memory layouts keep WMMA's alignment and fit the GPUs. And the kernels' tile
// algorithm itself (online softmax in log2 units per key tile, bf16 P and dS, lse, delta,
// the skip and unmask decisions), emulated on the CPU with the kernels' roundings, meets
// the GPU test's bf16 tolerances against the fp32 twin: the bounds are reachable and the
// recipe is right before any GPU runs it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <vector>

#include "kernels/attention_args.h"
#include "kernels/bf16.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cuda/attention_tiles.h"
#include "tests/attention_bf16_tolerances.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

namespace tl = attn::tiles;

constexpr int kBanks = 32;
constexpr int kBankBytes = 4;

// Packed rows as GRPO builds them: a prompt (id 0), then sequences 1, 2, ... of the
// given lengths (cycled); ids never decrease. prompt < 0: a plain row (no segments).
std::vector<int32_t> packed_row(int64_t T, int64_t prompt, const std::vector<int64_t>& lengths) {
    std::vector<int32_t> seg(size_t(T), 0);
    int32_t id = 1;
    size_t which = 0;
    for (int64_t t = prompt; t < T; ++id, ++which)
        for (int64_t i = 0; i < lengths[which % lengths.size()] && t < T; ++i) seg[size_t(t++)] = id;
    return seg;
}

struct Row {
    int64_t T;
    std::vector<int32_t> seg;  // empty: plain causal
    const int32_t* ids() const { return seg.empty() ? nullptr : seg.data(); }
};

std::vector<Row> rows_to_check() {
    std::vector<Row> rows;
    for (int64_t T : {1, 17, 63, 64, 65, 100, 128, 257, 400}) rows.push_back({T, {}});
    for (int64_t T : {17, 100, 257, 400}) {
        rows.push_back({T, packed_row(T, 0, {1, 4, 9})});       // no prompt, short sequences
        rows.push_back({T, packed_row(T, 1, {37, 2, 11})});     // prompt of one token
        rows.push_back({T, packed_row(T, 64, {90})});           // a tile of prompt, long sequences
        rows.push_back({T, packed_row(T, 70, {64, 128, 5})});   // tile-sized sequences off the grid
        rows.push_back({T, packed_row(T, 130, {200})});
    }
    return rows;
}

bool rule(const Row& r, int64_t t, int64_t j) { return attn::key_visible(r.ids(), t, j); }

// Forward and dQ: query tile q0 visits key tiles k0 < key_end(q0), minus the hidden ones.
TEST(AttentionTiles, QueryMajorPlanVisitsEveryVisiblePair) {
    int64_t skipped_somewhere = 0;
    for (const Row& r : rows_to_check()) {
        SCOPED_TRACE("T=" + std::to_string(r.T) + (r.seg.empty() ? " plain" : " packed"));
        for (int64_t q0 = 0; q0 < r.T; q0 += tl::kTile) {
            std::set<int64_t> visited;
            for (int64_t k0 = 0; k0 < tl::key_end(q0, r.T); k0 += tl::kTile) {
                const bool hidden = tl::keys_hidden(r.ids(), q0, k0, tl::tile_end(k0, r.T));
                if (!hidden) visited.insert(k0);
                skipped_somewhere += hidden;
                for (int64_t t = q0; t < tl::tile_end(q0, r.T); ++t)
                    for (int64_t j = k0; j < tl::tile_end(k0, r.T); ++j) {
                        if (hidden) {
                            ASSERT_FALSE(rule(r, t, j)) << "skipped block hides (" << t << ", " << j << ")";
                        }
                        if (tl::block_unmasked(q0, k0, r.T, r.ids())) {
                            ASSERT_TRUE(rule(r, t, j)) << "unmasked block holds hidden (" << t << ", " << j << ")";
                        }
                    }
            }
            for (int64_t t = q0; t < tl::tile_end(q0, r.T); ++t)
                for (int64_t j = 0; j < r.T; ++j)
                    if (rule(r, t, j)) {
                        ASSERT_TRUE(visited.count(j / tl::kTile * tl::kTile)) << t << " sees " << j;
                    }
        }
    }
    EXPECT_GT(skipped_somewhere, 0) << "no layout exercised the key-tile skipping";
}

// dK/dV: key tile k0 visits query tiles from first_query_tile(k0) to T, minus the hidden ones.
TEST(AttentionTiles, KeyMajorPlanVisitsEveryVisiblePair) {
    for (const Row& r : rows_to_check()) {
        SCOPED_TRACE("T=" + std::to_string(r.T) + (r.seg.empty() ? " plain" : " packed"));
        for (int64_t k0 = 0; k0 < r.T; k0 += tl::kTile) {
            std::set<int64_t> visited;
            for (int64_t q0 = tl::first_query_tile(k0); q0 < r.T; q0 += tl::kTile) {
                const bool hidden = tl::keys_hidden(r.ids(), q0, k0, tl::tile_end(k0, r.T));
                if (!hidden) visited.insert(q0);
                for (int64_t t = q0; t < tl::tile_end(q0, r.T) && hidden; ++t)
                    for (int64_t j = k0; j < tl::tile_end(k0, r.T); ++j) ASSERT_FALSE(rule(r, t, j));
            }
            for (int64_t j = k0; j < tl::tile_end(k0, r.T); ++j)
                for (int64_t t = 0; t < r.T; ++t)
                    if (rule(r, t, j)) {
                        ASSERT_TRUE(visited.count(t / tl::kTile * tl::kTile)) << t << " sees " << j;
                    }
        }
    }
}

// The in-block mask, in the kernels' two frames and with their padding conventions (rows
// and keys past T read segment id 0), equals the rule for every cell of every block.
TEST(AttentionTiles, BlockMaskIsTheRuleAtTheBorders) {
    for (const Row& r : rows_to_check()) {
        SCOPED_TRACE("T=" + std::to_string(r.T) + (r.seg.empty() ? " plain" : " packed"));
        auto id = [&](int64_t t) { return (r.seg.empty() || t >= r.T) ? 0 : r.seg[size_t(t)]; };
        for (int64_t q0 = 0; q0 < r.T; q0 += tl::kTile)
            for (int64_t k0 = 0; k0 <= q0; k0 += tl::kTile)
                for (int rq = 0; rq < tl::kTile; ++rq)
                    for (int ck = 0; ck < tl::kTile; ++ck) {
                        const int64_t t = q0 + rq, j = k0 + ck;
                        const bool want = t < r.T && j < r.T && rule(r, t, j);
                        // forward / dQ: the row is query t - k0, the column key ck
                        ASSERT_EQ(tl::visible(int(t - k0), ck, t < r.T, id(t), id(j)), want) << t << ", " << j;
                        // dK/dV: the column is query rq, the row key j - q0
                        ASSERT_EQ(tl::visible(rq, int(j - q0), rq < r.T - q0, id(t), id(j)), want) << t << ", " << j;
                    }
    }
}

TEST(AttentionTiles, PairCellsCoverTheScoreTileOnce) {
    std::vector<int> hits(size_t(tl::kFrag * tl::kTile), 0);
    for (int lane = 0; lane < tl::kWarpSize; ++lane)
        for (int j = 0; j < tl::kPairsPerLane; ++j) {
            const tl::Cell c = tl::pair_cell(lane, j);
            ASSERT_EQ(c.row, lane / 2);
            ASSERT_TRUE(c.col >= 0 && c.col + 1 < tl::kTile && c.col % 2 == 0) << lane << ", " << j;
            ++hits[size_t(c.row * tl::kTile + c.col)];
            ++hits[size_t(c.row * tl::kTile + c.col + 1)];
        }
    for (int h : hits) EXPECT_EQ(h, 1);
}

// Reads: float2 (8 bytes), served per half-warp; writes: bf16x2 (4 bytes), whole warp.
TEST(AttentionTiles, SoftmaxPassIsFreeOfBankConflicts) {
    for (int j = 0; j < tl::kPairsPerLane; ++j) {
        for (int half = 0; half < 2; ++half) {
            std::set<int> banks;
            for (int lane = half * 16; lane < half * 16 + 16; ++lane) {
                const tl::Cell c = tl::pair_cell(lane, j);
                const int word = c.row * tl::kScoreLd + c.col;
                banks.insert(word % kBanks);
                banks.insert((word + 1) % kBanks);
            }
            EXPECT_EQ(banks.size(), 32u) << "float2 reads, pair " << j << " half " << half;
        }
        std::set<int> banks;
        for (int lane = 0; lane < tl::kWarpSize; ++lane) {
            const tl::Cell c = tl::pair_cell(lane, j);
            banks.insert((c.row * tl::kProbLd + c.col) * tl::kBf16 / kBankBytes % kBanks);
        }
        EXPECT_EQ(banks.size(), 32u) << "bf16x2 writes, pair " << j;
    }
}

// A WMMA load phase reads 16 bytes from each of 8 consecutive rows: the 8 pieces must fall
// on distinct bank quads for every padded row stride the kernels use.
void expect_rows_on_distinct_quads(int row_bytes, const char* what) {
    std::set<int> quads;
    for (int r = 0; r < 8; ++r) quads.insert((r * row_bytes / kBankBytes) % kBanks / 4);
    EXPECT_EQ(quads.size(), 8u) << what << " row stride " << row_bytes << " bytes";
    EXPECT_EQ(row_bytes % 16, 0) << what;
}

template <int DP>
void check_layouts(int forward_bytes) {
    using F = tl::ForwardLayout<DP>;
    using Q = tl::DqLayout<DP>;
    using K = tl::DkvLayout<DP>;
    constexpr int kA100MaxSmem = 166912, kH100MaxSmem = 232448;  // opt-in dynamic shared memory per block
    for (int offset : {F::kK, F::kV, F::kS, F::kP, F::kRowScale, F::kSegK, Q::kQ, Q::kdO, Q::kK, Q::kV, Q::kS, Q::kdP,
                       Q::kdS, Q::kSegK, K::kK, K::kV, K::kQ, K::kdO, K::kS, K::kdP, K::kP, K::kdS, K::kLse, K::kDelta,
                       K::kSegQ, K::kSegK})
        EXPECT_EQ(offset % tl::kRegionAlign, 0) << "DP " << DP;
    EXPECT_EQ(F::kBytes, forward_bytes) << "the forward footprint documented in attention_bf16.cu";
    for (int bytes : {F::kBytes, Q::kBytes, K::kBytes}) {
        EXPECT_LE(bytes, kA100MaxSmem) << "DP " << DP;
        EXPECT_LE(bytes, kH100MaxSmem) << "DP " << DP;
    }
    // Regions hold what the kernels put there.
    EXPECT_GE(F::kV - F::kK, tl::kTile * tl::TileLayout<DP>::kLd * tl::kBf16);
    EXPECT_GE(F::kP - F::kS, tl::kWarps * tl::kScoreBytes);
    EXPECT_GE(K::kdS - K::kP, tl::kWarps * tl::kProbBytes);
    // Fragment pointers: 16 rows of any tile and 16-column steps stay 32-byte aligned.
    EXPECT_EQ(tl::kFrag * tl::TileLayout<DP>::kLd * tl::kBf16 % 32, 0);
    EXPECT_EQ(tl::kFrag * tl::kBf16 % 32, 0);
    expect_rows_on_distinct_quads(tl::TileLayout<DP>::kLd * tl::kBf16, "K/V/Q/dO tile");
    EXPECT_EQ(DP % tl::TileLayout<DP>::kChunk, 0);
}

TEST(AttentionTiles, SharedMemoryLayoutsAreAlignedAndFit) {
    check_layouts<32>(37376);
    check_layouts<64>(45568);
    check_layouts<128>(61952);
    expect_rows_on_distinct_quads(tl::kScoreLd * tl::kF32, "score tile");
    expect_rows_on_distinct_quads(tl::kProbLd * tl::kBf16, "probability tile");
}


// ---- the tile algorithm, emulated --------------------------------------------------------
// attention_bf16.cu's arithmetic on the host, one (b, h) at a time, with its roundings:
// scores in fp32, the online softmax per 64-key tile in log2 units, P rounded to bf16 for
// P V (the sum l in fp32), out rounded once; the backward from the rounded out and the lse,
// delta in fp32, P and dS rounded to bf16 before their products, dq/dk/dv rounded once.
// Summation orders differ from the tensor cores' (fp32 either way).

float round_bf16(float x) { return bf16_to_f32(f32_to_bf16(x)); }

struct Problem {
    int64_t B, T, H, KVH, D;
    std::vector<float> q, k, v, dout;  // bf16 values, widened
    std::vector<int32_t> seg;          // empty: plain rows
    int64_t qi(int64_t b, int64_t t, int64_t h) const { return ((b * T + t) * H + h) * D; }
    int64_t ki(int64_t b, int64_t t, int64_t g) const { return ((b * T + t) * KVH + g) * D; }
    const int32_t* ids(int64_t b) const { return seg.empty() ? nullptr : seg.data() + b * T; }
    float dot(const float* a, const float* c) const {
        float acc = 0.0f;
        for (int64_t d = 0; d < D; ++d) acc += a[d] * c[d];
        return acc;
    }
};

constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.6931471805599453f;

void emulate_forward(const Problem& p, std::vector<float>& out, std::vector<float>& lse) {
    const float scale_log2 = kLog2e / std::sqrt(float(p.D));
    for (int64_t b = 0; b < p.B; ++b)
        for (int64_t h = 0; h < p.H; ++h) {
            const int64_t g = h / (p.H / p.KVH);
            const int32_t* ids = p.ids(b);
            for (int64_t q0 = 0; q0 < p.T; q0 += tl::kTile)
                for (int64_t tq = q0; tq < tl::tile_end(q0, p.T); ++tq) {
                    float m = -INFINITY, l = 0.0f;
                    std::vector<float> o(size_t(p.D), 0.0f);
                    for (int64_t k0 = 0; k0 < tl::key_end(q0, p.T); k0 += tl::kTile) {
                        if (tl::keys_hidden(ids, q0, k0, tl::tile_end(k0, p.T))) continue;
                        const bool unmasked = tl::block_unmasked(q0, k0, p.T, ids);
                        std::vector<float> s(size_t(tl::kTile), -INFINITY);
                        float row_max = -INFINITY;
                        for (int c = 0; c < tl::kTile && k0 + c < p.T; ++c) {
                            const int64_t tk = k0 + c;
                            if (unmasked || tl::visible(int(tq - k0), c, true, ids ? ids[tq] : 0, ids ? ids[tk] : 0))
                                s[size_t(c)] = p.dot(&p.q[size_t(p.qi(b, tq, h))], &p.k[size_t(p.ki(b, tk, g))]) * scale_log2;
                            row_max = std::max(row_max, s[size_t(c)]);
                        }
                        const float m_new = std::max(m, row_max), m_use = m_new == -INFINITY ? 0.0f : m_new;
                        const float alpha = std::exp2(m - m_use);
                        float row_sum = 0.0f;
                        for (float& x : o) x *= alpha;
                        for (int c = 0; c < tl::kTile && k0 + c < p.T; ++c) {
                            const float pr = std::exp2(s[size_t(c)] - m_use);
                            row_sum += pr;
                            const float pb = round_bf16(pr);
                            const float* vr = &p.v[size_t(p.ki(b, k0 + c, g))];
                            for (int64_t d = 0; d < p.D; ++d) o[size_t(d)] += pb * vr[d];
                        }
                        l = l * alpha + row_sum;
                        m = m_new;
                    }
                    for (int64_t d = 0; d < p.D; ++d) out[size_t(p.qi(b, tq, h) + d)] = round_bf16(o[size_t(d)] / l);
                    lse[size_t((b * p.H + h) * p.T + tq)] = (m + std::log2(l)) * kLn2;
                }
        }
}

// Key-major like the dK/dV kernel (its plan decides which blocks contribute), dq summed
// over the same visited blocks.
void emulate_backward(const Problem& p, const std::vector<float>& out, const std::vector<float>& lse,
                      std::vector<float>& dq, std::vector<float>& dk, std::vector<float>& dv) {
    const float scale = 1.0f / std::sqrt(float(p.D)), scale_log2 = scale * kLog2e;
    std::vector<float> dq_acc(dq.size(), 0.0f), dk_acc(dk.size(), 0.0f), dv_acc(dv.size(), 0.0f);
    for (int64_t b = 0; b < p.B; ++b) {
        const int32_t* ids = p.ids(b);
        for (int64_t h = 0; h < p.H; ++h) {
            const int64_t g = h / (p.H / p.KVH);
            for (int64_t k0 = 0; k0 < p.T; k0 += tl::kTile)
                for (int64_t q0 = tl::first_query_tile(k0); q0 < p.T; q0 += tl::kTile) {
                    if (tl::keys_hidden(ids, q0, k0, tl::tile_end(k0, p.T))) continue;
                    const bool unmasked = tl::block_unmasked(q0, k0, p.T, ids);
                    for (int64_t tq = q0; tq < tl::tile_end(q0, p.T); ++tq) {
                        const float* qr = &p.q[size_t(p.qi(b, tq, h))];
                        const float* gr = &p.dout[size_t(p.qi(b, tq, h))];
                        const float delta = p.dot(gr, &out[size_t(p.qi(b, tq, h))]);
                        const float lse2 = lse[size_t((b * p.H + h) * p.T + tq)] * kLog2e;
                        for (int64_t tk = k0; tk < tl::tile_end(k0, p.T); ++tk) {
                            const bool vis = unmasked || tl::visible(int(tq - q0), int(tk - q0), true,
                                                                     ids ? ids[tq] : 0, ids ? ids[tk] : 0);
                            if (!vis) continue;
                            const float* kr = &p.k[size_t(p.ki(b, tk, g))];
                            const float* vr = &p.v[size_t(p.ki(b, tk, g))];
                            const float pr = std::exp2(p.dot(qr, kr) * scale_log2 - lse2);
                            const float ds = round_bf16(pr * (p.dot(gr, vr) - delta)), pb = round_bf16(pr);
                            for (int64_t d = 0; d < p.D; ++d) {
                                dq_acc[size_t(p.qi(b, tq, h) + d)] += ds * kr[d];
                                dk_acc[size_t(p.ki(b, tk, g) + d)] += ds * qr[d];
                                dv_acc[size_t(p.ki(b, tk, g) + d)] += pb * gr[d];
                            }
                        }
                    }
                }
        }
    }
    for (size_t i = 0; i < dq.size(); ++i) dq[i] = round_bf16(dq_acc[i] * scale);
    for (size_t i = 0; i < dk.size(); ++i) dk[i] = round_bf16(dk_acc[i] * scale);
    for (size_t i = 0; i < dv.size(); ++i) dv[i] = round_bf16(dv_acc[i]);
}

std::vector<float> random_bf16_values(size_t n, std::mt19937& rng) {
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (float& x : v) x = round_bf16(u(rng));
    return v;
}

double max_abs(const std::vector<float>& v) {
    double m = 0.0;
    for (float x : v) m = std::max(m, std::fabs(double(x)));
    return m;
}
double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double m = 0.0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
    return m;
}
void expect_within(const std::vector<float>& got, const std::vector<float>& ref, double rel, double max_rel, double abs,
                   const char* what) {
    EXPECT_LT(test::attention_bf16::rel_l2(got, ref, abs), rel) << what;
    EXPECT_LE(max_abs_diff(got, ref), max_rel * max_abs(ref) + abs) << what;
}

TEST(AttentionTiles, EmulatedTileAlgorithmMeetsTheBf16Bounds) {
    namespace tol = test::attention_bf16;
    struct Shape {
        int64_t B, T, H, KVH, D, prompt, seq_len;  // prompt < 0: plain rows
    };
    uint32_t seed = 7;
    for (const Shape& sh : {Shape{1, 1, 1, 1, 64, -1, 0}, Shape{2, 17, 4, 2, 64, -1, 0}, Shape{1, 130, 4, 1, 128, -1, 0},
                            Shape{1, 257, 2, 2, 64, -1, 0}, Shape{2, 200, 4, 2, 64, 64, 90}, Shape{1, 150, 2, 1, 128, 70, 0}}) {
        SCOPED_TRACE("T=" + std::to_string(sh.T) + " D=" + std::to_string(sh.D) + (sh.prompt >= 0 ? " packed" : ""));
        std::mt19937 rng(seed++);
        Problem p{sh.B, sh.T, sh.H, sh.KVH, sh.D, {}, {}, {}, {}, {}};
        const size_t nq = size_t(sh.B * sh.T * sh.H * sh.D), nk = size_t(sh.B * sh.T * sh.KVH * sh.D);
        p.q = random_bf16_values(nq, rng);
        p.k = random_bf16_values(nk, rng);
        p.v = random_bf16_values(nk, rng);
        p.dout = random_bf16_values(nq, rng);
        if (sh.prompt >= 0) {
            for (int64_t b = 0; b < sh.B; ++b) {
                const std::vector<int32_t> row =
                    packed_row(sh.T, sh.prompt, sh.seq_len ? std::vector<int64_t>{sh.seq_len} : std::vector<int64_t>{1, 4, 37});
                p.seg.insert(p.seg.end(), row.begin(), row.end());
            }
        }
        const int32_t* seg = p.seg.empty() ? nullptr : p.seg.data();
        const attn::Shape shape{sh.B, sh.T, sh.H, sh.KVH, sh.D};
        const size_t nl = size_t(sh.B * sh.H * sh.T);

        std::vector<float> out = test::poisoned(nq), lse = test::poisoned(nl);
        emulate_forward(p, out, lse);
        std::vector<float> out_ref = test::poisoned(nq), lse_ref = test::poisoned(nl);
        cpu::attention_forward({out_ref.data(), lse_ref.data(), p.q.data(), p.k.data(), p.v.data(), seg, shape});
        expect_within(out, out_ref, tol::kOutRel, tol::kOutMax, tol::kOutAbs, "out");
        EXPECT_LT(test::rel_error(lse, lse_ref), tol::kLseRel) << "lse";

        std::vector<float> dq = test::poisoned(nq), dk = test::poisoned(nk), dv = test::poisoned(nk);
        emulate_backward(p, out, lse, dq, dk, dv);
        std::vector<float> dq_ref = test::poisoned(nq), dk_ref = test::poisoned(nk), dv_ref = test::poisoned(nk);
        cpu::attention_backward({dq_ref.data(), dk_ref.data(), dv_ref.data(), p.dout.data(), p.q.data(), p.k.data(),
                                 p.v.data(), out.data(), lse.data(), seg, shape});
        expect_within(dq, dq_ref, tol::kGradRel, tol::kGradMax, tol::kGradAbs, "dq");
        expect_within(dk, dk_ref, tol::kGradRel, tol::kGradMax, tol::kGradAbs, "dk");
        expect_within(dv, dv_ref, tol::kGradRel, tol::kGradMax, tol::kGradAbs, "dv");
    }
}

}  // namespace
}  // namespace rpt
