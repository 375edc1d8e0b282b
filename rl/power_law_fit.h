// The scaling law of the paper's Fig. 5, fitted by least squares: accuracy at training
// compute C as
//     P(C) = P* - A / C^alpha          (alpha > 0)
// so that accuracy rises towards P* as compute grows when A > 0 (the paper writes
// y = A / C^alpha + P*; its A is this -A). A of either sign is fitted; alpha is searched
// on a fixed log grid in [kMinAlpha, kMaxAlpha] and refined by golden section, with P*
// and A solved in closed form at each alpha, so the fit is deterministic.
#pragma once

#include <vector>

namespace rpt {

struct PowerLawPoint {
    double compute = 0;   // training FLOPs, > 0
    double accuracy = 0;
};

struct PowerLawFit {
    double p_star = 0;
    double a = 0;
    double alpha = 0;
    // 1 - SSE / SST over the points; 1 for flat data (which the fit reproduces exactly).
    double r_squared = 0;
    double sse = 0;
    int points = 0;
    bool flat = false;            // every accuracy equal: A = 0, P* = that value, alpha 0
    bool alpha_at_bound = false;  // the best alpha is an end of the searched range
};

constexpr double kMinAlpha = 1e-3;
constexpr double kMaxAlpha = 4.0;

// Throws std::invalid_argument with one line naming the problem: fewer than 3 points,
// a compute that is not finite and positive, a non-finite accuracy, or fewer than 2
// distinct computes.
void check_power_law_points(const std::vector<PowerLawPoint>& points);
// Checks as above, then fits.
PowerLawFit fit_power_law(const std::vector<PowerLawPoint>& points);

// P(C) under the fit.
double power_law_value(const PowerLawFit& fit, double compute);

}  // namespace rpt
