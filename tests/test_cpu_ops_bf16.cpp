// The bf16 path of every op on the CPU (the emulation of kernels/op_precision.h), two
// ways:
//   - exact rounding points: each bf16 output equals the fp32 twin's output on the
//     widened inputs, rounded once to nearest even (an accumulated output: the fp32 sum
//     of the widened old value and the contribution, rounded once);
//   - accuracy: bf16 outputs against the float64 references of kernels/ref/ (gradients
//     against central differences of them) at kBf16Tol.
// Inputs are drawn as bf16 values, so the float64 reference sees exactly what the op saw
// and the only error left is the rounding of the outputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/bf16.h"
#include "kernels/ops.h"
#include "kernels/ref/attention.h"
#include "kernels/ref/layers.h"
#include "kernels/ref/logsoftmax.h"
#include "kernels/ref/matmul.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

using test::rel_error;
using Vec = std::vector<float>;
using DVec = std::vector<double>;
using IVec = std::vector<int32_t>;
using Bits = std::vector<uint16_t>;

// One rounding to bf16 has a relative error of at most 2^-9 (8 significant bits); the
// norm-wise error of a rounded output is at most that. Twice it leaves room for the
// fp32 arithmetic before the store and for outputs that round twice (a bf16 output read
// back by a later op of the same test).
constexpr double kBf16Tol = 1.0 / 256;
constexpr float kEps = 1e-6f;
constexpr float kTheta = 10000.0f;
const OpContext kCpu{};

// A tensor of a test in both precisions: `f` holds the values as fp32, `b` the same
// values as bf16 bits. Drawn values are bf16-representable, so f == widen(b) exactly.
struct Both {
    Vec f;
    Bits b;
    Tensor f32(std::initializer_list<int64_t> shape) { return cpu_f32(f.data(), shape); }
    Tensor bf16(std::initializer_list<int64_t> shape) {
        return make_tensor(b.data(), DType::bf16, DeviceKind::cpu, shape);
    }
    Vec widened() const {
        Vec w(b.size());
        for (size_t i = 0; i < b.size(); ++i) w[i] = bf16_to_f32(b[i]);
        return w;
    }
    DVec f64() const { return test::to_double(widened()); }
};

Both from_floats(const Vec& v) {
    Both t;
    t.b.resize(v.size());
    for (size_t i = 0; i < v.size(); ++i) t.b[i] = f32_to_bf16(v[i]);
    t.f = t.widened();
    return t;
}
Both random_bf16(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    return from_floats(test::random_floats(n, seed, lo, hi));
}
Both nonzero_bf16(size_t n, uint32_t seed) { return from_floats(test::random_nonzero(n, seed)); }
Both poisoned_bf16(size_t n) { return from_floats(test::poisoned(n)); }

Tensor f32(Vec& v, std::initializer_list<int64_t> shape) { return cpu_f32(v.data(), shape); }
Tensor i32(IVec& v, std::initializer_list<int64_t> shape) { return cpu_i32(v.data(), shape); }

// The rounding point: the bf16 result is the fp32 twin's result rounded once, bit for bit.
void expect_rounded_from(const Both& t, const char* what) {
    ASSERT_EQ(t.b.size(), t.f.size());
    size_t mismatches = 0, first = 0;
    for (size_t i = 0; i < t.b.size(); ++i)
        if (t.b[i] != f32_to_bf16(t.f[i]) && mismatches++ == 0) first = i;
    EXPECT_EQ(mismatches, 0u) << what << ": first at " << first << ": bf16 " << bf16_to_f32(t.b[first])
                              << " vs fp32 twin " << t.f[first];
}

// ---- elementwise and embedding ---------------------------------------------------------

TEST(CpuOpsBf16, AddAccumulateFill) {
    const int64_t n = 1001;
    Both a = random_bf16(n, 1), b = random_bf16(n, 2), out = poisoned_bf16(n);
    ops::add(kCpu, out.f32({n}), a.f32({n}), b.f32({n}));
    ops::add(kCpu, out.bf16({n}), a.bf16({n}), b.bf16({n}));
    expect_rounded_from(out, "add");
    DVec ref(n);
    for (int64_t i = 0; i < n; ++i) ref[i] = double(a.f[i]) + b.f[i];
    EXPECT_LT(rel_error(out.widened(), ref), kBf16Tol);

    Both dst = random_bf16(n, 3);
    ops::accumulate(kCpu, dst.f32({n}), a.f32({n}));
    ops::accumulate(kCpu, dst.bf16({n}), a.bf16({n}));
    expect_rounded_from(dst, "accumulate");

    Both z = random_bf16(n, 4);
    ops::fill(kCpu, z.bf16({n}), 0.3f);
    for (uint16_t bits : z.b) ASSERT_EQ(bits, f32_to_bf16(0.3f));
}

TEST(CpuOpsBf16, EmbeddingForwardAndBackward) {
    const int64_t N = 37, V = 11, C = 13;
    IVec tokens = test::random_ints(N, 5, 0, V - 1);
    Both wte = random_bf16(V * C, 6), out = poisoned_bf16(N * C);
    ops::embedding_forward(kCpu, out.bf16({N, C}), i32(tokens, {N}), wte.bf16({V, C}));
    for (int64_t r = 0; r < N; ++r)  // a gather of bf16 values is exact
        ASSERT_EQ(std::memcmp(&out.b[r * C], &wte.b[tokens[r] * C], C * sizeof(uint16_t)), 0);

    Both dout = random_bf16(N * C, 7);
    const Vec dwte0 = test::random_floats(V * C, 8);
    Vec dwte = dwte0;  // parameter gradients stay fp32
    ops::embedding_backward(kCpu, f32(dwte, {V, C}), dout.bf16({N, C}), i32(tokens, {N}));
    DVec ref(dwte0.begin(), dwte0.end());
    for (int64_t r = 0; r < N; ++r)
        for (int64_t c = 0; c < C; ++c) ref[tokens[r] * C + c] += dout.f[r * C + c];
    EXPECT_LT(rel_error(dwte, ref), 1e-6);  // fp32 accumulation of exact bf16 inputs
}

// ---- RMSNorm ---------------------------------------------------------------------------

DVec ref_rmsnorm(const DVec& x, const DVec& w, int64_t N, int64_t C) { return ref::rmsnorm_forward(x, w, N, C, kEps); }

TEST(CpuOpsBf16, RmsnormForwardBf16AndF32Out) {
    for (auto [N, C] : {std::pair<int64_t, int64_t>{7, 13}, {3, 257}, {1, 1}}) {
        Both x = nonzero_bf16(N * C, 9), w = nonzero_bf16(C, 10), out = poisoned_bf16(N * C);
        Vec rstd_f = test::poisoned(N), rstd_b = test::poisoned(N), out32 = test::poisoned(N * C);
        ops::rmsnorm_forward(kCpu, out.f32({N, C}), f32(rstd_f, {N}), x.f32({N, C}), w.f32({C}), kEps);
        ops::rmsnorm_forward(kCpu, out.bf16({N, C}), f32(rstd_b, {N}), x.bf16({N, C}), w.bf16({C}), kEps);
        expect_rounded_from(out, "rmsnorm out");
        EXPECT_TRUE(test::bitwise_equal(rstd_b, rstd_f)) << "rstd is an fp32 statistic";
        DVec rref(N);
        const DVec ref = ref::rmsnorm_forward(x.f64(), w.f64(), N, C, kEps, &rref);
        EXPECT_LT(rel_error(out.widened(), ref), kBf16Tol) << N << "x" << C;
        EXPECT_LT(rel_error(rstd_b, rref), 1e-6);
        // The norm feeding the fp32 LM head: bf16 in, fp32 out, no rounding of the output.
        ops::rmsnorm_forward(kCpu, f32(out32, {N, C}), f32(rstd_b, {N}), x.bf16({N, C}), w.bf16({C}), kEps);
        EXPECT_TRUE(test::bitwise_equal(out32, out.f)) << N << "x" << C;
    }
}

TEST(CpuOpsBf16, AddRmsnormNormalisesTheRoundedSum) {
    const int64_t N = 5, C = 29;
    Both res = random_bf16(N * C, 11), branch = random_bf16(N * C, 12), w = nonzero_bf16(C, 13);
    Both sum = poisoned_bf16(N * C), out = poisoned_bf16(N * C);
    Vec rstd = test::poisoned(N);
    ops::add_rmsnorm_forward(kCpu, sum.bf16({N, C}), out.bf16({N, C}), f32(rstd, {N}), res.bf16({N, C}),
                             branch.bf16({N, C}), w.bf16({C}), kEps);
    // The sum is stored rounded, and the norm is of the rounded sum.
    DVec sum_ref(N * C);
    for (int64_t i = 0; i < N * C; ++i) {
        ASSERT_EQ(sum.b[i], f32_to_bf16(res.f[i] + branch.f[i])) << i;
        sum_ref[i] = bf16_to_f32(sum.b[i]);
    }
    Both norm_of_stored = poisoned_bf16(N * C);
    Vec rstd2(N);
    Both stored = from_floats(sum.widened());
    ops::rmsnorm_forward(kCpu, norm_of_stored.bf16({N, C}), f32(rstd2, {N}), stored.bf16({N, C}), w.bf16({C}), kEps);
    EXPECT_EQ(out.b, norm_of_stored.b);
    EXPECT_TRUE(test::bitwise_equal(rstd, rstd2));
    EXPECT_LT(rel_error(out.widened(), ref_rmsnorm(sum_ref, w.f64(), N, C)), kBf16Tol);

    // In place (the model's use: the branch's buffer becomes the sum).
    Both inplace = branch;
    ops::add_rmsnorm_forward(kCpu, inplace.bf16({N, C}), out.bf16({N, C}), f32(rstd, {N}), res.bf16({N, C}),
                             inplace.bf16({N, C}), w.bf16({C}), kEps);
    EXPECT_EQ(inplace.b, sum.b);
}

TEST(CpuOpsBf16, RmsnormBackwardAccumulatesRoundedAgainstFiniteDifferences) {
    const int64_t N = 4, C = 11;
    Both x = nonzero_bf16(N * C, 14), w = nonzero_bf16(C, 15), dout = nonzero_bf16(N * C, 16);
    Both y = poisoned_bf16(N * C);
    Vec rstd(N);
    ops::rmsnorm_forward(kCpu, y.bf16({N, C}), f32(rstd, {N}), x.bf16({N, C}), w.bf16({C}), kEps);
    Both din = random_bf16(N * C, 17);
    const Both din0 = din;
    const Vec dw0 = test::random_floats(C, 18);
    Vec dw_f = dw0, dw_b = dw0;
    ops::rmsnorm_backward(kCpu, din.f32({N, C}), f32(dw_f, {C}), dout.f32({N, C}), x.f32({N, C}), w.f32({C}),
                          f32(rstd, {N}));
    ops::rmsnorm_backward(kCpu, din.bf16({N, C}), f32(dw_b, {C}), dout.bf16({N, C}), x.bf16({N, C}), w.bf16({C}),
                          f32(rstd, {N}));
    expect_rounded_from(din, "rmsnorm din (+=)");
    EXPECT_TRUE(test::bitwise_equal(dw_b, dw_f)) << "dweight accumulates in fp32";

    const DVec x64 = x.f64(), w64 = w.f64();
    DVec gx = test::numeric_grad(x64, [&](const DVec& v) { return test::dot(dout.f, ref_rmsnorm(v, w64, N, C)); });
    DVec gw = test::numeric_grad(w64, [&](const DVec& v) { return test::dot(dout.f, ref_rmsnorm(x64, v, N, C)); });
    for (size_t i = 0; i < gx.size(); ++i) gx[i] += din0.f[i];
    for (size_t i = 0; i < gw.size(); ++i) gw[i] += dw0[i];
    EXPECT_LT(rel_error(din.widened(), gx), kBf16Tol);
    EXPECT_LT(rel_error(dw_b, gw), 1e-4);  // rstd came from fp32 math on the same inputs

    // dout arriving from the fp32 LM head: f32 dout into a bf16 din.
    Vec dout32 = dout.f, dw(C, 0.0f);
    Both din2 = din0;
    ops::rmsnorm_backward(kCpu, din2.bf16({N, C}), f32(dw, {C}), f32(dout32, {N, C}), x.bf16({N, C}), w.bf16({C}),
                          f32(rstd, {N}));
    EXPECT_EQ(din2.b, din.b);
}

// ---- matmul ----------------------------------------------------------------------------

TEST(CpuOpsBf16, MatmulForwardMatchesFloat64) {
    for (auto [N, IC, OC] : {std::tuple<int64_t, int64_t, int64_t>{7, 13, 5}, {33, 65, 17}, {1, 1, 1}}) {
        Both in = random_bf16(N * IC, 19), w = random_bf16(OC * IC, 20), out = poisoned_bf16(N * OC);
        Vec bias = test::random_floats(OC, 21), out32 = test::poisoned(N * OC);
        ops::matmul_forward(kCpu, out.f32({N, OC}), in.f32({N, IC}), w.f32({OC, IC}), f32(bias, {OC}));
        ops::matmul_forward(kCpu, out.bf16({N, OC}), in.bf16({N, IC}), w.bf16({OC, IC}), f32(bias, {OC}));
        expect_rounded_from(out, "matmul out");
        const DVec b64 = test::to_double(bias);
        const DVec ref = ref::matmul_forward(in.f64(), w.f64(), &b64, N, IC, OC);
        EXPECT_LT(rel_error(out.widened(), ref), kBf16Tol) << N << "x" << IC << "x" << OC;
        ops::matmul_forward(kCpu, f32(out32, {N, OC}), in.bf16({N, IC}), w.bf16({OC, IC}), f32(bias, {OC}));
        EXPECT_TRUE(test::bitwise_equal(out32, out.f)) << "fp32 out is the twin's, unrounded";
    }
}

TEST(CpuOpsBf16, MatmulBackwardMatchesFloat64) {
    const int64_t N = 9, IC = 14, OC = 6;
    Both in = random_bf16(N * IC, 22), w = random_bf16(OC * IC, 23), dout = random_bf16(N * OC, 24);
    Both din = random_bf16(N * IC, 25);
    const Both din0 = din;
    const Vec dw0 = test::random_floats(OC * IC, 26), db0 = test::random_floats(OC, 27);
    Vec dw_f = dw0, db_f = db0, dw_b = dw0, db_b = db0;
    ops::matmul_backward(kCpu, din.f32({N, IC}), f32(dw_f, {OC, IC}), f32(db_f, {OC}), dout.f32({N, OC}),
                         in.f32({N, IC}), w.f32({OC, IC}));
    ops::matmul_backward(kCpu, din.bf16({N, IC}), f32(dw_b, {OC, IC}), f32(db_b, {OC}), dout.bf16({N, OC}),
                         in.bf16({N, IC}), w.bf16({OC, IC}));
    expect_rounded_from(din, "matmul din (+=)");
    EXPECT_TRUE(test::bitwise_equal(dw_b, dw_f));
    EXPECT_TRUE(test::bitwise_equal(db_b, db_f));
    DVec rdin(din0.f.begin(), din0.f.end()), rdw(dw0.begin(), dw0.end()), rdb(db0.begin(), db0.end());
    for (int64_t n = 0; n < N; ++n)
        for (int64_t o = 0; o < OC; ++o) {
            const double g = dout.f[n * OC + o];
            rdb[o] += g;
            for (int64_t i = 0; i < IC; ++i) {
                rdin[n * IC + i] += g * w.f[o * IC + i];
                rdw[o * IC + i] += g * in.f[n * IC + i];
            }
        }
    EXPECT_LT(rel_error(din.widened(), rdin), kBf16Tol);
    EXPECT_LT(rel_error(dw_b, rdw), 1e-5);
    EXPECT_LT(rel_error(db_b, rdb), 1e-5);
}

// ---- RoPE and SwiGLU -------------------------------------------------------------------

TEST(CpuOpsBf16, RopeForwardAndBackward) {
    const int64_t N = 7, heads = 3, D = 10;
    IVec pos = test::random_ints(N, 28, 0, 3000), neg(N);
    for (int64_t i = 0; i < N; ++i) neg[i] = -pos[i];
    Both x = random_bf16(N * heads * D, 29);
    const DVec x64 = x.f64();
    ops::rope_forward(kCpu, x.f32({N, heads, D}), i32(pos, {N}), kTheta);
    ops::rope_forward(kCpu, x.bf16({N, heads, D}), i32(pos, {N}), kTheta);
    expect_rounded_from(x, "rope (in place)");
    EXPECT_LT(rel_error(x.widened(), ref::rope_forward(x64, pos, N, heads, D, kTheta)), kBf16Tol);

    Both dx = random_bf16(N * heads * D, 30);
    const DVec dx64 = dx.f64();
    ops::rope_backward(kCpu, dx.f32({N, heads, D}), i32(pos, {N}), kTheta);
    ops::rope_backward(kCpu, dx.bf16({N, heads, D}), i32(pos, {N}), kTheta);
    expect_rounded_from(dx, "rope backward (in place)");
    // The transpose of a rotation is the rotation by the opposite angle.
    EXPECT_LT(rel_error(dx.widened(), ref::rope_forward(dx64, neg, N, heads, D, kTheta)), kBf16Tol);
}

TEST(CpuOpsBf16, SwigluForwardAndBackward) {
    const int64_t n = 101;
    Both g = random_bf16(n, 31, -4.0f, 4.0f), u = nonzero_bf16(n, 32), out = poisoned_bf16(n);
    ops::swiglu_forward(kCpu, out.f32({n}), g.f32({n}), u.f32({n}));
    ops::swiglu_forward(kCpu, out.bf16({n}), g.bf16({n}), u.bf16({n}));
    expect_rounded_from(out, "swiglu out");
    const DVec g64 = g.f64(), u64 = u.f64();
    EXPECT_LT(rel_error(out.widened(), ref::swiglu_forward(g64, u64)), kBf16Tol);

    Both dout = nonzero_bf16(n, 33), dg = poisoned_bf16(n), du = poisoned_bf16(n);
    ops::swiglu_backward(kCpu, dg.f32({n}), du.f32({n}), dout.f32({n}), g.f32({n}), u.f32({n}));
    ops::swiglu_backward(kCpu, dg.bf16({n}), du.bf16({n}), dout.bf16({n}), g.bf16({n}), u.bf16({n}));
    expect_rounded_from(dg, "swiglu dgate");
    expect_rounded_from(du, "swiglu dup");
    const Vec probe = dout.f;
    EXPECT_LT(rel_error(dg.widened(), test::numeric_grad(g64, [&](const DVec& v) {
                  return test::dot(probe, ref::swiglu_forward(v, u64));
              })),
              kBf16Tol);
    EXPECT_LT(rel_error(du.widened(), test::numeric_grad(u64, [&](const DVec& v) {
                  return test::dot(probe, ref::swiglu_forward(g64, v));
              })),
              kBf16Tol);
}

// ---- attention -------------------------------------------------------------------------

TEST(CpuOpsBf16, AttentionForwardAndBackward) {
    const attn::Shape s{2, 13, 6, 2, 10};  // B, T (not a tile multiple), H, KVH (ratio 3), D
    const int64_t B = s.B, T = s.T, H = s.H, KVH = s.KVH, D = s.D;
    for (bool packed : {false, true}) {
        IVec seg(B * T);
        for (int64_t t = 0; t < T; ++t) seg[t] = seg[T + t] = t < 4 ? 0 : 1 + int32_t(t - 4) / 3;
        const Tensor segments = packed ? i32(seg, {B, T}) : Tensor{};
        const IVec ref_seg = packed ? seg : IVec{};
        Both q = random_bf16(B * T * H * D, 34), k = random_bf16(B * T * KVH * D, 35);
        Both v = random_bf16(B * T * KVH * D, 36);
        Both out = poisoned_bf16(B * T * H * D);
        Vec lse_f(B * H * T), lse_b(B * H * T);
        ops::attention_forward(kCpu, out.f32({B, T, H, D}), f32(lse_f, {B, H, T}), q.f32({B, T, H, D}),
                               k.f32({B, T, KVH, D}), v.f32({B, T, KVH, D}), segments);
        ops::attention_forward(kCpu, out.bf16({B, T, H, D}), f32(lse_b, {B, H, T}), q.bf16({B, T, H, D}),
                               k.bf16({B, T, KVH, D}), v.bf16({B, T, KVH, D}), segments);
        expect_rounded_from(out, "attention out");
        EXPECT_TRUE(test::bitwise_equal(lse_b, lse_f)) << "lse is an fp32 statistic";
        DVec lse_ref(B * H * T);
        const DVec ref = ref::attention_forward(q.f64(), k.f64(), v.f64(), s, &lse_ref, ref_seg);
        EXPECT_LT(rel_error(out.widened(), ref), kBf16Tol) << "packed " << packed;
        EXPECT_LT(rel_error(lse_b, lse_ref), 1e-6);

        // Both backwards read the output as the bf16 forward stored it.
        out.f = out.widened();
        Both dout = random_bf16(B * T * H * D, 37);
        Both dq = poisoned_bf16(q.b.size()), dk = poisoned_bf16(k.b.size()), dv = poisoned_bf16(v.b.size());
        ops::attention_backward(kCpu, dq.f32({B, T, H, D}), dk.f32({B, T, KVH, D}), dv.f32({B, T, KVH, D}),
                                dout.f32({B, T, H, D}), q.f32({B, T, H, D}), k.f32({B, T, KVH, D}),
                                v.f32({B, T, KVH, D}), out.f32({B, T, H, D}), f32(lse_f, {B, H, T}), segments);
        ops::attention_backward(kCpu, dq.bf16({B, T, H, D}), dk.bf16({B, T, KVH, D}), dv.bf16({B, T, KVH, D}),
                                dout.bf16({B, T, H, D}), q.bf16({B, T, H, D}), k.bf16({B, T, KVH, D}),
                                v.bf16({B, T, KVH, D}), out.bf16({B, T, H, D}), f32(lse_b, {B, H, T}), segments);
        expect_rounded_from(dq, "attention dq");
        expect_rounded_from(dk, "attention dk");
        expect_rounded_from(dv, "attention dv");
        // The backward read the rounded forward output: its gradient is that of the exact
        // attention within the forward's rounding, hence 2 x the single-rounding bound.
        const DVec q64 = q.f64(), k64 = k.f64(), v64 = v.f64();
        auto loss = [&](const DVec& qq, const DVec& kk, const DVec& vv) {
            return test::dot(dout.f, ref::attention_forward(qq, kk, vv, s, nullptr, ref_seg));
        };
        EXPECT_LT(rel_error(dq.widened(), test::numeric_grad(q64, [&](const DVec& x) { return loss(x, k64, v64); })),
                  2 * kBf16Tol);
        EXPECT_LT(rel_error(dk.widened(), test::numeric_grad(k64, [&](const DVec& x) { return loss(q64, x, v64); })),
                  2 * kBf16Tol);
        EXPECT_LT(rel_error(dv.widened(), test::numeric_grad(v64, [&](const DVec& x) { return loss(q64, k64, x); })),
                  2 * kBf16Tol);
    }
}

// ---- log-softmax family ----------------------------------------------------------------

TEST(CpuOpsBf16, LogsoftmaxFamilyComputesInFp32FromBf16Logits) {
    const int64_t N = 6, V = 301;
    const float inv_t = 1.0f / 0.7f;
    Both logits = random_bf16(N * V, 38, -6.0f, 6.0f);
    IVec targets = test::random_ints(N, 39, 0, V - 1);
    targets[2] = -1;
    Vec lp(N), ent(N), lse(N), lp_b = test::poisoned(N), ent_b = test::poisoned(N), lse_b = test::poisoned(N);
    ops::logsoftmax_forward(kCpu, f32(lp, {N}), f32(ent, {N}), f32(lse, {N}), logits.f32({N, V}), i32(targets, {N}),
                            inv_t);
    ops::logsoftmax_forward(kCpu, f32(lp_b, {N}), f32(ent_b, {N}), f32(lse_b, {N}), logits.bf16({N, V}),
                            i32(targets, {N}), inv_t);
    // fp32 math on exactly the same values: the same bits, no rounding of statistics.
    EXPECT_TRUE(test::bitwise_equal(lp_b, lp));
    EXPECT_TRUE(test::bitwise_equal(ent_b, ent));
    EXPECT_TRUE(test::bitwise_equal(lse_b, lse));
    const ref::LogsoftmaxRows ref = ref::logsoftmax_forward(logits.f64(), targets, N, V, inv_t);
    EXPECT_LT(rel_error(lp_b, ref.logprob), 1e-5);
    EXPECT_LT(rel_error(ent_b, ref.entropy), 1e-5);
    EXPECT_LT(rel_error(lse_b, ref.lse), 1e-6);

    // Backward overwrites the bf16 logits chunk with bf16 gradients.
    Vec dlp = test::random_nonzero(N, 40);
    Both grad = logits;
    ops::logsoftmax_backward(kCpu, grad.f32({N, V}), f32(dlp, {N}), f32(lse, {N}), i32(targets, {N}), inv_t);
    ops::logsoftmax_backward(kCpu, grad.bf16({N, V}), f32(dlp, {N}), f32(lse, {N}), i32(targets, {N}), inv_t);
    expect_rounded_from(grad, "dlogits");
    DVec dref(N * V, 0.0);
    for (int64_t n = 0; n < N; ++n) {
        if (targets[n] < 0) continue;
        for (int64_t j = 0; j < V; ++j) {
            const double p = std::exp(logits.f[n * V + j] * double(inv_t) - ref.lse[n]);
            dref[n * V + j] = dlp[n] * double(inv_t) * ((j == targets[n] ? 1.0 : 0.0) - p);
        }
    }
    EXPECT_LT(rel_error(grad.widened(), dref), kBf16Tol);

    Vec topk(N), topk_b(N);
    IVec am(N), am_b(N);
    ops::topk_entropy(kCpu, f32(topk, {N}), logits.f32({N, V}), 20);
    ops::topk_entropy(kCpu, f32(topk_b, {N}), logits.bf16({N, V}), 20);
    EXPECT_TRUE(test::bitwise_equal(topk_b, topk));
    ops::argmax(kCpu, i32(am, {N}), logits.f32({N, V}));
    ops::argmax(kCpu, i32(am_b, {N}), logits.bf16({N, V}));
    EXPECT_EQ(am_b, am);
    for (int64_t n = 0; n < N; ++n) {
        const DVec row(logits.f.begin() + n * V, logits.f.begin() + (n + 1) * V);
        EXPECT_NEAR(topk_b[n], ref::topk_entropy(row, 20), 1e-5);
    }
}

// ---- AdamW's working copy --------------------------------------------------------------

TEST(CpuOpsBf16, AdamwWritesTheRoundedWorkingCopy) {
    const int64_t n = 4097;  // past one SIMD/chunk multiple
    Vec p = test::random_floats(n, 41), g = test::random_floats(n, 42), m(n, 0.0f), v(n, 0.0f);
    Vec p2 = p, m2 = m, v2 = v;
    Bits working(n, 0xffff);
    ops::AdamWSettings s;
    s.lr = 1e-2f;
    s.weight_decay = 0.1f;
    for (int64_t step = 1; step <= 3; ++step) {
        s.step = step;
        ops::adamw_update(kCpu, f32(p, {n}), f32(g, {n}), f32(m, {n}), f32(v, {n}), s,
                          make_tensor(working.data(), DType::bf16, DeviceKind::cpu, {n}));
        ops::adamw_update(kCpu, f32(p2, {n}), f32(g, {n}), f32(m2, {n}), f32(v2, {n}), s);
    }
    EXPECT_TRUE(test::bitwise_equal(p, p2)) << "the masters do not depend on the working copy";
    EXPECT_TRUE(test::bitwise_equal(m, m2));
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(working[i], f32_to_bf16(p[i])) << i;
}

// ---- the dtype table -------------------------------------------------------------------

TEST(CpuOpsBf16, RejectsDtypesOutsideTheRecipe) {
    const int64_t N = 3, C = 4;
    Both x = random_bf16(N * C, 43), w = random_bf16(C * C, 44), out = poisoned_bf16(N * C);
    Vec w32(C * C), rstd(N), out32(N * C);
    Bits rstd16(N);
    // bf16 activations against fp32 weights: the recipe keeps the two in step.
    EXPECT_THROW(ops::matmul_forward(kCpu, out.bf16({N, C}), x.bf16({N, C}), f32(w32, {C, C}), Tensor{}),
                 std::invalid_argument);
    // Statistics are fp32 always.
    EXPECT_THROW(ops::rmsnorm_forward(kCpu, out.bf16({N, C}),
                                      make_tensor(rstd16.data(), DType::bf16, DeviceKind::cpu, {N}), x.bf16({N, C}),
                                      w.bf16({C}), kEps),
                 std::invalid_argument);
    // Parameter gradients are fp32 always.
    EXPECT_THROW(ops::matmul_backward(kCpu, Tensor{}, w.bf16({C, C}), Tensor{}, x.bf16({N, C}), x.bf16({N, C}),
                                      w.bf16({C, C})),
                 std::invalid_argument);
    // An elementwise op does not mix dtypes.
    EXPECT_THROW(ops::add(kCpu, out.bf16({N, C}), x.bf16({N, C}), f32(out32, {N, C})), std::invalid_argument);
    // The error names the op and the tensor.
    try {
        ops::matmul_forward(kCpu, out.bf16({N, C}), x.bf16({N, C}), f32(w32, {C, C}), Tensor{});
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("matmul_forward: weight must be bf16"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace rpt
