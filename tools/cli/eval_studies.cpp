#include "tools/cli/eval_studies.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include <fmt/format.h>

#include "model/checkpoint.h"
#include "model/file_io.h"
#include "rl/scaling_study.h"
#include "rl/template_sweep.h"
#include "rl/token_data.h"

namespace rpt::cli {
namespace {

void write_json(const std::string& path, const nlohmann::json& j) {
    if (!path.empty()) write_file_atomic(path, j.dump(2) + "\n");
}

// Each checkpoint once, with its config readable, and its compute.
std::vector<CheckpointCompute> read_computes(const std::vector<std::string>& checkpoints) {
    std::vector<CheckpointCompute> computes;
    for (size_t i = 0; i < checkpoints.size(); ++i) {
        if (std::find(checkpoints.begin(), checkpoints.begin() + int64_t(i), checkpoints[i]) !=
            checkpoints.begin() + int64_t(i))
            throw std::invalid_argument(fmt::format("--checkpoints: {} is listed twice", checkpoints[i]));
        (void)read_checkpoint_config(checkpoints[i]);
        computes.push_back(read_checkpoint_compute(checkpoints[i]));
    }
    check_scaling_computes(computes);
    return computes;
}

}  // namespace

void run_template_sweep(const EvalStudyInputs& in, const ModelFlags& model, const std::string& list,
                        const PositionChooser& choose) {
    const std::vector<std::string> names = template_sweep_names(list);
    check_eval_samples(in.eval);
    ModelSetup setup = setup_model(model, in.texts, false);
    const auto docs = tokenize_documents(in.texts, setup.tokenizer);
    const std::vector<ScoredPosition> positions = choose(docs);
    const TemplateSweep sweep =
        sweep_templates(*setup.model, setup.tokenizer, names, docs, positions, in.splits, in.eval);
    std::printf("%s", describe_template_sweep(sweep).c_str());
    nlohmann::json j = template_sweep_json(sweep);
    j["model"] = model.model_dir;
    j["positions"] = positions.size();
    write_json(in.json_out, j);
}

void run_scaling_study(const EvalStudyInputs& in, const ModelFlags& model, const std::vector<std::string>& checkpoints,
                       const PositionChooser& choose) {
    // Phase 1: every checkpoint's compute and the fit's needs, before any evaluation.
    const std::vector<CheckpointCompute> computes = read_computes(checkpoints);
    const Tokenizer tokenizer = read_checkpoint_tokenizer(checkpoints.front());
    const auto docs = tokenize_documents(in.texts, tokenizer);
    const std::vector<ScoredPosition> positions = choose(docs);
    const PromptTemplate format = load_template(in.template_name);
    // Phase 2: each checkpoint on the same positions.
    std::vector<ScalingPoint> points;
    for (const CheckpointCompute& c : computes) {
        ModelFlags flags = model;
        flags.model_dir = c.dir;
        ModelSetup setup = setup_model(flags, in.texts, false);
        if (setup.tokenizer.to_json() != tokenizer.to_json())
            throw std::invalid_argument(fmt::format("--checkpoints: {} has another tokenizer than {}; positions are "
                                                    "only comparable under one tokenizer",
                                                    c.dir, checkpoints.front()));
        const EvalReport report =
            evaluate_positions(*setup.model, setup.tokenizer, format, docs, positions, in.splits, in.eval);
        std::fprintf(stderr, "evaluated %s (%lld RPT steps, %.3e FLOPs)\n", c.dir.c_str(), (long long)c.rpt_steps,
                     c.rpt_flops);
        points.push_back({c, report.splits});
    }
    // Phase 3: the fits, the table and the JSON.
    const ScalingStudy study = fit_scaling_study(points, in.eval.reasoning);
    std::printf("%s", describe_scaling_study(study).c_str());
    nlohmann::json j = scaling_study_json(study);
    j["positions"] = positions.size();
    j["template"] = format.name;
    write_json(in.json_out, j);
}

}  // namespace rpt::cli
