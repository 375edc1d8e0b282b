// The paper's Table 8: the same positions evaluated under each prompt template, with
// n sampled rollouts per position, reported per template and entropy split as
// Random@1 (the mean accuracy of single samples) and the unbiased Pass@k.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rl/evaluate.h"

namespace rpt {

// "all" -> v0 .. v6; otherwise a comma-separated list of template names or JSON files
// (each named once). Throws std::invalid_argument naming --template-sweep when empty.
std::vector<std::string> template_sweep_names(const std::string& list);

struct TemplateSweepRow {
    std::string name;
    EvalReport report;
};

struct TemplateSweep {
    std::vector<TemplateSweepRow> rows;  // in the order asked
    int samples = 0;
    int pass_k = 0;
};

// Every template is loaded and bound to the tokenizer before the first evaluation, so a
// template that cannot be used fails at once, naming it. `options` must sample
// (check_eval_samples); its reasoning mode is on.
TemplateSweep sweep_templates(Transformer& model, const Tokenizer& tokenizer, const std::vector<std::string>& names,
                              const std::vector<std::vector<int32_t>>& docs,
                              const std::vector<ScoredPosition>& positions, const EntropySplits& splits,
                              EvalOptions options);

// {"samples", "pass_k", "order": [names as asked], "templates": {name: {"mode",
// "splits": {split: {random_at_1, pass_at_k, format, standard, positions}}}}}.
nlohmann::json template_sweep_json(const TemplateSweep& sweep);
// One line per template: Random@1 and Pass@k of each split, in %.
std::string describe_template_sweep(const TemplateSweep& sweep);

}  // namespace rpt
