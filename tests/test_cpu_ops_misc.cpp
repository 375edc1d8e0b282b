// CPU elementwise ops, AdamW and sum_squares through the op API: against float64
// references (AdamW over several steps), and sum_squares bit-identical across threads.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <vector>

#include "kernels/ops.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

using test::rel_error;
using Vec = std::vector<float>;
using DVec = std::vector<double>;

constexpr double kTol = 1e-6;
const OpContext kCpu{};

TEST(CpuOpsElementwise, FillAddAccumulateScaleCopy) {
    const int64_t n = 1001;
    Vec a = test::random_nonzero(n, 1), b = test::random_nonzero(n, 2), out = test::poisoned(n);
    const auto t = [n](Vec& v) { return cpu_f32(v.data(), {n}); };
    ops::add(kCpu, t(out), t(a), t(b));
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(out[i], a[i] + b[i]);
    Vec acc = a;
    ops::accumulate(kCpu, t(acc), t(b));
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(acc[i], a[i] + b[i]);
    Vec sc = a;
    ops::scale(kCpu, t(sc), 0.5f);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(sc[i], a[i] * 0.5f);
    Vec cp = test::poisoned(n);
    ops::copy(kCpu, t(cp), t(a));
    EXPECT_TRUE(test::bitwise_equal(cp, a));
    ops::fill(kCpu, t(cp), 3.0f);
    for (float x : cp) ASSERT_EQ(x, 3.0f);
}

TEST(CpuOpsAdamW, MatchesFormulaOverSeveralSteps) {
    const int64_t n = 257;
    Vec p = test::random_nonzero(n, 3), m(n, 0.0f), v(n, 0.0f);
    DVec rp = test::to_double(p), rm(n, 0.0), rv(n, 0.0);
    ops::AdamWSettings s;
    s.lr = 1e-2f;
    s.weight_decay = 0.1f;
    s.grad_scale = 0.5f;
    for (int64_t step = 1; step <= 5; ++step) {
        s.step = step;
        Vec g = test::random_nonzero(n, 100 + static_cast<uint32_t>(step));
        const auto t = [n](Vec& x) { return cpu_f32(x.data(), {n}); };
        ops::adamw_update(kCpu, t(p), t(g), t(m), t(v), s);
        const double b1 = s.beta1, b2 = s.beta2;
        for (int64_t i = 0; i < n; ++i) {
            const double gi = static_cast<double>(s.grad_scale) * g[i];
            rm[i] = b1 * rm[i] + (1 - b1) * gi;
            rv[i] = b2 * rv[i] + (1 - b2) * gi * gi;
            rp[i] *= 1.0 - static_cast<double>(s.lr) * s.weight_decay;
            const double mhat = rm[i] / (1 - std::pow(b1, step)), vhat = rv[i] / (1 - std::pow(b2, step));
            rp[i] -= s.lr * mhat / (std::sqrt(vhat) + s.eps);
        }
        EXPECT_LT(rel_error(p, rp), kTol) << "step " << step;
        EXPECT_LT(rel_error(m, rm), kTol) << "step " << step;
        EXPECT_LT(rel_error(v, rv), kTol) << "step " << step;
    }
}

TEST(CpuOpsSumSquares, MatchesFloat64AndIsDeterministic) {
    for (int64_t n : {1, 13, 4096, 10007, 300000}) {
        Vec x = test::random_nonzero(n, 7);
        double ref = 0.0;
        for (float e : x) ref += static_cast<double>(e) * e;
        const int saved = omp_get_max_threads();
        omp_set_num_threads(1);
        const double one = ops::sum_squares(kCpu, cpu_f32(x.data(), {n}));
        omp_set_num_threads(2);
        const double two = ops::sum_squares(kCpu, cpu_f32(x.data(), {n}));
        omp_set_num_threads(saved);
        EXPECT_NEAR(one, ref, 1e-12 * ref) << n;
        EXPECT_EQ(one, two) << n;
    }
}

// The loss's device-side sum: float64 within the final f32 rounding, the same bits for
// any thread count, and 0 for nothing.
TEST(CpuOpsSumInto, MatchesFloat64AndIsDeterministic) {
    for (int64_t n : {0, 1, 13, 4096, 10007, 300000}) {
        Vec x = test::random_nonzero(std::max<int64_t>(n, 1), 11);
        double ref = 0.0;
        for (int64_t i = 0; i < n; ++i) ref += x[size_t(i)];
        float one = -1, two = -1;
        const int saved = omp_get_max_threads();
        omp_set_num_threads(1);
        ops::sum_into(kCpu, cpu_f32(&one, {1}), cpu_f32(x.data(), {n}));
        omp_set_num_threads(2);
        ops::sum_into(kCpu, cpu_f32(&two, {1}), cpu_f32(x.data(), {n}));
        omp_set_num_threads(saved);
        EXPECT_NEAR(one, ref, 1e-7 * std::max(1.0, std::fabs(ref))) << n;
        EXPECT_EQ(one, two) << n;
    }
    float out = 0;
    Vec x(4, 1.0f);
    EXPECT_THROW(ops::sum_into(kCpu, cpu_f32(x.data(), {2}), cpu_f32(&out, {1})), std::invalid_argument);
}

}  // namespace
}  // namespace rpt
