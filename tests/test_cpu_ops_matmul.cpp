// CPU matmul (kernels/cpu/matmul.cpp) through the op API: forward and backward against a
// plain float64 reference, gradients against finite differences, accumulate semantics,
// and bit-identical results for 1 and 2 threads.
#include <gtest/gtest.h>
#include <omp.h>

#include <vector>

#include "kernels/ops.h"
#include "kernels/ref/matmul.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

using test::rel_error;
using Vec = std::vector<float>;
using DVec = std::vector<double>;

constexpr double kTol = 1e-5;

struct Shape {
    int64_t N, IC, OC;
};
// Odd sizes; the forward's direct path (N < 320 with IC a multiple of 16: row and output
// tails, one row, 250 rows at depth 512) and its dot-product fallback (N < 16 otherwise);
// the packed GEMM with depth beyond one packed block (IC, N > 512), more output columns
// than one packed B block (OC > 4096), and a width the direct path would take (N = 400).
const Shape kShapes[] = {{7, 13, 5},     {1, 64, 33},  {16, 96, 33},  {33, 64, 40},  {100, 128, 70},
                         {250, 512, 19}, {400, 64, 50}, {300, 600, 97}, {20, 8, 4200}, {601, 37, 29}};

DVec ref_forward(const DVec& in, const DVec& w, const DVec* bias, int64_t N, int64_t IC, int64_t OC) {
    return ref::matmul_forward(in, w, bias, N, IC, OC);
}

OpContext cpu() { return OpContext{}; }

TEST(CpuOpsMatmul, ForwardMatchesFloat64) {
    for (const Shape& s : kShapes) {
        for (bool with_bias : {true, false}) {
            Vec in = test::random_nonzero(s.N * s.IC, 1), w = test::random_nonzero(s.OC * s.IC, 2),
                b = test::random_nonzero(s.OC, 3), out = test::poisoned(s.N * s.OC);
            ops::matmul_forward(cpu(), cpu_f32(out.data(), {s.N, s.OC}), cpu_f32(in.data(), {s.N, s.IC}),
                                cpu_f32(w.data(), {s.OC, s.IC}), with_bias ? cpu_f32(b.data(), {s.OC}) : Tensor{});
            const DVec db = test::to_double(b);
            const DVec ref = ref_forward(test::to_double(in), test::to_double(w), with_bias ? &db : nullptr, s.N, s.IC, s.OC);
            EXPECT_LT(rel_error(out, ref), kTol) << "N=" << s.N << " IC=" << s.IC << " OC=" << s.OC << " bias=" << with_bias;
        }
    }
}

TEST(CpuOpsMatmul, BackwardAccumulatesAndMatchesFloat64) {
    for (const Shape& s : kShapes) {
        const Vec in = test::random_nonzero(s.N * s.IC, 4), w = test::random_nonzero(s.OC * s.IC, 5),
                  dout = test::random_nonzero(s.N * s.OC, 6);
        const Vec din0 = test::random_nonzero(s.N * s.IC, 7), dw0 = test::random_nonzero(s.OC * s.IC, 8),
                  db0 = test::random_nonzero(s.OC, 9);
        Vec din = din0, dw = dw0, db = db0;
        ops::matmul_backward(cpu(), cpu_f32(din.data(), {s.N, s.IC}), cpu_f32(dw.data(), {s.OC, s.IC}),
                             cpu_f32(db.data(), {s.OC}), cpu_f32(const_cast<float*>(dout.data()), {s.N, s.OC}),
                             cpu_f32(const_cast<float*>(in.data()), {s.N, s.IC}),
                             cpu_f32(const_cast<float*>(w.data()), {s.OC, s.IC}));
        DVec rdin(din0.begin(), din0.end()), rdw(dw0.begin(), dw0.end()), rdb(db0.begin(), db0.end());
        for (int64_t n = 0; n < s.N; ++n)
            for (int64_t o = 0; o < s.OC; ++o) {
                const double g = dout[n * s.OC + o];
                rdb[o] += g;
                for (int64_t i = 0; i < s.IC; ++i) {
                    rdin[n * s.IC + i] += g * w[o * s.IC + i];
                    rdw[o * s.IC + i] += g * in[n * s.IC + i];
                }
            }
        const std::string where = "N=" + std::to_string(s.N) + " IC=" + std::to_string(s.IC) + " OC=" + std::to_string(s.OC);
        EXPECT_LT(rel_error(din, rdin), kTol) << where;
        EXPECT_LT(rel_error(dw, rdw), kTol) << where;
        EXPECT_LT(rel_error(db, rdb), kTol) << where;

        // Optional din and dbias: dweight alone still accumulates, the others stay untouched.
        Vec dw_only = dw0;
        ops::matmul_backward(cpu(), Tensor{}, cpu_f32(dw_only.data(), {s.OC, s.IC}), Tensor{},
                             cpu_f32(const_cast<float*>(dout.data()), {s.N, s.OC}),
                             cpu_f32(const_cast<float*>(in.data()), {s.N, s.IC}),
                             cpu_f32(const_cast<float*>(w.data()), {s.OC, s.IC}));
        EXPECT_TRUE(test::bitwise_equal(dw_only, dw)) << where;
    }
}

TEST(CpuOpsMatmul, GradientsMatchFiniteDifferences) {
    const int64_t N = 5, IC = 7, OC = 6;
    const Vec in = test::random_nonzero(N * IC, 10), w = test::random_nonzero(OC * IC, 11), b = test::random_nonzero(OC, 12),
              probe = test::random_nonzero(N * OC, 13);  // L = sum probe * out
    Vec din(N * IC, 0.0f), dw(OC * IC, 0.0f), db(OC, 0.0f);
    ops::matmul_backward(cpu(), cpu_f32(din.data(), {N, IC}), cpu_f32(dw.data(), {OC, IC}), cpu_f32(db.data(), {OC}),
                         cpu_f32(const_cast<float*>(probe.data()), {N, OC}), cpu_f32(const_cast<float*>(in.data()), {N, IC}),
                         cpu_f32(const_cast<float*>(w.data()), {OC, IC}));
    const DVec din64 = test::to_double(in), w64 = test::to_double(w), b64 = test::to_double(b);
    const auto loss = [&](const DVec& x, const DVec& ww, const DVec& bb) {
        return test::dot(probe, ref_forward(x, ww, &bb, N, IC, OC));
    };
    EXPECT_LT(rel_error(din, test::numeric_grad(din64, [&](const DVec& x) { return loss(x, w64, b64); })), 1e-6);
    EXPECT_LT(rel_error(dw, test::numeric_grad(w64, [&](const DVec& x) { return loss(din64, x, b64); })), 1e-6);
    EXPECT_LT(rel_error(db, test::numeric_grad(b64, [&](const DVec& x) { return loss(din64, w64, x); })), 1e-6);
}

TEST(CpuOpsMatmul, DeterministicAcrossThreadCounts) {
    const int64_t N = 130, IC = 520, OC = 77;
    const Vec in = test::random_nonzero(N * IC, 14), w = test::random_nonzero(OC * IC, 15), b = test::random_nonzero(OC, 16),
              dout = test::random_nonzero(N * OC, 17);
    const auto run = [&](int threads) {
        omp_set_num_threads(threads);
        Vec out(N * OC), din(N * IC, 0.5f), dw(OC * IC, 0.25f), db(OC, 0.0f);
        ops::matmul_forward(cpu(), cpu_f32(out.data(), {N, OC}), cpu_f32(const_cast<float*>(in.data()), {N, IC}),
                            cpu_f32(const_cast<float*>(w.data()), {OC, IC}), cpu_f32(const_cast<float*>(b.data()), {OC}));
        ops::matmul_backward(cpu(), cpu_f32(din.data(), {N, IC}), cpu_f32(dw.data(), {OC, IC}), cpu_f32(db.data(), {OC}),
                             cpu_f32(const_cast<float*>(dout.data()), {N, OC}),
                             cpu_f32(const_cast<float*>(in.data()), {N, IC}), cpu_f32(const_cast<float*>(w.data()), {OC, IC}));
        Vec all = out;
        all.insert(all.end(), din.begin(), din.end());
        all.insert(all.end(), dw.begin(), dw.end());
        all.insert(all.end(), db.begin(), db.end());
        return all;
    };
    const int saved = omp_get_max_threads();
    const Vec one = run(1), two = run(2), three = run(3);
    omp_set_num_threads(saved);
    EXPECT_TRUE(test::bitwise_equal(one, two));
    EXPECT_TRUE(test::bitwise_equal(one, three));
}

}  // namespace
}  // namespace rpt
