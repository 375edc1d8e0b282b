#include "rl/power_law_fit.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace rpt {
namespace {

constexpr int kAlphaGrid = 400;          // log-spaced alphas scanned before refining
constexpr int kGoldenIterations = 200;   // golden-section steps on log(alpha)
const double kInverseGolden = (std::sqrt(5.0) - 1.0) / 2.0;

// The points with compute scaled by the smallest one (x = (C / C0)^-alpha stays in
// (0, 1], whatever the FLOP scale).
struct Scaled {
    std::vector<double> log_c;  // log(C / C0)
    std::vector<double> y;
    double c0 = 1;
    double mean_y = 0;
    double sst = 0;
};

// For one alpha: P* and A' (A in units of C0) in closed form, and the squared error.
struct LinearSolve {
    double p_star = 0, a_scaled = 0, sse = 0;
};


Scaled scale(const std::vector<PowerLawPoint>& points) {
    Scaled s;
    s.c0 = std::min_element(points.begin(), points.end(), [](const auto& a, const auto& b) {
               return a.compute < b.compute;
           })->compute;
    for (const PowerLawPoint& p : points) {
        s.log_c.push_back(std::log(p.compute / s.c0));
        s.y.push_back(p.accuracy);
        s.mean_y += p.accuracy;
    }
    s.mean_y /= double(points.size());
    for (double y : s.y) s.sst += (y - s.mean_y) * (y - s.mean_y);
    return s;
}

// y = P* - A' x with x = (C / C0)^-alpha: ordinary least squares in (P*, A').
LinearSolve solve_at(const Scaled& s, double alpha) {
    const size_t n = s.y.size();
    std::vector<double> x(n);
    double mean_x = 0;
    for (size_t i = 0; i < n; ++i) mean_x += x[i] = std::exp(-alpha * s.log_c[i]);
    mean_x /= double(n);
    double sxx = 0, sxy = 0;
    for (size_t i = 0; i < n; ++i) {
        sxx += (x[i] - mean_x) * (x[i] - mean_x);
        sxy += (x[i] - mean_x) * (s.y[i] - s.mean_y);
    }
    LinearSolve r;
    const double slope = sxx > 0 ? sxy / sxx : 0.0;
    r.a_scaled = -slope;
    r.p_star = s.mean_y - slope * mean_x;
    for (size_t i = 0; i < n; ++i) {
        const double e = s.y[i] - (r.p_star + slope * x[i]);
        r.sse += e * e;
    }
    return r;
}

// The log(alpha) of least error: the best point of a log grid, then golden section
// between its neighbours.
double best_log_alpha(const Scaled& s) {
    const double lo = std::log(kMinAlpha), hi = std::log(kMaxAlpha);
    const double step = (hi - lo) / (kAlphaGrid - 1);
    int best = 0;
    double best_sse = INFINITY;
    for (int i = 0; i < kAlphaGrid; ++i) {
        const double sse = solve_at(s, std::exp(lo + step * i)).sse;
        if (sse < best_sse) best_sse = sse, best = i;
    }
    double a = lo + step * std::max(0, best - 1), b = lo + step * std::min(kAlphaGrid - 1, best + 1);
    double c = b - kInverseGolden * (b - a), d = a + kInverseGolden * (b - a);
    double fc = solve_at(s, std::exp(c)).sse, fd = solve_at(s, std::exp(d)).sse;
    for (int it = 0; it < kGoldenIterations; ++it) {
        if (fc < fd) {
            b = d, d = c, fd = fc;
            c = b - kInverseGolden * (b - a);
            fc = solve_at(s, std::exp(c)).sse;
        } else {
            a = c, c = d, fc = fd;
            d = a + kInverseGolden * (b - a);
            fd = solve_at(s, std::exp(d)).sse;
        }
    }
    const double refined = 0.5 * (a + b);
    // The grid point itself may beat the refined one at a range end.
    return solve_at(s, std::exp(refined)).sse <= best_sse ? refined : lo + step * best;
}

}  // namespace

void check_power_law_points(const std::vector<PowerLawPoint>& points) {
    if (points.size() < 3)
        throw std::invalid_argument(fmt::format("power-law fit: needs at least 3 points with compute > 0, got {}",
                                                points.size()));
    for (const PowerLawPoint& p : points) {
        if (!std::isfinite(p.compute) || p.compute <= 0)
            throw std::invalid_argument(fmt::format("power-law fit: compute {} is not a positive FLOP count",
                                                    p.compute));
        if (!std::isfinite(p.accuracy))
            throw std::invalid_argument(fmt::format("power-law fit: accuracy {} at compute {} is not finite",
                                                    p.accuracy, p.compute));
    }
    const auto [lo, hi] = std::minmax_element(points.begin(), points.end(), [](const auto& a, const auto& b) {
        return a.compute < b.compute;
    });
    if (lo->compute == hi->compute)
        throw std::invalid_argument(fmt::format("power-law fit: every point has compute {}; needs at least 2 "
                                                "distinct computes", lo->compute));
}

PowerLawFit fit_power_law(const std::vector<PowerLawPoint>& points) {
    check_power_law_points(points);
    const Scaled s = scale(points);
    PowerLawFit fit;
    fit.points = int(points.size());
    const bool flat = std::all_of(points.begin(), points.end(),
                                  [&](const PowerLawPoint& p) { return p.accuracy == points[0].accuracy; });
    if (flat) {
        fit.flat = true;
        fit.p_star = points[0].accuracy;
        fit.r_squared = 1;
        return fit;
    }
    const double log_alpha = best_log_alpha(s);
    fit.alpha = std::exp(log_alpha);
    const LinearSolve r = solve_at(s, fit.alpha);
    fit.p_star = r.p_star;
    fit.a = r.a_scaled * std::pow(s.c0, fit.alpha);  // A' (C0)^alpha: A in FLOPs^alpha
    fit.sse = r.sse;
    fit.r_squared = 1.0 - r.sse / s.sst;
    const double tolerance = 1e-6;
    fit.alpha_at_bound = std::abs(log_alpha - std::log(kMinAlpha)) < tolerance ||
                         std::abs(log_alpha - std::log(kMaxAlpha)) < tolerance;
    return fit;
}

double power_law_value(const PowerLawFit& fit, double compute) {
    if (fit.flat) return fit.p_star;
    return fit.p_star - fit.a * std::pow(compute, -fit.alpha);
}

}  // namespace rpt
