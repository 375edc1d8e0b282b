// statistics: the intervals and tests the demo and `rpt eval --compare` report, so a
// difference between two checkpoints can be told from noise (issue 14).
//
// Accuracies are means of per-position outcomes in [0, 1] (0/1 for the argmax and the
// prefix reward). Two checkpoints are compared on the same positions, so the paired
// difference is what is tested: its bootstrap interval resamples positions, and
// McNemar's exact test counts the positions where exactly one of the two is right.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

namespace rpt {

struct Interval {
    double low = 0, high = 0;
};

// The mean of outcomes in [0, 1] with its 95% Wilson score interval (n = 0: all zero).
struct Estimate {
    double mean = 0;
    Interval ci95;
    int64_t n = 0;
    nlohmann::json to_json() const;
};
Estimate estimate_mean(const std::vector<double>& outcomes);

// a - b on the same positions (a[i] and b[i] are one position's outcomes).
struct PairedComparison {
    double difference = 0;       // mean(a) - mean(b)
    Interval ci95;               // paired percentile bootstrap
    int64_t only_a = 0;          // positions a gets right and b does not (outcome > 0)
    int64_t only_b = 0;
    double mcnemar_p = 1;        // exact two-sided binomial test on only_a vs only_b
    int64_t n = 0;
    nlohmann::json to_json() const;
};
// `resamples` bootstrap draws keyed by `seed` (deterministic).
PairedComparison compare_paired(const std::vector<double>& a, const std::vector<double>& b, uint64_t seed,
                                int resamples = 10000);

// Exact two-sided McNemar p-value for the discordant counts.
double mcnemar_exact_p(int64_t only_a, int64_t only_b);

// One quantity over several seeds: mean, sample standard deviation, range, and the 95%
// t interval of the mean (zero width for one seed).
struct SeedSpread {
    double mean = 0, sd = 0, min = 0, max = 0;
    Interval ci95;
    int seeds = 0;
    nlohmann::json to_json() const;
};
SeedSpread spread_over_seeds(const std::vector<double>& values);

}  // namespace rpt
