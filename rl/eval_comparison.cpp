// eval_comparison: split-by-split paired comparison of two evaluations (see
// eval_comparison.h).
#include "rl/eval_comparison.h"

#include <stdexcept>

#include <fmt/format.h>

namespace rpt {

const char* eval_mode_name(EvalMode mode) { return mode == EvalMode::standard ? "standard" : "reasoning"; }

std::vector<double> split_outcomes(const EvalReport& report, const std::vector<ScoredPosition>& positions,
                                   float threshold, EvalMode mode) {
    if (report.outcomes.size() != positions.size())
        throw std::invalid_argument(fmt::format("an evaluation of {} positions compared on {}", report.outcomes.size(),
                                                positions.size()));
    std::vector<double> out;
    for (size_t i = 0; i < positions.size(); ++i) {
        if (!(positions[i].entropy > threshold)) continue;
        const PositionOutcome& o = report.outcomes[i];
        out.push_back(mode == EvalMode::standard ? double(o.standard_hit) : double(o.reward));
    }
    return out;
}

nlohmann::json split_json(const EvalReport& report, const std::vector<ScoredPosition>& positions,
                          const SplitResult& s) {
    const auto estimate = [&](EvalMode mode) {
        return estimate_mean(split_outcomes(report, positions, s.threshold, mode)).to_json();
    };
    return {{"standard", estimate(EvalMode::standard)}, {"reasoning", estimate(EvalMode::reasoning)},
            {"format", s.format},
            {"pass_k", s.pass_k},
            {"pass_at_k", s.pass_at_k},
            {"positions", s.positions},
            {"trace_tokens", s.trace_tokens},
            {"traces_correct", s.traces_correct},
            {"correct_from_trace", s.correct_from_trace}};
}

std::vector<SplitComparison> compare_evaluations(const EvalSide& a, const EvalSide& b,
                                                 const std::vector<ScoredPosition>& positions, uint64_t seed) {
    std::vector<SplitComparison> out;
    for (const SplitResult& s : a.report->splits) {
        const std::vector<double> xa = split_outcomes(*a.report, positions, s.threshold, a.mode);
        const std::vector<double> xb = split_outcomes(*b.report, positions, s.threshold, b.mode);
        out.push_back({s.name, estimate_mean(xa), estimate_mean(xb), compare_paired(xa, xb, seed)});
    }
    return out;
}

nlohmann::json comparison_json(const EvalSide& a, const EvalSide& b, const std::vector<SplitComparison>& splits) {
    nlohmann::json j = {{"a", {{"name", a.name}, {"mode", eval_mode_name(a.mode)}}},
                        {"b", {{"name", b.name}, {"mode", eval_mode_name(b.mode)}}}};
    for (const SplitComparison& s : splits)
        j["splits"][s.split] = {{"a", s.a.to_json()}, {"b", s.b.to_json()}, {"a_minus_b", s.a_minus_b.to_json()}};
    return j;
}

std::string describe_comparison(const EvalSide& a, const EvalSide& b, const std::vector<SplitComparison>& splits) {
    std::string out = fmt::format("{} ({}) vs {} ({}), paired on the same positions:\n", a.name, eval_mode_name(a.mode),
                                  b.name, eval_mode_name(b.mode));
    for (const SplitComparison& s : splits) {
        const PairedComparison& d = s.a_minus_b;
        out += fmt::format("  {:<6} {:5.1f} [{:.1f}, {:.1f}] vs {:5.1f} [{:.1f}, {:.1f}]: {:+.1f} points [{:+.1f}, {:+.1f}], "
                           "McNemar p = {:.2g} ({} positions)\n",
                           s.split, 100 * s.a.mean, 100 * s.a.ci95.low, 100 * s.a.ci95.high, 100 * s.b.mean,
                           100 * s.b.ci95.low, 100 * s.b.ci95.high, 100 * d.difference, 100 * d.ci95.low,
                           100 * d.ci95.high, d.mcnemar_p, d.n);
    }
    return out;
}

}  // namespace rpt
