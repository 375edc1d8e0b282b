// The scaling-law fit P(C) = P* - A / C^alpha (rl/power_law_fit.h).
#include <cmath>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

#include "rl/power_law_fit.h"

namespace rpt {
namespace {

std::vector<PowerLawPoint> synthetic(double p_star, double a, double alpha, const std::vector<double>& computes) {
    std::vector<PowerLawPoint> points;
    for (double c : computes) points.push_back({c, p_star - a / std::pow(c, alpha)});
    return points;
}

TEST(PowerLawFit, RecoversKnownParametersAtFlopScale) {
    // Accuracy rising from ~0.20 to ~0.45 over four decades of FLOPs, as in Fig. 5.
    const double p_star = 0.5, alpha = 0.3, a = 0.3 * std::pow(1e15, alpha);
    const auto points = synthetic(p_star, a, alpha, {1e15, 3e15, 1e16, 3e16, 1e17, 1e18, 1e19});
    const PowerLawFit fit = fit_power_law(points);
    EXPECT_NEAR(fit.alpha, alpha, 1e-6);
    EXPECT_NEAR(fit.p_star, p_star, 1e-6);
    EXPECT_NEAR(fit.a / a, 1.0, 1e-4);
    EXPECT_NEAR(fit.r_squared, 1.0, 1e-9);
    EXPECT_FALSE(fit.flat);
    EXPECT_FALSE(fit.alpha_at_bound);
    EXPECT_EQ(fit.points, 7);
    for (const PowerLawPoint& p : points) EXPECT_NEAR(power_law_value(fit, p.compute), p.accuracy, 1e-9);
}

TEST(PowerLawFit, NoisyDataFitsWithRSquaredBelowOne) {
    auto points = synthetic(0.8, 2.0, 0.5, {1, 2, 4, 8, 16, 32, 64, 128});
    const double noise[] = {0.01, -0.012, 0.008, -0.004, 0.011, -0.009, 0.003, -0.006};
    for (size_t i = 0; i < points.size(); ++i) points[i].accuracy += noise[i];
    const PowerLawFit fit = fit_power_law(points);
    EXPECT_LT(fit.r_squared, 1.0);
    EXPECT_GT(fit.r_squared, 0.98);
    EXPECT_NEAR(fit.p_star, 0.8, 0.05);
    EXPECT_NEAR(fit.alpha, 0.5, 0.15);
    EXPECT_GT(fit.a, 0);
    // Deterministic: the same points, the same fit to the bit.
    const PowerLawFit again = fit_power_law(points);
    EXPECT_EQ(again.alpha, fit.alpha);
    EXPECT_EQ(again.p_star, fit.p_star);
    EXPECT_EQ(again.a, fit.a);
}

TEST(PowerLawFit, FallingAccuracyGivesNegativeA) {
    const PowerLawFit fit = fit_power_law(synthetic(0.2, -1.0, 0.7, {1, 3, 9, 27, 81}));
    EXPECT_NEAR(fit.a, -1.0, 1e-4);
    EXPECT_NEAR(fit.alpha, 0.7, 1e-5);
}

TEST(PowerLawFit, RSquaredMatchesItsDefinition) {
    const std::vector<PowerLawPoint> points = {{1, 0.1}, {2, 0.3}, {4, 0.32}, {8, 0.5}, {16, 0.45}};
    const PowerLawFit fit = fit_power_law(points);
    double mean = 0, sst = 0, sse = 0;
    for (const auto& p : points) mean += p.accuracy / 5;
    for (const auto& p : points) {
        sst += (p.accuracy - mean) * (p.accuracy - mean);
        const double e = p.accuracy - power_law_value(fit, p.compute);
        sse += e * e;
    }
    EXPECT_NEAR(fit.sse, sse, 1e-12);
    EXPECT_NEAR(fit.r_squared, 1 - sse / sst, 1e-12);
}

TEST(PowerLawFit, FlatDataIsExactWithAZero) {
    const PowerLawFit fit = fit_power_law({{1e12, 0.25}, {1e13, 0.25}, {1e14, 0.25}});
    EXPECT_TRUE(fit.flat);
    EXPECT_EQ(fit.a, 0);
    EXPECT_EQ(fit.p_star, 0.25);
    EXPECT_EQ(fit.r_squared, 1);
    EXPECT_EQ(power_law_value(fit, 5e13), 0.25);
}

TEST(PowerLawFit, LinearInLogComputePinsAlphaToTheRangeEnd) {
    // y = log C is the alpha -> 0 limit: the fit says so rather than inventing an alpha.
    const PowerLawFit fit = fit_power_law({{1, 0.0}, {10, 0.1}, {100, 0.2}, {1000, 0.3}});
    EXPECT_TRUE(fit.alpha_at_bound);
    EXPECT_NEAR(fit.alpha, kMinAlpha, 1e-9);
    EXPECT_GT(fit.r_squared, 0.999);
}

TEST(PowerLawFit, RefusesDegenerateInput) {
    EXPECT_THROW(fit_power_law({}), std::invalid_argument);
    EXPECT_THROW(fit_power_law({{1, 0.1}, {2, 0.2}}), std::invalid_argument);
    EXPECT_THROW(fit_power_law({{0, 0.1}, {2, 0.2}, {3, 0.3}}), std::invalid_argument);
    EXPECT_THROW(fit_power_law({{-1, 0.1}, {2, 0.2}, {3, 0.3}}), std::invalid_argument);
    EXPECT_THROW(fit_power_law({{INFINITY, 0.1}, {2, 0.2}, {3, 0.3}}), std::invalid_argument);
    EXPECT_THROW(fit_power_law({{1, NAN}, {2, 0.2}, {3, 0.3}}), std::invalid_argument);
    EXPECT_THROW(fit_power_law({{5, 0.1}, {5, 0.2}, {5, 0.3}}), std::invalid_argument);
    try {
        fit_power_law({{1, 0.1}, {2, 0.2}});
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("at least 3"), std::string::npos);
    }
}

}  // namespace
}  // namespace rpt
