// CPU twins of the per-row layer ops through the op API: embedding, RMSNorm, RoPE and
// SwiGLU against float64 references, their backward against finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/ops.h"
#include "kernels/ref/layers.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

using test::rel_error;
using Vec = std::vector<float>;
using DVec = std::vector<double>;
using IVec = std::vector<int32_t>;

constexpr double kTol = 1e-5;
constexpr double kGradTol = 1e-5;
const OpContext kCpu{};

Tensor f32(Vec& v, std::initializer_list<int64_t> shape) { return cpu_f32(v.data(), shape); }
Tensor i32(IVec& v, std::initializer_list<int64_t> shape) { return cpu_i32(v.data(), shape); }

// ---- embedding -------------------------------------------------------------------------

TEST(CpuOpsEmbedding, ForwardGathersAndBackwardScatterAdds) {
    const int64_t N = 37, V = 11, C = 13;  // N > V: tokens repeat, as in real batches
    IVec tokens = test::random_ints(N, 1, 0, V - 1);
    Vec wte = test::random_nonzero(V * C, 2), out = test::poisoned(N * C);
    ops::embedding_forward(kCpu, f32(out, {N, C}), i32(tokens, {N}), f32(wte, {V, C}));
    DVec ref(N * C);
    for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c) ref[n * C + c] = wte[tokens[n] * C + c];
    EXPECT_EQ(rel_error(out, ref), 0.0);

    Vec dout = test::random_nonzero(N * C, 3), dwte0 = test::random_nonzero(V * C, 4), dwte = dwte0;
    ops::embedding_backward(kCpu, f32(dwte, {V, C}), f32(dout, {N, C}), i32(tokens, {N}));
    DVec dref(dwte0.begin(), dwte0.end());
    for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c) dref[tokens[n] * C + c] += dout[n * C + c];
    EXPECT_LT(rel_error(dwte, dref), kTol);
}

TEST(CpuOpsEmbedding, RejectsOutOfRangeTokens) {
    const int64_t V = 4, C = 3;
    IVec tokens = {0, 4};
    Vec wte(V * C, 1.0f), out(2 * C);
    EXPECT_THROW(ops::embedding_forward(kCpu, f32(out, {2, C}), i32(tokens, {2}), f32(wte, {V, C})), std::exception);
}

// ---- RMSNorm ---------------------------------------------------------------------------

constexpr float kEps = 1e-6f;

DVec ref_rmsnorm(const DVec& x, const DVec& w, int64_t N, int64_t C, DVec* rstd = nullptr) {
    return ref::rmsnorm_forward(x, w, N, C, kEps, rstd);
}

TEST(CpuOpsRmsnorm, ForwardMatchesFloat64) {
    for (auto [N, C] : {std::pair<int64_t, int64_t>{7, 13}, {5, 128}, {3, 1536}, {1, 1}}) {
        Vec x = test::random_nonzero(N * C, 5), w = test::random_nonzero(C, 6), out = test::poisoned(N * C),
            rstd = test::poisoned(N);
        ops::rmsnorm_forward(kCpu, f32(out, {N, C}), f32(rstd, {N}), f32(x, {N, C}), f32(w, {C}), kEps);
        DVec rref(N);
        const DVec ref = ref_rmsnorm(test::to_double(x), test::to_double(w), N, C, &rref);
        EXPECT_LT(rel_error(out, ref), kTol) << N << "x" << C;
        EXPECT_LT(rel_error(rstd, rref), kTol) << N << "x" << C;
    }
}

TEST(CpuOpsRmsnorm, BackwardMatchesFiniteDifferencesAndAccumulates) {
    const int64_t N = 4, C = 10;
    Vec x = test::random_nonzero(N * C, 7), w = test::random_nonzero(C, 8), probe = test::random_nonzero(N * C, 9);
    Vec out(N * C), rstd(N);
    ops::rmsnorm_forward(kCpu, f32(out, {N, C}), f32(rstd, {N}), f32(x, {N, C}), f32(w, {C}), kEps);
    const Vec din0 = test::random_nonzero(N * C, 10), dw0 = test::random_nonzero(C, 11);
    Vec din = din0, dw = dw0;
    ops::rmsnorm_backward(kCpu, f32(din, {N, C}), f32(dw, {C}), f32(probe, {N, C}), f32(x, {N, C}), f32(w, {C}),
                          f32(rstd, {N}));
    const DVec x64 = test::to_double(x), w64 = test::to_double(w);
    DVec gx = test::numeric_grad(x64, [&](const DVec& v) { return test::dot(probe, ref_rmsnorm(v, w64, N, C)); });
    DVec gw = test::numeric_grad(w64, [&](const DVec& v) { return test::dot(probe, ref_rmsnorm(x64, v, N, C)); });
    for (size_t i = 0; i < gx.size(); ++i) gx[i] += din0[i];
    for (size_t i = 0; i < gw.size(); ++i) gw[i] += dw0[i];
    EXPECT_LT(rel_error(din, gx), kGradTol);
    EXPECT_LT(rel_error(dw, gw), kGradTol);
}

// ---- RoPE ------------------------------------------------------------------------------

constexpr float kTheta = 10000.0f;

DVec ref_rope(const DVec& x, const IVec& pos, int64_t N, int64_t heads, int64_t D, double theta) {
    return ref::rope_forward(x, pos, N, heads, D, theta);
}

TEST(CpuOpsRope, ForwardMatchesFloat64) {
    for (auto [N, heads, D] : {std::tuple<int64_t, int64_t, int64_t>{7, 3, 6}, {5, 2, 64}, {9, 4, 128}, {3, 1, 10}}) {
        IVec pos = test::random_ints(N, 12, 0, 4000);
        Vec x = test::random_nonzero(N * heads * D, 13);
        const DVec ref = ref_rope(test::to_double(x), pos, N, heads, D, kTheta);
        ops::rope_forward(kCpu, f32(x, {N, heads, D}), i32(pos, {N}), kTheta);
        EXPECT_LT(rel_error(x, ref), kTol) << N << "x" << heads << "x" << D;
    }
}

TEST(CpuOpsRope, BackwardIsTheTransposedRotation) {
    const int64_t N = 5, heads = 2, D = 6;
    IVec pos = test::random_ints(N, 14, 0, 50);
    const Vec x = test::random_nonzero(N * heads * D, 15);
    Vec probe = test::random_nonzero(N * heads * D, 16), dx = probe;
    ops::rope_backward(kCpu, f32(dx, {N, heads, D}), i32(pos, {N}), kTheta);
    const DVec g = test::numeric_grad(test::to_double(x),
                                      [&](const DVec& v) { return test::dot(probe, ref_rope(v, pos, N, heads, D, kTheta)); });
    EXPECT_LT(rel_error(dx, g), kGradTol);
}

// ---- SwiGLU ----------------------------------------------------------------------------

DVec ref_swiglu(const DVec& g, const DVec& u) { return ref::swiglu_forward(g, u); }

TEST(CpuOpsSwiglu, ForwardAndBackward) {
    const int64_t n = 77;
    Vec g = test::random_floats(n, 17, -4.0f, 4.0f), u = test::random_nonzero(n, 18), out = test::poisoned(n);
    ops::swiglu_forward(kCpu, f32(out, {n}), f32(g, {n}), f32(u, {n}));
    const DVec g64 = test::to_double(g), u64 = test::to_double(u);
    EXPECT_LT(rel_error(out, ref_swiglu(g64, u64)), kTol);

    Vec probe = test::random_nonzero(n, 19), dg = test::poisoned(n), du = test::poisoned(n);
    ops::swiglu_backward(kCpu, f32(dg, {n}), f32(du, {n}), f32(probe, {n}), f32(g, {n}), f32(u, {n}));
    EXPECT_LT(rel_error(dg, test::numeric_grad(g64, [&](const DVec& v) { return test::dot(probe, ref_swiglu(v, u64)); })),
              kGradTol);
    EXPECT_LT(rel_error(du, test::numeric_grad(u64, [&](const DVec& v) { return test::dot(probe, ref_swiglu(g64, v)); })),
              kGradTol);
}

}  // namespace
}  // namespace rpt
