// CPU causal GQA attention through the op API: output and lse against a float64
// reference, dq/dk/dv against finite differences of that reference, GQA ratios 1, 2, 3,
// packed rows (segment ids: a shared prompt and sequences that do not see each other),
// and bit-identical results for 1 and 2 threads.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <vector>

#include "kernels/ops.h"
#include "kernels/ref/attention.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

using test::rel_error;
using Vec = std::vector<float>;
using DVec = std::vector<double>;

constexpr double kTol = 1e-5;
constexpr double kGradTol = 1e-4;  // fp32 analytic gradient vs float64 differences
const OpContext kCpu{};

using Shape = attn::Shape;
using Segments = std::vector<int32_t>;  // (B, T), empty: plain causal

// out (B,T,H,D) and lse (B,H,T) in float64 (kernels/ref/attention.h).
DVec ref_attention(const DVec& q, const DVec& k, const DVec& v, const Shape& s, DVec* lse = nullptr,
                   const Segments& seg = {}) {
    return ref::attention_forward(q, k, v, s, lse, seg);
}

struct AttentionRun {
    Vec out, lse, dq, dk, dv;
};

AttentionRun run_attention(Vec q, Vec k, Vec v, Vec dout, const Shape& s, Segments seg = {}) {
    AttentionRun r{test::poisoned(q.size()), test::poisoned(s.B * s.H * s.T), test::poisoned(q.size()),
          test::poisoned(k.size()), test::poisoned(v.size())};
    const auto qs = [&](Vec& x) { return cpu_f32(x.data(), {s.B, s.T, s.H, s.D}); };
    const auto ks = [&](Vec& x) { return cpu_f32(x.data(), {s.B, s.T, s.KVH, s.D}); };
    const Tensor segments = seg.empty() ? Tensor{} : cpu_i32(seg.data(), {s.B, s.T});
    ops::attention_forward(kCpu, qs(r.out), cpu_f32(r.lse.data(), {s.B, s.H, s.T}), qs(q), ks(k), ks(v), segments);
    ops::attention_backward(kCpu, qs(r.dq), ks(r.dk), ks(r.dv), qs(dout), qs(q), ks(k), ks(v), qs(r.out),
                            cpu_f32(r.lse.data(), {s.B, s.H, s.T}), segments);
    return r;
}

TEST(CpuOpsAttention, ForwardMatchesFloat64) {
    const Shape shapes[] = {{2, 5, 2, 2, 6},   {1, 17, 4, 2, 10}, {2, 33, 6, 2, 64},
                            {1, 33, 3, 1, 128}, {1, 17, 6, 3, 64}, {1, 1, 2, 1, 6}};
    for (const Shape& s : shapes) {
        const Vec q = test::random_nonzero(s.B * s.T * s.H * s.D, 1), k = test::random_nonzero(s.B * s.T * s.KVH * s.D, 2),
                  v = test::random_nonzero(s.B * s.T * s.KVH * s.D, 3), dout = test::random_nonzero(q.size(), 4);
        const AttentionRun r = run_attention(q, k, v, dout, s);
        DVec lse(s.B * s.H * s.T);
        const DVec ref = ref_attention(test::to_double(q), test::to_double(k), test::to_double(v), s, &lse);
        EXPECT_LT(rel_error(r.out, ref), kTol) << "T=" << s.T << " H=" << s.H << " KVH=" << s.KVH << " D=" << s.D;
        EXPECT_LT(rel_error(r.lse, lse), kTol) << "T=" << s.T << " H=" << s.H << " KVH=" << s.KVH << " D=" << s.D;
    }
}

TEST(CpuOpsAttention, BackwardMatchesFiniteDifferences) {
    const Shape shapes[] = {{1, 5, 2, 2, 6}, {2, 5, 2, 1, 6}, {1, 17, 3, 1, 10}, {1, 6, 6, 2, 4}};
    for (const Shape& s : shapes) {
        const Vec q = test::random_nonzero(s.B * s.T * s.H * s.D, 5), k = test::random_nonzero(s.B * s.T * s.KVH * s.D, 6),
                  v = test::random_nonzero(s.B * s.T * s.KVH * s.D, 7), probe = test::random_nonzero(q.size(), 8);
        const AttentionRun r = run_attention(q, k, v, probe, s);
        const DVec q64 = test::to_double(q), k64 = test::to_double(k), v64 = test::to_double(v);
        const auto gq = test::numeric_grad(q64, [&](const DVec& x) { return test::dot(probe, ref_attention(x, k64, v64, s)); });
        const auto gk = test::numeric_grad(k64, [&](const DVec& x) { return test::dot(probe, ref_attention(q64, x, v64, s)); });
        const auto gv = test::numeric_grad(v64, [&](const DVec& x) { return test::dot(probe, ref_attention(q64, k64, x, s)); });
        const std::string where = "T=" + std::to_string(s.T) + " H=" + std::to_string(s.H) + " KVH=" + std::to_string(s.KVH);
        EXPECT_LT(rel_error(r.dq, gq), kGradTol) << where;
        EXPECT_LT(rel_error(r.dk, gk), kGradTol) << where;
        EXPECT_LT(rel_error(r.dv, gv), kGradTol) << where;
    }
}

// Row 0: a prompt of `prompt` tokens, then sequences of the given lengths with ids 1, 2...;
// row 1 (when B = 2): plain causal (all zeros), to check rows are independent.
Segments packed_segments(const Shape& s, int64_t prompt, const std::vector<int64_t>& lengths) {
    Segments seg(size_t(s.B * s.T), 0);
    int64_t t = prompt;
    int32_t id = 1;
    for (int64_t len : lengths) {
        for (int64_t i = 0; i < len; ++i) seg[size_t(t++)] = id;
        ++id;
    }
    EXPECT_EQ(t, s.T);
    return seg;
}

TEST(CpuOpsAttention, PackedSegmentsMatchFloat64) {
    // T = 150 spans five query and key blocks; sequences straddle block edges, and the
    // last block's queries skip a tile of earlier sequences' keys.
    const Shape s{2, 150, 4, 2, 16};
    const Segments seg = packed_segments(s, 10, {9, 20, 1, 10, 50, 50});
    const Vec q = test::random_nonzero(s.B * s.T * s.H * s.D, 21), k = test::random_nonzero(s.B * s.T * s.KVH * s.D, 22),
              v = test::random_nonzero(s.B * s.T * s.KVH * s.D, 23), dout = test::random_nonzero(q.size(), 24);
    const AttentionRun r = run_attention(q, k, v, dout, s, seg);
    DVec lse(s.B * s.H * s.T);
    const DVec ref = ref_attention(test::to_double(q), test::to_double(k), test::to_double(v), s, &lse, seg);
    EXPECT_LT(rel_error(r.out, ref), kTol);
    EXPECT_LT(rel_error(r.lse, lse), kTol);
    // The packing must change the result, or this test checks nothing beyond causal.
    const DVec causal = ref_attention(test::to_double(q), test::to_double(k), test::to_double(v), s);
    EXPECT_GT(rel_error(r.out, causal), 1e-2);
}

// Packed attention's outputs against float64 and its gradients against finite differences.
void check_packed_gradients(const Shape& s, const Segments& seg, uint64_t seed) {
    const Vec q = test::random_nonzero(s.B * s.T * s.H * s.D, seed),
              k = test::random_nonzero(s.B * s.T * s.KVH * s.D, seed + 1),
              v = test::random_nonzero(s.B * s.T * s.KVH * s.D, seed + 2), probe = test::random_nonzero(q.size(), seed + 3);
    const AttentionRun r = run_attention(q, k, v, probe, s, seg);
    const DVec q64 = test::to_double(q), k64 = test::to_double(k), v64 = test::to_double(v);
    DVec lse(s.B * s.H * s.T);
    EXPECT_LT(rel_error(r.out, ref_attention(q64, k64, v64, s, &lse, seg)), kTol);
    EXPECT_LT(rel_error(r.lse, lse), kTol);
    const auto f = [&](const DVec& qq, const DVec& kk, const DVec& vv) {
        return test::dot(probe, ref_attention(qq, kk, vv, s, nullptr, seg));
    };
    EXPECT_LT(rel_error(r.dq, test::numeric_grad(q64, [&](const DVec& x) { return f(x, k64, v64); })), kGradTol);
    EXPECT_LT(rel_error(r.dk, test::numeric_grad(k64, [&](const DVec& x) { return f(q64, x, v64); })), kGradTol);
    EXPECT_LT(rel_error(r.dv, test::numeric_grad(v64, [&](const DVec& x) { return f(q64, k64, x); })), kGradTol);
}

TEST(CpuOpsAttention, PackedSegmentsBackwardMatchesFiniteDifferences) {
    const Shape s{1, 12, 2, 1, 6};
    check_packed_gradients(s, packed_segments(s, 4, {3, 1, 4}), 25);
}

// Long enough that the last query block skips the key tile [32, 64) of earlier sequences.
TEST(CpuOpsAttention, PackedSegmentsSkippingKeyTilesMatchesFiniteDifferences) {
    const Shape s{1, 100, 2, 1, 4};
    check_packed_gradients(s, packed_segments(s, 5, {30, 30, 35}), 31);
}

TEST(CpuOpsAttention, RejectsSegmentsOfTheWrongShape) {
    const Shape s{1, 4, 2, 1, 4};
    Vec q = test::random_nonzero(s.T * s.H * s.D, 1), k = test::random_nonzero(s.T * s.KVH * s.D, 2), v = k;
    Vec out(q.size()), lse(size_t(s.H * s.T));
    std::vector<int32_t> seg(3, 0);
    EXPECT_THROW(ops::attention_forward(kCpu, cpu_f32(out.data(), {1, 4, 2, 4}), cpu_f32(lse.data(), {1, 2, 4}),
                                        cpu_f32(q.data(), {1, 4, 2, 4}), cpu_f32(k.data(), {1, 4, 1, 4}),
                                        cpu_f32(v.data(), {1, 4, 1, 4}), cpu_i32(seg.data(), {3})),
                 std::invalid_argument);
    std::vector<int32_t> decreasing = {0, 2, 1, 1};  // ids must not decrease along a row
    EXPECT_THROW(ops::attention_forward(kCpu, cpu_f32(out.data(), {1, 4, 2, 4}), cpu_f32(lse.data(), {1, 2, 4}),
                                        cpu_f32(q.data(), {1, 4, 2, 4}), cpu_f32(k.data(), {1, 4, 1, 4}),
                                        cpu_f32(v.data(), {1, 4, 1, 4}), cpu_i32(decreasing.data(), {1, 4})),
                 std::invalid_argument);
}

TEST(CpuOpsAttention, DeterministicAcrossThreadCounts) {
    const Shape s{2, 33, 4, 2, 64};
    const Vec q = test::random_nonzero(s.B * s.T * s.H * s.D, 9), k = test::random_nonzero(s.B * s.T * s.KVH * s.D, 10),
              v = test::random_nonzero(s.B * s.T * s.KVH * s.D, 11), dout = test::random_nonzero(q.size(), 12);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    const AttentionRun one = run_attention(q, k, v, dout, s);
    omp_set_num_threads(2);
    const AttentionRun two = run_attention(q, k, v, dout, s);
    omp_set_num_threads(saved);
    EXPECT_TRUE(test::bitwise_equal(one.out, two.out));
    EXPECT_TRUE(test::bitwise_equal(one.lse, two.lse));
    EXPECT_TRUE(test::bitwise_equal(one.dq, two.dq));
    EXPECT_TRUE(test::bitwise_equal(one.dk, two.dk));
    EXPECT_TRUE(test::bitwise_equal(one.dv, two.dv));
}

}  // namespace
}  // namespace rpt
