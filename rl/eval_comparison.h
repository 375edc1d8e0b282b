// eval_comparison: two evaluations on the same positions compared split by split, with
// intervals and a paired test (rl/statistics.h). The demo compares RPT's reasoning mode
// with NTP-continued's standard mode this way, and `rpt eval --compare` any two
// checkpoints.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rl/evaluate.h"
#include "rl/statistics.h"

namespace rpt {

enum class EvalMode { standard, reasoning };
const char* eval_mode_name(EvalMode mode);

// One side of a comparison: an evaluation and which of its two modes.
struct EvalSide {
    std::string name;  // "RPT", a checkpoint directory
    const EvalReport* report = nullptr;
    EvalMode mode = EvalMode::reasoning;
};

// Per position of the split above `threshold`: the argmax hit (0/1) or the reward.
std::vector<double> split_outcomes(const EvalReport& report, const std::vector<ScoredPosition>& positions,
                                   float threshold, EvalMode mode);

// One split of one evaluation as JSON: both modes' accuracies with their Wilson
// intervals, the format rate, the position count and the trace metrics.
nlohmann::json split_json(const EvalReport& report, const std::vector<ScoredPosition>& positions,
                          const SplitResult& split);

struct SplitComparison {
    std::string split;
    Estimate a, b;             // each side's accuracy with its Wilson interval
    PairedComparison a_minus_b;
};

// a vs b on every split of the reports (which must have evaluated `positions`).
std::vector<SplitComparison> compare_evaluations(const EvalSide& a, const EvalSide& b,
                                                 const std::vector<ScoredPosition>& positions, uint64_t seed);

nlohmann::json comparison_json(const EvalSide& a, const EvalSide& b, const std::vector<SplitComparison>& splits);

// Per split: "a 23.8 [21.9, 25.8] vs b 19.5 [..]: +4.3 points [2.1, 6.4], McNemar p = 0.0004".
std::string describe_comparison(const EvalSide& a, const EvalSide& b, const std::vector<SplitComparison>& splits);

}  // namespace rpt
