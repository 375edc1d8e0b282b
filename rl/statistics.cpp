// statistics: Wilson intervals, the paired bootstrap, McNemar's exact test and the
// spread over seeds (see statistics.h).
#include "rl/statistics.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "kernels/rng.h"

namespace rpt {
namespace {

constexpr double kZ95 = 1.959963984540054;

nlohmann::json interval_json(Interval i) { return nlohmann::json::array({i.low, i.high}); }

double mean_of(const std::vector<double>& x) {
    double s = 0;
    for (double v : x) s += v;
    return x.empty() ? 0 : s / double(x.size());
}

// Two-sided 97.5% quantile of Student's t for small degrees of freedom (exact to the
// digits shown), the normal one beyond.
double t975(int dof) {
    constexpr double kTable[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                 2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086};
    if (dof >= 1 && dof <= 20) return kTable[dof - 1];
    return kZ95;
}

}  // namespace

nlohmann::json Estimate::to_json() const { return {{"mean", mean}, {"ci95", interval_json(ci95)}, {"n", n}}; }

Estimate estimate_mean(const std::vector<double>& outcomes) {
    Estimate e;
    e.n = int64_t(outcomes.size());
    if (e.n == 0) return e;
    e.mean = mean_of(outcomes);
    // Wilson score interval: well behaved near 0 and 1, where the normal one is not.
    const double n = double(e.n), z2 = kZ95 * kZ95;
    const double centre = (e.mean + z2 / (2 * n)) / (1 + z2 / n);
    const double half = kZ95 * std::sqrt(e.mean * (1 - e.mean) / n + z2 / (4 * n * n)) / (1 + z2 / n);
    // The interval holds the mean in exact arithmetic; in floating point centre - half can
    // land a few ulps above 0 when every outcome is 0 (and likewise at 1).
    e.ci95 = {std::min(e.mean, std::max(0.0, centre - half)), std::max(e.mean, std::min(1.0, centre + half))};
    return e;
}

nlohmann::json PairedComparison::to_json() const {
    return {{"difference", difference}, {"ci95", interval_json(ci95)}, {"only_a", only_a},
            {"only_b", only_b},         {"mcnemar_p", mcnemar_p},     {"n", n}};
}

double mcnemar_exact_p(int64_t only_a, int64_t only_b) {
    const int64_t n = only_a + only_b;
    if (n == 0) return 1.0;
    const int64_t k = std::min(only_a, only_b);
    // 2 * P(X <= k) for X ~ Binomial(n, 1/2), summed in log space (n can be thousands).
    double tail = 0;
    const double log_half_n = double(n) * std::log(0.5);
    for (int64_t i = 0; i <= k; ++i)
        tail += std::exp(std::lgamma(double(n) + 1) - std::lgamma(double(i) + 1) - std::lgamma(double(n - i) + 1) +
                         log_half_n);
    return std::min(1.0, 2 * tail);
}

PairedComparison compare_paired(const std::vector<double>& a, const std::vector<double>& b, uint64_t seed,
                                int resamples) {
    if (a.size() != b.size()) throw std::invalid_argument("a paired comparison needs outcomes at the same positions");
    PairedComparison c;
    c.n = int64_t(a.size());
    if (c.n == 0) return c;
    std::vector<double> diff(a.size());
    for (size_t i = 0; i < a.size(); ++i) {
        diff[i] = a[i] - b[i];
        c.only_a += a[i] > 0 && !(b[i] > 0);
        c.only_b += b[i] > 0 && !(a[i] > 0);
    }
    c.difference = mean_of(diff);
    c.mcnemar_p = mcnemar_exact_p(c.only_a, c.only_b);
    std::vector<double> means(size_t(std::max(1, resamples)));
    for (size_t r = 0; r < means.size(); ++r) {
        double s = 0;
        for (size_t i = 0; i < diff.size(); ++i) s += diff[hash_keys(seed, r, i) % diff.size()];
        means[r] = s / double(diff.size());
    }
    std::sort(means.begin(), means.end());
    const auto at = [&](double q) { return means[std::min(means.size() - 1, size_t(q * double(means.size())))]; };
    c.ci95 = {at(0.025), at(0.975)};
    return c;
}

nlohmann::json SeedSpread::to_json() const {
    return {{"mean", mean}, {"sd", sd}, {"min", min}, {"max", max}, {"ci95", interval_json(ci95)}, {"seeds", seeds}};
}

SeedSpread spread_over_seeds(const std::vector<double>& values) {
    SeedSpread s;
    s.seeds = int(values.size());
    if (values.empty()) return s;
    s.mean = mean_of(values);
    s.min = *std::min_element(values.begin(), values.end());
    s.max = *std::max_element(values.begin(), values.end());
    double ss = 0;
    for (double v : values) ss += (v - s.mean) * (v - s.mean);
    s.sd = values.size() > 1 ? std::sqrt(ss / double(values.size() - 1)) : 0;
    const double half = values.size() > 1 ? t975(int(values.size()) - 1) * s.sd / std::sqrt(double(values.size())) : 0;
    s.ci95 = {s.mean - half, s.mean + half};
    return s;
}

}  // namespace rpt
