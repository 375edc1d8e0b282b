// rpt filter | train | eval: the RPT pipeline on a checkpoint and a corpus.
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "model/output_guard.h"
#include "model/checkpoint.h"
#include "model/file_io.h"
#include "rl/corpus.h"
#include "rl/eval_comparison.h"
#include "rl/evaluate.h"
#include "rl/positions.h"
#include "rl/rpt_trainer.h"
#include "rl/templates.h"
#include "rl/token_data.h"
#include "tools/cli/commands.h"
#include "tools/cli/corpus_flags.h"
#include "tools/cli/eval_studies.h"
#include "tools/cli/flag_checks.h"
#include "tools/cli/model_setup.h"
#include "tools/cli/output_flags.h"
#include "tools/cli/recipe.h"
#include "tools/cli/resume_settings.h"
#include "tools/cli/rpt_flags.h"

namespace rpt::cli {
namespace {

constexpr int kFilterBatch = 16;

// Positions whose document falls in the wanted side of the held-out split.
std::vector<ScoredPosition> split_side(const std::vector<ScoredPosition>& all, uint64_t seed, double fraction,
                                       bool heldout, size_t num_docs, const std::string& positions_path) {
    std::vector<ScoredPosition> out;
    for (const ScoredPosition& p : all) {
        if (size_t(p.doc) >= num_docs)
            throw std::invalid_argument(fmt::format("{}: document {} is not in the corpus ({} documents): was it "
                                                    "scored on another corpus?",
                                                    positions_path, p.doc, num_docs));
        if (is_heldout(seed, size_t(p.doc), fraction) == heldout) out.push_back(p);
    }
    return out;
}

struct FilterFlags {
    CorpusFlags corpus;
    ModelFlags model;
    std::string out;
    int seq_len = 256;
    size_t max_docs = 0;
    EntropySplits splits;
    float train_threshold = 0.5f;
    bool overwrite = false;
};

void run_filter(const FilterFlags& f) {
    claim_file_output("--out", f.out, f.overwrite);
    const std::vector<std::string> texts = f.corpus.load();
    ModelSetup setup = setup_model(f.model, texts, false);
    const size_t n = f.max_docs > 0 ? std::min(f.max_docs, texts.size()) : texts.size();
    std::vector<std::string> used(texts.begin(), texts.begin() + int64_t(n));
    std::vector<int64_t> ids(n);
    for (size_t i = 0; i < n; ++i) ids[i] = int64_t(i);
    const auto docs = tokenize_documents(used, setup.tokenizer);
    const int T = std::min(f.seq_len, setup.model->config().max_position_embeddings);
    const std::vector<ScoredPosition> scored = score_positions(*setup.model, docs, ids, T, kFilterBatch);
    write_positions(f.out, scored);
    int64_t pass = 0;
    for (const ScoredPosition& p : scored) pass += p.entropy > f.train_threshold;
    std::printf("scored %zu positions of %zu documents with top-%d entropy -> %s\n", scored.size(), n, kProxyTopK,
                f.out.c_str());
    std::printf("%s\n", describe_splits(scored, f.splits).c_str());
    std::printf("pass the training threshold (> %.2f): %lld (%.1f%%)\n", f.train_threshold, (long long)pass,
                scored.empty() ? 0.0 : 100.0 * double(pass) / double(scored.size()));
}

struct TrainFlags {
    CorpusFlags corpus;
    ModelFlags model;
    std::string positions;
    std::string template_name = "compact";
    RptOptions rpt;
    RptFlagValues values;
    float entropy_threshold = 0.5f;
    double heldout_fraction = 0.05;
    bool overwrite = false;  // replace an --out that is not rpt's checkpoint
    std::string recipe;      // empty: none
};

// Every flag that defines the trajectory (rl/run_settings.h): recorded in the
// checkpoints, taken from them by --resume.
RunSettings train_run_settings(TrainFlags& f) {
    RunSettings s("train");
    add_corpus_settings(s, f.corpus);
    s.add("--seed", f.model.seed);
    s.add("--precision", f.model.precision);
    s.add_file("--positions", f.positions);
    s.add("--template", f.template_name);
    s.add("--entropy-threshold", f.entropy_threshold);
    s.add("--heldout-fraction", f.heldout_fraction);
    add_rpt_settings(s, f.rpt, f.values);
    return s;
}

void run_train(TrainFlags f, const RunSettings& settings, const nlohmann::json& resumed, const MpiRuntime& runtime) {
    if (f.positions.empty())
        throw std::invalid_argument("--positions: the positions JSONL of `rpt filter` is required");
    finish_rpt_options(f.rpt, f.values);
    f.rpt.out_dir = f.model.out;
    f.rpt.resume_dir = f.model.resume;
    const PromptTemplate format = load_template(f.template_name);
    // Refused outputs and what a killed run left beside its output go first (rank 0
    // alone writes there).
    if (runtime.rank() == 0) claim_training_outputs(f.model.out, f.model.resume, f.rpt.metrics_path, f.overwrite);
    const std::vector<std::string> texts = f.corpus.load();
    ModelSetup setup = setup_model(f.model, texts, true, &runtime);
    setup.state.run = run_record(settings, resumed, setup.tokenizer, f.model);
    const bool root = setup.comm->is_root();
    const auto docs = tokenize_documents(texts, setup.tokenizer);
    const auto train = positions_above(
        split_side(read_positions(f.positions), f.model.seed, f.heldout_fraction, false, docs.size(), f.positions),
        f.entropy_threshold);
    if (root)
        std::fprintf(stderr, "RPT: %zu training positions (entropy > %.2f), template %s, %d contexts x %d rollouts "
                     "over %d rank(s)\n",
                     train.size(), f.entropy_threshold, format.name.c_str(), f.rpt.contexts, f.rpt.group_size,
                     setup.comm->size());
    if (setup.state.step >= f.rpt.steps)
        throw std::invalid_argument(fmt::format("--steps {}: the checkpoint is already at step {}", f.rpt.steps,
                                                setup.state.step));
    train_rpt(*setup.model, *setup.optimizer, setup.tokenizer, format, docs, train, f.rpt, setup.state);
    if (root)
        std::fprintf(stderr, "wrote checkpoint %s (step %lld)\n", f.model.out.c_str(), (long long)setup.state.step);
}

struct EvalFlags {
    CorpusFlags corpus;
    ModelFlags model;
    std::string positions;
    std::string template_name = "compact";
    EvalOptions eval;
    std::string mode = "both";
    EntropySplits splits;
    size_t max_positions = 2000;
    bool all_docs = false;
    double heldout_fraction = 0.05;
    std::string compare;      // a second checkpoint evaluated on the same positions
    std::string template_sweep;            // templates to compare (tools/cli/eval_studies.h)
    std::vector<std::string> checkpoints;  // the scaling study's checkpoints
    bool template_given = false;           // --template on the command line
    std::string json_out;     // the report (and comparison) as JSON
    uint64_t stats_seed = 1;  // of the paired bootstrap
    bool overwrite = false;
};

// The comparisons `rpt eval --compare B` prints for checkpoint A: each mode against
// itself, and A's reasoning against B's standard accuracy (the paper's cross-mode claim).
constexpr std::pair<EvalMode, EvalMode> kEvalComparisons[] = {
    {EvalMode::standard, EvalMode::standard},
    {EvalMode::reasoning, EvalMode::reasoning},
    {EvalMode::reasoning, EvalMode::standard},
};

nlohmann::json report_json(const std::string& name, const EvalReport& report,
                           const std::vector<ScoredPosition>& positions) {
    nlohmann::json j = {{"model", name}, {"mode", report.mode}};
    for (const SplitResult& s : report.splits) j["splits"][s.name] = split_json(report, positions, s);
    return j;
}

// Checkpoint B evaluated on A's positions, and A compared with B on each pair of modes.
nlohmann::json compare_with(const EvalFlags& f, const std::vector<std::string>& texts,
                            const std::vector<std::vector<int32_t>>& docs, const ModelSetup& a_setup,
                            const EvalReport& a, const std::vector<ScoredPosition>& positions,
                            const PromptTemplate& format) {
    ModelFlags b_flags = f.model;
    b_flags.model_dir = f.compare;
    ModelSetup b_setup = setup_model(b_flags, texts, false);
    if (b_setup.tokenizer.to_json() != a_setup.tokenizer.to_json())
        throw std::invalid_argument(fmt::format("--compare {}: its tokenizer differs from that of {}; positions "
                                                "are only comparable under one tokenizer", f.compare,
                                                f.model.model_dir));
    const EvalReport b = evaluate_positions(*b_setup.model, b_setup.tokenizer, format, docs, positions, f.splits, f.eval);
    print_eval_table({{f.model.model_dir, a}, {f.compare, b}}, f.eval.reasoning);
    nlohmann::json j = {{"b", report_json(f.compare, b, positions)}, {"comparisons", nlohmann::json::array()}};
    for (const auto& [a_mode, b_mode] : kEvalComparisons) {
        if (!f.eval.reasoning && (a_mode == EvalMode::reasoning || b_mode == EvalMode::reasoning)) continue;
        const EvalSide sa{f.model.model_dir, &a, a_mode}, sb{f.compare, &b, b_mode};
        const std::vector<SplitComparison> splits = compare_evaluations(sa, sb, positions, f.stats_seed);
        std::printf("%s", describe_comparison(sa, sb, splits).c_str());
        j["comparisons"].push_back(comparison_json(sa, sb, splits));
    }
    return j;
}

// The evaluated positions: held-out documents' (unless --all-docs), above the easy
// threshold, at most --max-positions spread evenly.
std::vector<ScoredPosition> eval_positions(const EvalFlags& f, const std::vector<std::vector<int32_t>>& docs) {
    std::vector<ScoredPosition> positions = read_positions(f.positions);
    if (!f.all_docs) positions = split_side(positions, f.model.seed, f.heldout_fraction, true, docs.size(), f.positions);
    return subsample_positions(positions_above(positions, f.splits.easy), f.max_positions);
}

// One evaluation at a time: a study is neither compared nor combined with another.
void check_eval_choices(const EvalFlags& f) {
    const bool sweep = !f.template_sweep.empty(), scaling = !f.checkpoints.empty();
    if (sweep && scaling)
        throw std::invalid_argument("--template-sweep: not with --checkpoints (one study per run)");
    if ((sweep || scaling) && !f.compare.empty())
        throw std::invalid_argument(fmt::format("--compare: not with {}", sweep ? "--template-sweep" : "--checkpoints"));
    if (sweep && f.template_given)
        throw std::invalid_argument("--template: not with --template-sweep, which names the templates");
    if (sweep && f.mode == "standard")
        throw std::invalid_argument("--template-sweep: compares reasoning mode; not with --mode standard");
    if (scaling && !f.model.model_dir.empty())
        throw std::invalid_argument("--model: not with --checkpoints, which name the models");
    if (!scaling && f.model.model_dir.empty())
        throw std::invalid_argument("--model: the checkpoint to evaluate is required");
    if (f.eval.samples > 1 && !f.compare.empty())
        throw std::invalid_argument("--compare: pairs single rollouts; not with --samples above 1");
}

void run_eval(EvalFlags f) {
    check_eval_choices(f);
    f.eval.reasoning = f.mode != "standard";
    check_eval_samples(f.eval);
    if (!f.json_out.empty()) claim_file_output("--json", f.json_out, f.overwrite);
    const std::vector<std::string> texts = f.corpus.load();
    const EvalStudyInputs study{texts, f.splits, f.eval, f.template_name, f.json_out};
    const PositionChooser choose = [&f](const auto& docs) { return eval_positions(f, docs); };
    if (!f.template_sweep.empty()) return run_template_sweep(study, f.model, f.template_sweep, choose);
    if (!f.checkpoints.empty()) return run_scaling_study(study, f.model, f.checkpoints, choose);
    const PromptTemplate format = load_template(f.template_name);
    if (!f.compare.empty()) (void)read_checkpoint_config(f.compare);  // a bad --compare before the first evaluation
    ModelSetup setup = setup_model(f.model, texts, false);
    const auto docs = tokenize_documents(texts, setup.tokenizer);
    const std::vector<ScoredPosition> positions = eval_positions(f, docs);
    const EvalReport report = evaluate_positions(*setup.model, setup.tokenizer, format, docs, positions, f.splits, f.eval);
    nlohmann::json j = {{"a", report_json(f.model.model_dir, report, positions)}, {"positions", positions.size()}};
    if (f.compare.empty()) print_eval_table({{f.model.model_dir, report}}, f.eval.reasoning);
    else j.update(compare_with(f, texts, docs, setup, report, positions, format));
    if (f.mode == "reasoning")
        std::printf("(standard accuracy is printed too: it costs one forward pass per position)\n");
    if (!f.json_out.empty()) write_file_atomic(f.json_out, j.dump(2) + "\n");
}

}  // namespace

void add_rpt_commands(CLI::App& app, const MpiRuntime& runtime) {
    {
        CLI::App* cmd = app.add_subcommand("filter", "score every position of a corpus by a proxy model's top-16 entropy");
        auto f = std::make_shared<FilterFlags>();
        f->corpus.add_to(*cmd);
        f->model.add_to(*cmd, nullptr);
        cmd->add_option("--out", f->out, "positions JSONL to write")->required();
        cmd->add_option("--seq", f->seq_len, "window length")->check(positive());
        cmd->add_option("--max-docs", f->max_docs, "score only the first N documents (0: all)");
        cmd->add_option("--train-threshold", f->train_threshold, "entropy a training position must exceed")
            ->check(non_negative());
        add_overwrite_flag(*cmd, f->overwrite, OutputRule::file);
        add_split_flags(*cmd, f->splits);
        cmd->callback([f]() {
            if (f->model.model_dir.empty()) throw std::invalid_argument("--model: the proxy checkpoint is required");
            run_filter(*f);
        });
    }
    {
        CLI::App* cmd = app.add_subcommand("train", "RPT: GRPO with the prefix-matching reward on filtered positions");
        auto f = std::make_shared<TrainFlags>();
        f->corpus.add_to(*cmd);
        f->model.add_to(*cmd, "output checkpoint directory");
        cmd->add_option("--positions", f->positions, "positions JSONL from `rpt filter` (required)");
        cmd->add_option("--template", f->template_name,
                        "compact, v0 .. v6 (the paper's prompts, Table 10; v0-r1-distill = v0), or a template JSON file");
        cmd->add_option("--stop-at", f->rpt.stop_at, "stop after this step (checkpointed; --resume continues)")
            ->check(positive());
        cmd->add_option("--entropy-threshold", f->entropy_threshold, "train on positions above this entropy")
            ->check(non_negative());
        cmd->add_option("--heldout-fraction", f->heldout_fraction, "documents held out (as in pretrain)")
            ->check(closed_range(0.0, 0.5));
        add_rpt_flags(*cmd, f->rpt, f->values);
        cmd->add_option("--recipe", f->recipe, recipe_help())->check(CLI::IsMember({"paper", "demo"}));
        f->model.add_zero_flag(*cmd);
        f->model.add_recompute_flag(*cmd);
        add_overwrite_flag(*cmd, f->overwrite, OutputRule::training);
        cmd->footer(resume_help());
        cmd->callback([f, cmd, &runtime]() {
            if (!f->recipe.empty()) {
                const std::string line = apply_recipe(*cmd, f->recipe);
                if (runtime.rank() == 0) std::fprintf(stderr, "%s\n", line.c_str());
            }
            RunSettings settings = train_run_settings(*f);
            const nlohmann::json resumed = resume_run_settings(settings, *cmd, f->model, runtime.rank() == 0);
            run_train(*f, settings, resumed, runtime);
        });
    }
    {
        CLI::App* cmd = app.add_subcommand("eval", "next-token accuracy per entropy split, standard and reasoning modes");
        auto f = std::make_shared<EvalFlags>();
        f->corpus.add_to(*cmd);
        f->model.add_to(*cmd, nullptr);
        cmd->add_option("--positions", f->positions, "positions JSONL from `rpt filter`")->required();
        cmd->add_option("--template", f->template_name,
                        "compact, v0 .. v6 (the paper's prompts, Table 10; v0-r1-distill = v0), or a template JSON file");
        cmd->add_option("--max-positions", f->max_positions, "evaluate at most N positions (spread evenly)");
        cmd->add_flag("--all-docs", f->all_docs, "evaluate positions of every document, not only held-out ones");
        cmd->add_option("--heldout-fraction", f->heldout_fraction, "documents held out (as in pretrain)")
            ->check(closed_range(0.0, 0.5));
        add_eval_flags(*cmd, f->eval, f->mode);
        add_split_flags(*cmd, f->splits);
        cmd->add_option("--compare", f->compare,
                        "a second checkpoint, evaluated on the same positions and compared split by split (paired "
                        "bootstrap interval, McNemar test)");
        cmd->add_option("--template-sweep", f->template_sweep,
                        "evaluate the same positions under each template of a comma-separated list (names or JSON "
                        "files; all: v0 .. v6) and report Random@1 and Pass@k per template and split (the paper's "
                        "Table 8; give --sampled --samples 8)");
        cmd->add_option("--checkpoints", f->checkpoints,
                        "the scaling study (the paper's Fig. 5): these checkpoints of one run (comma-separated or "
                        "several paths, e.g. a shell glob; the base model may be one) on the same positions, each at "
                        "its RPT training FLOPs, and per split a fit P(C) = P* - A / C^alpha with R²; at least 3 "
                        "with compute > 0")
            ->delimiter(',');
        cmd->add_option("--json", f->json_out,
                        "write the report (and the comparison, the sweep or the scaling study) as JSON to this file");
        cmd->add_option("--stats-seed", f->stats_seed, "seed of the paired bootstrap");
        add_overwrite_flag(*cmd, f->overwrite, OutputRule::file);
        cmd->callback([f, cmd]() {
            f->template_given = cmd->count("--template") > 0;
            run_eval(*f);
        });
    }
}

}  // namespace rpt::cli
