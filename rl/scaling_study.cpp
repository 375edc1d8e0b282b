#include "rl/scaling_study.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

namespace rpt {
namespace {

constexpr const char* kFitForm = "P(C) = P* - A / C^alpha";
constexpr const char* kReasoning = "reasoning";
constexpr const char* kStandard = "standard";

double metric_of(const SplitResult& s, const std::string& metric) {
    return metric == kReasoning ? s.reasoning : s.standard;
}

// One split's points at positive compute for one metric.
std::vector<PowerLawPoint> fit_points(const std::vector<ScalingPoint>& points, size_t split,
                                      const std::string& metric) {
    std::vector<PowerLawPoint> out;
    for (const ScalingPoint& p : points)
        if (p.compute.rpt_flops > 0) out.push_back({p.compute.rpt_flops, metric_of(p.splits.at(split), metric)});
    return out;
}

nlohmann::json fit_json(const PowerLawFit& f) {
    return {{"p_star", f.p_star}, {"a", f.a},       {"alpha", f.alpha},
            {"r_squared", f.r_squared}, {"sse", f.sse}, {"points", f.points},
            {"flat", f.flat},     {"alpha_at_bound", f.alpha_at_bound}};
}

}  // namespace

void check_scaling_computes(const std::vector<CheckpointCompute>& computes) {
    std::vector<PowerLawPoint> points;
    for (const CheckpointCompute& c : computes)
        if (c.rpt_flops > 0) points.push_back({c.rpt_flops, 0.0});
    try {
        check_power_law_points(points);
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(fmt::format("--checkpoints: {} of the {} checkpoints have RPT training compute > "
                                                "0 (a base model has none): {}",
                                                points.size(), computes.size(), e.what()));
    }
}

ScalingStudy fit_scaling_study(std::vector<ScalingPoint> points, bool reasoning) {
    std::stable_sort(points.begin(), points.end(), [](const ScalingPoint& a, const ScalingPoint& b) {
        return a.compute.rpt_flops != b.compute.rpt_flops ? a.compute.rpt_flops < b.compute.rpt_flops
                                                          : a.compute.rpt_steps < b.compute.rpt_steps;
    });
    ScalingStudy study;
    study.points = std::move(points);
    study.reasoning = reasoning;
    if (study.points.empty()) return study;
    std::vector<std::string> metrics;
    if (reasoning) metrics.push_back(kReasoning);
    metrics.push_back(kStandard);
    const size_t splits = study.points[0].splits.size();
    for (size_t s = 0; s < splits; ++s)
        for (const std::string& metric : metrics)
            study.fits.push_back(
                {study.points[0].splits[s].name, metric, fit_power_law(fit_points(study.points, s, metric))});
    return study;
}

nlohmann::json scaling_study_json(const ScalingStudy& study) {
    nlohmann::json j = {{"form", kFitForm},
                        {"compute", "RPT training FLOPs (rollouts + GRPO updates, model/flops.h)"},
                        {"checkpoints", nlohmann::json::array()},
                        {"fits", nlohmann::json::object()}};
    for (const ScalingPoint& p : study.points) {
        nlohmann::json c = {{"checkpoint", p.compute.dir}, {"rpt_steps", p.compute.rpt_steps},
                            {"rpt_flops", p.compute.rpt_flops}};
        for (const SplitResult& s : p.splits)
            c["splits"][s.name] = {{kStandard, s.standard}, {kReasoning, s.reasoning}, {"positions", s.positions}};
        j["checkpoints"].push_back(c);
    }
    for (const ScalingFit& f : study.fits) j["fits"][f.split][f.metric] = fit_json(f.fit);
    return j;
}

std::string describe_scaling_study(const ScalingStudy& study) {
    if (study.points.empty()) return "";
    std::string header = fmt::format("{:<24} | {:>6} | {:>10}", "checkpoint", "steps", "FLOPs");
    for (const SplitResult& s : study.points[0].splits) {
        header += fmt::format(" | {:>6} std", s.name);
        if (study.reasoning) header += fmt::format(" | {:>6} rsn", s.name);
    }
    std::string out = header + "\n" + std::string(header.size(), '-') + "\n";
    for (const ScalingPoint& p : study.points) {
        std::string line = fmt::format("{:<24} | {:>6} | {:>10.3e}", p.compute.dir, p.compute.rpt_steps,
                                       p.compute.rpt_flops);
        for (const SplitResult& s : p.splits) {
            line += fmt::format(" | {:>10.1f}", 100.0 * s.standard);
            if (study.reasoning) line += fmt::format(" | {:>10.1f}", 100.0 * s.reasoning);
        }
        out += line + "\n";
    }
    out += fmt::format("fits of {} (C in FLOPs, P in %; checkpoints at compute 0 not fitted):\n", kFitForm);
    for (const ScalingFit& f : study.fits) {
        const PowerLawFit& p = f.fit;
        if (p.flat) {
            out += fmt::format("  {:<6} {:<9}  flat at {:.1f} over {} points (A = 0)\n", f.split, f.metric,
                               100.0 * p.p_star, p.points);
            continue;
        }
        out += fmt::format("  {:<6} {:<9}  P* {:7.1f}  A {:10.3e}  alpha {:.4f}{}  R² {:.4f}  ({} points)\n", f.split,
                           f.metric, 100.0 * p.p_star, 100.0 * p.a, p.alpha,
                           p.alpha_at_bound ? " (at the searched range's end)" : "", p.r_squared, p.points);
    }
    return out;
}

}  // namespace rpt
