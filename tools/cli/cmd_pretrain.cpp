// rpt pretrain: next-token-prediction training of a preset or an existing checkpoint;
// data parallel (optionally ZeRO-1) when launched by mpirun/srun.
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "kernels/context.h"
#include "model/bpe_trainer.h"
#include "model/checkpoint.h"
#include "model/memory_plan.h"
#include "rl/corpus.h"
#include "rl/ntp_trainer.h"
#include "rl/templates.h"
#include "rl/special_tokens.h"
#include "tools/cli/commands.h"
#include "tools/cli/corpus_flags.h"
#include "tools/cli/flag_checks.h"
#include "tools/cli/model_setup.h"
#include "tools/cli/output_flags.h"
#include "tools/cli/resume_settings.h"

namespace rpt::cli {
namespace {

struct PretrainFlags {
    CorpusFlags corpus;
    ModelFlags model;
    NtpOptions ntp;
    double heldout_fraction = 0.05;
    float format_share = 0.0f;  // share of template-formatted examples in the stream
    std::string template_name = "compact";
    int format_context = 48;
    bool overwrite = false;  // replace an --out that is not rpt's checkpoint
    // "RANK:STEP", hidden: exercise the failure paths (an error, a NaN gradient).
    std::string debug_fail_at, debug_nan_at;
};

// Parses a hidden debugging flag's RANK:STEP.
void parse_rank_step(const char* flag, const std::string& spec, int& rank, int64_t& step) {
    const size_t colon = spec.find(':');
    try {
        if (colon == std::string::npos) throw std::invalid_argument("no colon");
        rank = std::stoi(spec.substr(0, colon));
        step = std::stoll(spec.substr(colon + 1));
    } catch (const std::exception&) {
        throw std::invalid_argument(fmt::format("{} '{}': expected RANK:STEP", flag, spec));
    }
}

// Every flag that defines the trajectory (rl/run_settings.h): recorded in the
// checkpoints, taken from them by --resume.
RunSettings pretrain_run_settings(PretrainFlags& f) {
    RunSettings s("pretrain");
    add_corpus_settings(s, f.corpus);
    NtpOptions& o = f.ntp;
    s.add("--seed", f.model.seed);
    s.add("--precision", f.model.precision);
    s.add("--data-seed", o.seed);
    s.add("--steps", o.steps);
    s.add("--batch", o.batch_size);
    s.add("--seq", o.seq_len);
    s.add("--grad-accum", o.grad_accum);
    s.add("--lr", o.adamw.lr);
    s.add("--min-lr-ratio", o.min_lr_ratio);
    s.add("--warmup", o.warmup_steps);
    s.add("--weight-decay", o.adamw.weight_decay);
    s.add("--beta1", o.adamw.beta1);
    s.add("--beta2", o.adamw.beta2);
    s.add("--grad-clip", o.adamw.max_grad_norm);
    s.add("--skip-nonfinite", o.adamw.skip_nonfinite);
    s.add("--format-share", f.format_share);
    s.add("--template", f.template_name);
    s.add("--format-context", f.format_context);
    s.add("--heldout-fraction", f.heldout_fraction);
    s.add("--eval-every", o.eval_every);
    s.add("--eval-docs", o.eval_docs);
    s.add("--checkpoint-every", o.checkpoint_every);
    s.add("--log-every", o.log_every);
    s.add("--metrics", o.metrics_path);
    return s;
}

// What `rpt plan` says for this run (model/memory_plan.h).
void report_memory_plan(const ModelSetup& setup, const NtpOptions& o) {
    if (o.quiet) return;
    PlanSettings s;
    s.run = PlanRun::pretrain;
    s.device = setup.ctx.device;
    s.precision = setup.model->precision();
    s.recompute = setup.model->recompute();
    s.ranks = setup.comm->size();
    s.zero = setup.optimizer->zero_level();
    s.batch = o.batch_size;
    s.seq = o.seq_len;
    s.eval_rows = ntp_eval_rows(o.batch_size, o.eval_docs, s.ranks);
    const ModelConfig& c = setup.model->config();
    for (const std::string& line : plan_lines(c, s, plan_memory(c, s))) std::fprintf(stderr, "%s\n", line.c_str());
}

void run_pretrain(const PretrainFlags& f, const RunSettings& settings, const nlohmann::json& resumed,
                  const MpiRuntime& runtime) {
    // Refused outputs and what a killed run left beside its output go first (rank 0
    // alone writes there).
    if (runtime.rank() == 0) claim_training_outputs(f.model.out, f.model.resume, f.ntp.metrics_path, f.overwrite);
    const std::vector<std::string> docs = f.corpus.load();
    ModelSetup setup = setup_model(f.model, docs, /*with_optimizer=*/true, &runtime);
    setup.state.run = run_record(settings, resumed, setup.tokenizer, f.model);
    const bool root = setup.comm->is_root();
    if (root) report_memory_plan(setup, f.ntp);
    NtpOptions ntp = f.ntp;
    ntp.out_dir = f.model.out;
    NtpFaults faults;
    if (!f.debug_fail_at.empty()) parse_rank_step("--debug-fail-at", f.debug_fail_at, faults.fail_rank, faults.fail_step);
    if (!f.debug_nan_at.empty()) parse_rank_step("--debug-nan-at", f.debug_nan_at, faults.nan_rank, faults.nan_step);
    const int32_t eot = end_of_text_id(setup.tokenizer);
    TokenizedCorpus corpus = tokenize_corpus(docs, setup.tokenizer, eot, f.model.seed, f.heldout_fraction);
    if (f.format_share > 0) {
        // A model trained from scratch cannot answer in a format it never saw: mix in
        // template examples drawn from the training documents.
        std::vector<std::vector<int32_t>> train_docs;
        const auto all = tokenize_documents(docs, setup.tokenizer);
        for (size_t i = 0; i < all.size(); ++i)
            if (!is_heldout(f.model.seed, i, f.heldout_fraction)) train_docs.push_back(all[i]);
        mix_format_examples(corpus.train_stream, train_docs,
                            bind_template(load_template(f.template_name), setup.tokenizer),
                            {eot, f.format_share, f.format_context, f.model.seed});
    }
    if (root)
        std::fprintf(stderr, "data: %zu training documents (%zu tokens), %zu held out\n", corpus.train_documents,
                     corpus.train_stream.size(), corpus.heldout.size());
    if (setup.state.step >= ntp.steps)
        throw std::invalid_argument(fmt::format("--steps {}: the checkpoint is already at step {}", ntp.steps,
                                                setup.state.step));
    train_ntp(*setup.model, *setup.optimizer, setup.tokenizer, corpus, ntp, setup.state, nullptr, faults);
    if (root)
        std::fprintf(stderr, "wrote checkpoint %s (step %lld)\n", f.model.out.c_str(), (long long)setup.state.step);
}

}  // namespace

void add_pretrain_command(CLI::App& app, const MpiRuntime& runtime) {
    CLI::App* cmd = app.add_subcommand("pretrain", "next-token-prediction training (AdamW, warmup + cosine)");
    auto f = std::make_shared<PretrainFlags>();
    f->corpus.add_to(*cmd);
    f->model.add_to(*cmd, "output checkpoint directory");
    f->model.add_zero_flag(*cmd);
    f->model.add_recompute_flag(*cmd);
    add_overwrite_flag(*cmd, f->overwrite, OutputRule::training);
    NtpOptions& o = f->ntp;
    cmd->add_option("--steps", o.steps, "optimizer steps in total")->check(positive());
    cmd->add_option("--stop-at", o.stop_at, "stop after this step (checkpointed; --resume continues)")
        ->check(positive());
    cmd->add_option("--batch", o.batch_size, "sequences per micro-batch")->check(positive());
    cmd->add_option("--seq", o.seq_len, "tokens per sequence")->check(positive());
    cmd->add_option("--grad-accum", o.grad_accum, "micro-batches per step")->check(positive());
    cmd->add_option("--lr", o.adamw.lr, "peak learning rate")->check(positive());
    cmd->add_option("--min-lr-ratio", o.min_lr_ratio, "cosine floor as a fraction of the peak")->check(fraction());
    cmd->add_option("--warmup", o.warmup_steps, "linear warmup steps")->check(non_negative());
    cmd->add_option("--weight-decay", o.adamw.weight_decay, "AdamW decoupled weight decay (matrices only)")
        ->check(non_negative());
    cmd->add_option("--beta1", o.adamw.beta1, "AdamW beta1")->check(below_one());
    cmd->add_option("--beta2", o.adamw.beta2, "AdamW beta2")->check(below_one());
    cmd->add_option("--grad-clip", o.adamw.max_grad_norm, "clip the global gradient norm (0: off)")
        ->check(non_negative());
    cmd->add_option("--eval-every", o.eval_every, "held-out evaluation every N steps (0: at the end)")
        ->check(non_negative());
    cmd->add_option("--eval-docs", o.eval_docs, "held-out documents per evaluation")->check(positive());
    cmd->add_option("--checkpoint-every", o.checkpoint_every, "checkpoint every N steps (0: at the end)")
        ->check(non_negative());
    cmd->add_option("--log-every", o.log_every, "progress line every N steps")->check(positive());
    cmd->add_option("--data-seed", o.seed, "seed of batch sampling");
    cmd->add_option("--format-share", f->format_share,
                    "share of the stream in RPT-template examples (the true next token as answer)")
        ->check(closed_range(0.0, 0.9));
    cmd->add_option("--template", f->template_name, "template of those examples");
    cmd->add_option("--format-context", f->format_context, "left context tokens of those examples")
        ->check(positive());
    cmd->add_option("--heldout-fraction", f->heldout_fraction, "share of documents held out")->check(closed_range(0.0, 0.5));
    cmd->add_option("--metrics", o.metrics_path, "write one JSON object per step to this file");
    cmd->add_flag("--skip-nonfinite", o.adamw.skip_nonfinite,
                  "skip a step whose loss or gradient norm is NaN/inf (default: stop with the step number)");
    // Hidden (empty group): the multi-rank failure test makes one rank throw at a step.
    cmd->add_option("--debug-fail-at", f->debug_fail_at, "RANK:STEP: that rank fails at that step")->group("");
    cmd->add_option("--debug-nan-at", f->debug_nan_at, "RANK:STEP: NaN in that rank's gradient")->group("");
    cmd->footer(resume_help());
    cmd->callback([f, cmd, &runtime]() {
        RunSettings settings = pretrain_run_settings(*f);
        const nlohmann::json resumed = resume_run_settings(settings, *cmd, f->model, runtime.rank() == 0);
        run_pretrain(*f, settings, resumed, runtime);
    });
}

}  // namespace rpt::cli
