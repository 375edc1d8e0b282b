// rpt plan: how much memory one rank of a run needs (model/memory_plan.h), without
// allocating it: for a checkpoint / Hugging Face directory, a config.json or a preset,
// under the run's rank count, precision, ZeRO level, recomputation, batch (pretrain),
// contexts x rollouts and lengths (train); with --device-memory, whether it fits and
// which flags would make it fit. pretrain and train print the same lines at start-up.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "model/checkpoint.h"
#include "model/file_io.h"
#include "model/memory_plan.h"
#include "tools/cli/commands.h"
#include "tools/cli/flag_checks.h"
#include "tools/cli/plan_step_time.h"
#include "tools/cli/precision_flag.h"
#include "tools/cli/rpt_flags.h"

namespace rpt::cli {
namespace {

struct PlanFlags {
    std::string model;   // directory or config.json
    std::string preset;  // model_preset_names()
    std::string run = "pretrain";
    std::string device = "cuda";
    std::string precision = kAutoPrecision;
    std::string recompute = "none";
    std::string prompt_layout = "shared";
    int eval_docs = 128;
    float kl_beta = 0;
    double device_memory_gib = 0;
    PlanSettings settings;
    StepTimeFlags step_time;
};

ModelConfig plan_model(const PlanFlags& f) {
    if (!f.preset.empty()) return model_preset(f.preset);
    if (std::filesystem::is_directory(f.model)) return read_checkpoint_config(f.model);
    if (!std::filesystem::exists(f.model)) throw std::invalid_argument(fmt::format("--model {}: not found", f.model));
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(read_file(f.model));
    } catch (const nlohmann::json::exception& e) {
        throw std::invalid_argument(fmt::format("--model {}: invalid JSON: {}", f.model, e.what()));
    }
    return ModelConfig::from_hf_json(j, f.model);
}

PlanSettings resolve(const PlanFlags& f) {
    PlanSettings s = f.settings;
    s.run = f.run == "train" ? PlanRun::rpt : f.run == "inference" ? PlanRun::inference : PlanRun::pretrain;
    s.device = f.device == "cuda" ? DeviceKind::cuda : DeviceKind::cpu;
    s.precision = resolve_precision(f.precision, s.device);
    s.recompute = parse_recompute(f.recompute);
    s.shared_prompt = f.prompt_layout == "shared";
    s.kl_reference = f.kl_beta > 0;
    s.eval_rows = ntp_eval_rows(s.batch, f.eval_docs, s.ranks);
    s.device_memory = size_t(f.device_memory_gib * 1073741824.0);
    if (s.run == PlanRun::pretrain && s.batch % s.ranks != 0)
        throw std::invalid_argument(fmt::format("--batch {} must divide over --ranks {}", s.batch, s.ranks));
    if (s.run == PlanRun::rpt && s.contexts % s.ranks != 0)
        throw std::invalid_argument(fmt::format("--contexts {} must divide over --ranks {}", s.contexts, s.ranks));
    return s;
}

void run_plan(const PlanFlags& f) {
    if (f.model.empty() == f.preset.empty()) throw std::invalid_argument("give one of --model or --preset");
    const ModelConfig config = plan_model(f);
    const PlanSettings s = resolve(f);
    // Computed first, so a flag it rejects stops the command before anything is printed.
    const std::vector<std::string> step_time =
        f.step_time.enabled ? step_time_report(config, s, f.step_time, f.device_memory_gib) : std::vector<std::string>{};
    for (const std::string& line : plan_lines(config, s, plan_memory(config, s))) std::printf("%s\n", line.c_str());
    for (const std::string& line : fitting_suggestions(config, s)) std::printf("%s\n", line.c_str());
    for (const std::string& line : step_time) std::printf("%s\n", line.c_str());
}

}  // namespace

void add_plan_command(CLI::App& app) {
    auto f = std::make_shared<PlanFlags>();
    PlanSettings& s = f->settings;
    CLI::App* cmd = app.add_subcommand("plan", "per-rank memory of a run (parameters, gradients, optimizer, "
                                               "activations, KV cache, ...) and whether it fits");
    cmd->add_option("--model", f->model, "checkpoint / Hugging Face directory, or a config.json");
    cmd->add_option("--preset", f->preset, "tiny, small or qwen2-124m")->check(CLI::IsMember(model_preset_names()));
    cmd->add_option("--run", f->run, "pretrain, train (RPT) or inference")
        ->check(CLI::IsMember({"pretrain", "train", "inference"}));
    cmd->add_option("--device", f->device, "cpu or cuda (default cuda)")->check(CLI::IsMember({"cpu", "cuda"}));
    add_precision_flag(*cmd, f->precision);
    cmd->add_option("--ranks", s.ranks, "data-parallel ranks")->check(CLI::Range(1, 1 << 20));
    cmd->add_option("--zero", s.zero, "ZeRO level: 0, 1, 2 or 3 (model/zero_runtime.h)")->check(CLI::Range(0, 3));
    cmd->add_option("--recompute", f->recompute, "none or layer")->check(CLI::IsMember({"none", "layer"}));
    cmd->add_option("--batch", s.batch, "pretrain: sequences per micro-batch, all ranks")->check(positive());
    cmd->add_option("--seq", s.seq, "pretrain: tokens per sequence")->check(positive());
    cmd->add_option("--eval-docs", f->eval_docs, "pretrain: held-out documents per evaluation")->check(non_negative());
    cmd->add_option("--contexts", s.contexts, "train: contexts per step, all ranks")->check(positive());
    cmd->add_option("--rollouts", s.rollouts, "train: rollouts per context")->check(positive());
    cmd->add_option("--prompt-tokens", s.prompt_tokens,
                    "train: longest prompt (template + --context-tokens), or the prompt of inference")
        ->check(positive());
    cmd->add_option("--max-new-tokens", s.max_new_tokens, "train: response budget")->check(positive());
    cmd->add_option("--micro-batch", s.micro_batch_rows, "train: responses per forward/backward")->check(positive());
    cmd->add_option("--prompt-layout", f->prompt_layout, "train: shared or separate")
        ->check(CLI::IsMember({"shared", "separate"}));
    cmd->add_option("--kl-beta", f->kl_beta, "train: > 0 keeps a frozen KL reference")->check(non_negative());
    add_kv_dtype_flag(*cmd, s.kv_dtype);
    add_kv_block_flag(*cmd, s.kv_block_tokens);
    cmd->add_option("--device-memory", f->device_memory_gib, "GiB per device to fit in (e.g. 80)")->check(positive());
    add_step_time_flags(*cmd, f->step_time);
    cmd->callback([f]() { run_plan(*f); });
}

}  // namespace rpt::cli
