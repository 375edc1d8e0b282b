// The scaling study of the paper's Fig. 5: one evaluation per checkpoint of an RPT run,
// each placed at its training compute (rl/training_compute.h), and per entropy split a
// power-law fit P(C) = P* - A / C^alpha of accuracy against compute
// (rl/power_law_fit.h) with its R². Checkpoints at zero compute (the base model) are
// listed but not fitted: C^-alpha has no value there.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rl/evaluate.h"
#include "rl/power_law_fit.h"
#include "rl/training_compute.h"

namespace rpt {

struct ScalingPoint {
    CheckpointCompute compute;
    std::vector<SplitResult> splits;  // easy, medium, hard
};

// One split's fit of one metric ("reasoning": next-token reasoning accuracy, the
// figure's; "standard": argmax accuracy).
struct ScalingFit {
    std::string split;
    std::string metric;
    PowerLawFit fit;
};

struct ScalingStudy {
    std::vector<ScalingPoint> points;  // by compute, then steps
    std::vector<ScalingFit> fits;      // per split: reasoning (when evaluated), then standard
    bool reasoning = true;             // reasoning mode was evaluated
};

// Throws std::invalid_argument naming --checkpoints unless at least 3 of the computes
// are positive and at least 2 of those distinct: checked before anything is evaluated.
void check_scaling_computes(const std::vector<CheckpointCompute>& computes);

ScalingStudy fit_scaling_study(std::vector<ScalingPoint> points, bool reasoning);

nlohmann::json scaling_study_json(const ScalingStudy& study);
// The table (one line per checkpoint: steps, FLOPs, accuracy per split) and the fits.
std::string describe_scaling_study(const ScalingStudy& study);

}  // namespace rpt
