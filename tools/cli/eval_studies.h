// The studies `rpt eval` runs beyond one evaluation: the template sweep of the paper's
// Table 8 (--template-sweep) and the scaling study of its Fig. 5 (--checkpoints), each
// printing its table and writing its JSON (--json).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "rl/evaluate.h"
#include "rl/positions.h"
#include "tools/cli/model_setup.h"

namespace rpt::cli {

// What both studies evaluate: the corpus, its positions, the splits and the options.
struct EvalStudyInputs {
    const std::vector<std::string>& texts;
    const EntropySplits& splits;
    const EvalOptions& eval;
    std::string template_name;  // of the scaling study's evaluations
    std::string json_out;       // empty: no JSON
};

// The positions a study evaluates, chosen from the corpus as tokenised by `tokenizer`.
using PositionChooser =
    std::function<std::vector<ScoredPosition>(const std::vector<std::vector<int32_t>>& docs)>;

// --template-sweep LIST|all on the checkpoint of `model`.
void run_template_sweep(const EvalStudyInputs& in, const ModelFlags& model, const std::string& list,
                        const PositionChooser& choose);

// --checkpoints: every checkpoint on the same positions (chosen under the first one's
// tokenizer, which all must share), placed at its RPT training FLOPs, then the fits.
// The compute of every checkpoint is read, and the fit's needs checked, before the first
// evaluation.
void run_scaling_study(const EvalStudyInputs& in, const ModelFlags& model, const std::vector<std::string>& checkpoints,
                       const PositionChooser& choose);

}  // namespace rpt::cli
