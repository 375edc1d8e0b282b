#include "tools/cli/resume_settings.h"

#include <cstdio>

#include <fmt/format.h>

#include "model/checkpoint.h"

namespace rpt::cli {

void add_corpus_settings(RunSettings& s, CorpusFlags& c) {
    s.add_file("--corpus", c.path);
    s.add("--corpus-format", c.format);
    s.add("--text-field", c.text_field);
    s.add("--skip-malformed", c.skip_malformed);
    s.add("--synth-docs", c.synth_docs);
    s.add("--synth-seed", c.synth_seed);
}

void add_rpt_settings(RunSettings& s, RptOptions& o, RptFlagValues& v) {
    s.add("--steps", o.steps);
    s.add("--contexts", o.contexts);
    s.add("--rollouts", o.group_size);
    s.add("--max-new-tokens", o.max_new_tokens);
    s.add("--context-tokens", o.context_tokens);
    s.add("--truth-tokens", o.truth_tokens);
    s.add("--reward", v.reward);
    s.add("--temperature", o.temperature);
    s.add("--top-p", o.top_p);
    s.add("--top-k", o.top_k);
    s.add("--dynamic-sampling", o.dynamic_sampling);
    s.add("--dynamic-sampling-from", o.dynamic_sampling_from);
    s.add("--max-refill-rounds", o.max_refill_rounds);
    s.add("--clip-low", o.grpo.loss.clip_low);
    s.add("--clip-high", o.grpo.loss.clip_high);
    s.add("--kl-beta", o.grpo.loss.kl_beta);
    s.add("--aggregation", v.aggregation);
    // Recorded as the flag reads (true: no std division), not as the field it clears.
    bool& scale_by_std = o.grpo.scale_by_std;
    s.add(value_setting<bool>(
        "--no-std-scale", [&scale_by_std] { return !scale_by_std; },
        [&scale_by_std](const bool& no_std_scale) { scale_by_std = !no_std_scale; }));
    s.add("--updates-per-batch", o.grpo.updates_per_batch);
    s.add("--micro-batch", o.grpo.micro_batch_rows);
    s.add("--prompt-layout", v.prompt_layout);
    s.add("--lr", o.adamw.lr);
    s.add("--warmup", o.warmup_steps);
    s.add("--min-lr-ratio", o.min_lr_ratio);
    s.add("--weight-decay", o.adamw.weight_decay);
    s.add("--grad-clip", o.adamw.max_grad_norm);
    s.add("--kv-budget-mb", v.kv_budget_mb);
    KvDType& kv_dtype = o.kv_dtype;
    s.add(value_setting<std::string>(
        "--kv-dtype", [&kv_dtype] { return std::string(kv_dtype_name(kv_dtype)); },
        [&kv_dtype](const std::string& name) { kv_dtype = parse_kv_dtype(name); }));
    s.add("--kv-block-tokens", o.kv_block_tokens);
    s.add("--rl-seed", o.seed);
    s.add("--metrics", o.metrics_path);
    s.add("--checkpoint-every", o.checkpoint_every);
    s.add("--log-every", o.log_every);
}

nlohmann::json resume_run_settings(RunSettings& settings, const CLI::App& command, const ModelFlags& flags,
                                   bool root) {
    // A directory without a training state is refused later, by setup_model, naming it.
    if (flags.resume.empty() || !has_training_state(flags.resume)) return nullptr;
    const nlohmann::json run = read_run_record(flags.resume);
    const auto given = [&command](const std::string& flag) {
        const CLI::Option* option = command.get_option_no_throw(flag);
        return option && option->count() > 0;
    };
    for (const std::string& warning : settings.resume(run, given, flags.resume))
        if (root) std::fprintf(stderr, "warning: %s\n", warning.c_str());
    return run;
}

nlohmann::json run_record(const RunSettings& settings, const nlohmann::json& resumed, const Tokenizer& tokenizer,
                          const ModelFlags& flags) {
    if (!flags.resume.empty()) {
        check_run_tokenizer(resumed, tokenizer, flags.resume + "/tokenizer.json");
        if (!flags.tokenizer.empty())
            check_run_tokenizer(resumed, Tokenizer::load(flags.tokenizer), "--tokenizer " + flags.tokenizer);
    }
    return settings.record(tokenizer);
}

std::string resume_help() {
    std::string changeable;
    for (const std::string& flag : changeable_on_resume_flags())
        changeable += (changeable.empty() ? "" : ", ") + flag;
    return fmt::format("--resume CK continues the run recorded in CK: a flag not given takes the run's value, and "
                       "one given with another value is refused, except {} (and the number of ranks), which may "
                       "change on resume.",
                       changeable);
}

}  // namespace rpt::cli
