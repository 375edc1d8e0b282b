// The demo's statistics against values worked out by hand or by the textbook formulas.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/rng.h"
#include "rl/statistics.h"

namespace rpt {
namespace {

std::vector<double> bernoulli(size_t n, double p, uint64_t seed) {
    std::vector<double> x(n);
    for (size_t i = 0; i < n; ++i) x[i] = double(hash_keys(seed, i) % 1000000) < p * 1e6;
    return x;
}

TEST(Statistics, WilsonIntervalMatchesTheFormula) {
    std::vector<double> x(100, 0.0);
    for (int i = 0; i < 50; ++i) x[size_t(i)] = 1;
    const Estimate e = estimate_mean(x);
    EXPECT_DOUBLE_EQ(e.mean, 0.5);
    EXPECT_NEAR(e.ci95.low, 0.4038, 1e-4);
    EXPECT_NEAR(e.ci95.high, 0.5962, 1e-4);
    const Estimate none = estimate_mean(std::vector<double>(20, 0.0));
    EXPECT_EQ(none.ci95.low, 0.0);
    EXPECT_NEAR(none.ci95.high, 0.1611, 1e-4);  // not a zero-width interval at 0
    // All 0 or all 1 at every n: the interval holds the mean exactly (n = 63 once gave a
    // lower bound of 3.5e-18 above a mean of 0).
    for (size_t n = 1; n <= 300; ++n) {
        const Estimate zeros = estimate_mean(std::vector<double>(n, 0.0));
        const Estimate ones = estimate_mean(std::vector<double>(n, 1.0));
        EXPECT_EQ(zeros.ci95.low, 0.0) << n;
        EXPECT_EQ(ones.ci95.high, 1.0) << n;
        EXPECT_LE(ones.ci95.low, 1.0) << n;
    }
}

TEST(Statistics, McNemarExactByHand) {
    // 2 * P(X <= 2), X ~ Bin(12, 1/2) = 2 * (1 + 12 + 66) / 4096.
    EXPECT_NEAR(mcnemar_exact_p(10, 2), 2.0 * 79.0 / 4096.0, 1e-12);
    EXPECT_NEAR(mcnemar_exact_p(2, 10), 2.0 * 79.0 / 4096.0, 1e-12);
    EXPECT_DOUBLE_EQ(mcnemar_exact_p(5, 5), 1.0);
    EXPECT_DOUBLE_EQ(mcnemar_exact_p(0, 0), 1.0);
    // Large n: finite, and close to the continuity-corrected normal approximation.
    const double z = (1200.0 - 1000.0 - 1.0) / std::sqrt(2200.0);
    EXPECT_NEAR(mcnemar_exact_p(1200, 1000), std::erfc(z / std::sqrt(2.0)), 0.05 * std::erfc(z / std::sqrt(2.0)));
}

TEST(Statistics, PairedBootstrapCoversTheDifference) {
    const std::vector<double> a = bernoulli(2000, 0.30, 1), b = bernoulli(2000, 0.25, 2);
    const PairedComparison c = compare_paired(a, b, 9);
    double da = 0, db = 0;
    for (size_t i = 0; i < a.size(); ++i) da += a[i], db += b[i];
    EXPECT_NEAR(c.difference, (da - db) / 2000.0, 1e-12);
    EXPECT_LT(c.ci95.low, c.difference);
    EXPECT_GT(c.ci95.high, c.difference);
    // Independent arms: the interval's half width is about 1.96 * sqrt(p1 q1 + p2 q2) / sqrt(n).
    const double half = 1.96 * std::sqrt(0.3 * 0.7 + 0.25 * 0.75) / std::sqrt(2000.0);
    EXPECT_NEAR((c.ci95.high - c.ci95.low) / 2, half, 0.15 * half);
    EXPECT_EQ(c.only_a + c.only_b, [&] {
        int64_t d = 0;
        for (size_t i = 0; i < a.size(); ++i) d += a[i] != b[i];
        return d;
    }());
    EXPECT_EQ(compare_paired(a, b, 9).ci95.low, c.ci95.low);  // deterministic by seed
    const PairedComparison same = compare_paired(a, a, 9);
    EXPECT_EQ(same.difference, 0.0);
    EXPECT_EQ(same.ci95.low, 0.0);
    EXPECT_EQ(same.mcnemar_p, 1.0);
    EXPECT_THROW(compare_paired(a, std::vector<double>(3, 0.0), 1), std::invalid_argument);
}

TEST(Statistics, SpreadOverSeedsUsesStudentsT) {
    const SeedSpread s = spread_over_seeds({1, 2, 3});
    EXPECT_DOUBLE_EQ(s.mean, 2);
    EXPECT_DOUBLE_EQ(s.sd, 1);
    EXPECT_NEAR(s.ci95.high - s.mean, 4.303 / std::sqrt(3.0), 1e-9);
    EXPECT_EQ(s.min, 1);
    EXPECT_EQ(s.max, 3);
    const SeedSpread one = spread_over_seeds({0.4});
    EXPECT_EQ(one.sd, 0);
    EXPECT_EQ(one.ci95.low, 0.4);
}

}  // namespace
}  // namespace rpt
