// rpt demo: the whole RPT pipeline on the embedded default (what `make run` runs).
//   synthetic corpus -> BPE tokenizer -> NTP pre-training of `tiny` (with a small share of
//   template-formatted examples, so the policy starts out answering in format) ->
//   top-16-entropy filter with the pre-trained model as proxy -> from that checkpoint,
//   RPT and continued NTP at equal training compute -> evaluation of all three on
//   held-out positions per entropy split -> table, summary JSON and a plot.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "kernels/context.h"
#include "kernels/rng.h"
#include "model/bpe_trainer.h"
#include "model/checkpoint.h"
#include "model/file_io.h"
#include "model/flops.h"
#include "model/output_guard.h"
#include "rl/corpus.h"
#include "rl/evaluate.h"
#include "rl/ntp_trainer.h"
#include "rl/positions.h"
#include "rl/rpt_trainer.h"
#include "rl/special_tokens.h"
#include "rl/synth_corpus.h"
#include "rl/templates.h"
#include "rl/token_data.h"
#include "tools/cli/commands.h"
#include "tools/cli/corpus_flags.h"
#include "tools/cli/flag_checks.h"
#include "tools/cli/output_flags.h"
#include "tools/cli/plot.h"
#include "tools/cli/precision_flag.h"
#include "tools/cli/rpt_flags.h"

namespace rpt::cli {
namespace {

struct DemoFlags {
    std::string out = "build/demo";
    bool quick = false;
    bool overwrite = false;  // write into an --out that is not an earlier demo directory
    uint64_t seed = 1;
    std::string device = "auto";
    std::string precision = kAutoPrecision;
    // Sizes (the --quick preset shrinks them).
    size_t docs = 6000;
    int pretrain_batch = 8;  // sequences per NTP step (pre-training and NTP-continued)
    int pretrain_steps = 1200;
    int rpt_steps = 600;
    size_t filter_docs = 1500;
    size_t eval_positions = 600;
    int eval_points = 6;  // evaluations along each run for the plot
    float format_share = 0.25f;  // share of pre-training tokens in template-formatted examples
    CorpusFlags corpus;          // a JSONL corpus instead of the built-in one (--corpus)
};

constexpr double kHeldoutFraction = 0.1;
constexpr int kContextTokens = 48;
constexpr int kFilterBatch = 16;
constexpr float kNtpContinueLr = 3e-4f;

void stage(const char* what) { std::fprintf(stderr, "\n== %s\n", what); }

// The demo's directory, once its --out is claimed (a new one, an empty one, an earlier
// demo's, whose files a rerun replaces, or with --overwrite whatever was there; a file
// is replaced). Made only when the corpus is in hand, so a bad --corpus leaves nothing.
void create_demo_directory(const DemoFlags& f) {
    if (std::filesystem::is_regular_file(f.out)) std::filesystem::remove(f.out);
    ensure_directory(f.out);
    write_output_marker(f.out, kDemoOutput);
}

// Which size flags were given on the command line: --quick does not override them.
struct ExplicitSizes {
    bool pretrain_steps = false;
    bool rpt_steps = false;
};

// The --quick preset: the whole pipeline in about two minutes on two cores, for CI. Its
// pre-training (150 steps of 2 sequences, 3% of the full demo's tokens) leaves a start
// model that barely answers in format: the table shows that the stages run, not what
// RPT does.
void apply_quick_sizes(DemoFlags& f, ExplicitSizes given) {
    f.docs = 1000;
    f.pretrain_batch = 2;
    if (!given.pretrain_steps) f.pretrain_steps = 150;
    if (!given.rpt_steps) f.rpt_steps = 10;
    f.filter_docs = 200;
    f.eval_positions = 90;
    f.eval_points = 2;
}

// Stage 1's output: the corpus as text and tokens, its tokenizer and template, and
// which documents are held out.
struct DemoData {
    std::vector<std::string> texts;
    Tokenizer tokenizer;
    int32_t eot;
    PromptTemplate format;
    TemplateTokens template_tokens;
    std::vector<std::vector<int32_t>> docs;        // by document id
    std::vector<std::vector<int32_t>> train_docs;  // the documents not held out
    std::vector<int64_t> train_ids, heldout_ids;
};

DemoData prepare_corpus(const DemoFlags& f) {
    std::vector<std::string> texts = f.corpus.path.empty() ? synth_corpus(f.seed, f.docs) : f.corpus.load();
    create_demo_directory(f);
    write_jsonl_corpus(f.out + "/corpus.jsonl", texts);
    Tokenizer tokenizer = train_bpe(texts, model_preset("tiny").vocab_size, default_special_tokens());
    tokenizer.save(f.out + "/tokenizer.json");
    const int32_t eot = *tokenizer.token_id(kEndOfText);
    PromptTemplate format = load_template("compact");
    TemplateTokens template_tokens = bind_template(format, tokenizer);
    auto docs = tokenize_documents(texts, tokenizer);
    std::vector<std::vector<int32_t>> train_docs;
    std::vector<int64_t> train_ids, heldout_ids;
    for (size_t i = 0; i < docs.size(); ++i) {
        if (is_heldout(f.seed, i, kHeldoutFraction)) heldout_ids.push_back(int64_t(i));
        else {
            train_ids.push_back(int64_t(i));
            train_docs.push_back(docs[i]);
        }
    }
    std::fprintf(stderr, "%zu documents (%zu held out), tokenizer of %d tokens\n", texts.size(), heldout_ids.size(),
                 tokenizer.vocab_size());
    return DemoData{std::move(texts), std::move(tokenizer), eot, std::move(format), std::move(template_tokens),
                    std::move(docs), std::move(train_docs), std::move(train_ids), std::move(heldout_ids)};
}

// Pre-training of `model` from its initial weights; the start checkpoint goes to start/.
void pretrain(const DemoFlags& f, const DemoData& d, const TokenizedCorpus& corpus, Transformer& model) {
    AdamW opt(model.layout(), model.context());
    TrainerState state;
    NtpOptions o;
    o.batch_size = f.pretrain_batch;
    o.seq_len = model.config().max_position_embeddings;
    o.steps = f.pretrain_steps;
    o.warmup_steps = f.pretrain_steps / 20;
    o.adamw.lr = 3e-3f;
    o.adamw.weight_decay = 0.1f;
    o.eval_every = 0;
    o.eval_docs = 64;
    o.log_every = std::max(1, f.pretrain_steps / 10);
    o.metrics_path = f.out + "/pretrain.jsonl";
    o.out_dir = f.out + "/start";
    train_ntp(model, opt, d.tokenizer, corpus, o, state);
}

// The held-out evaluation every run is compared by: all positions at the end, the hard
// ones along the runs.
struct DemoEval {
    const DemoData& data;
    EntropySplits splits;
    EvalOptions options;
    std::vector<ScoredPosition> positions;       // held out, entropy > splits.easy
    std::vector<ScoredPosition> hard_positions;  // a subsample of those above splits.hard

    EvalReport all(Transformer& m) const {
        return evaluate_positions(m, data.tokenizer, data.format, data.docs, positions, splits, options);
    }
    void hard_into(Transformer& m, nlohmann::json& record) const {
        const EvalReport r = evaluate_positions(m, data.tokenizer, data.format, data.docs, hard_positions, splits,
                                                options);
        record["eval_hard_standard"] = r.hard().standard;
        record["eval_hard_reasoning"] = r.hard().reasoning;
    }
};

// Scores the positions of the first filter_docs training documents and every held-out
// one with the start checkpoint as proxy; returns the training positions and fills the
// evaluation's.
std::vector<ScoredPosition> filter_positions(const DemoFlags& f, Transformer& proxy, DemoEval& eval) {
    const DemoData& d = eval.data;
    std::vector<std::vector<int32_t>> scored_docs;
    std::vector<int64_t> scored_ids;
    for (size_t i = 0; i < std::min(f.filter_docs, d.train_ids.size()); ++i) scored_ids.push_back(d.train_ids[i]);
    scored_ids.insert(scored_ids.end(), d.heldout_ids.begin(), d.heldout_ids.end());
    for (int64_t id : scored_ids) scored_docs.push_back(d.docs[size_t(id)]);
    const std::vector<ScoredPosition> scored =
        score_positions(proxy, scored_docs, scored_ids, proxy.config().max_position_embeddings, kFilterBatch);
    write_positions(f.out + "/positions.jsonl", scored);
    const EntropySplits& splits = eval.splits;
    std::vector<ScoredPosition> train_positions, eval_positions;
    for (const ScoredPosition& p : scored) {
        if (!(p.entropy > splits.easy)) continue;
        (is_heldout(f.seed, size_t(p.doc), kHeldoutFraction) ? eval_positions : train_positions).push_back(p);
    }
    std::fprintf(stderr, "all scored: %s\n", describe_splits(scored, splits).c_str());
    eval.positions = subsample_positions(eval_positions, f.eval_positions);
    eval.hard_positions = subsample_positions(positions_above(eval.positions, splits.hard), f.eval_positions / 3);
    std::fprintf(stderr, "training positions (entropy > %.1f): %zu; held-out evaluation positions: %zu (%zu hard)\n",
                 splits.easy, train_positions.size(), eval.positions.size(), eval.hard_positions.size());
    return train_positions;
}

RptOptions rpt_options(const DemoFlags& f) {
    RptOptions rpt;
    rpt.contexts = 16;
    rpt.group_size = 8;
    rpt.max_new_tokens = 6;
    rpt.context_tokens = kContextTokens;
    rpt.temperature = 0.8f;
    rpt.steps = f.rpt_steps;
    rpt.adamw.lr = 1e-4f;
    rpt.adamw.weight_decay = 0.0f;
    rpt.seed = f.seed;
    rpt.metrics_path = f.out + "/rpt.jsonl";
    rpt.out_dir = f.out + "/rpt";
    rpt.log_every = std::max(1, f.rpt_steps / 10);
    return rpt;
}

// A model loaded from one of the demo's checkpoints (start/, rpt/, ntp/).
std::unique_ptr<Transformer> load_demo_model(const DemoFlags& f, const std::string& name, const OpContext& ctx) {
    const std::string dir = f.out + "/" + name;
    auto m = std::make_unique<Transformer>(read_checkpoint_config(dir), ctx, resolve_precision(f.precision, ctx.device));
    load_checkpoint_weights(dir, *m);
    return m;
}

// RPT from the start checkpoint, the hard split evaluated along the way; returns its
// training FLOPs (rollouts and updates).
double run_rpt(const DemoFlags& f, const RptOptions& rpt, const DemoEval& eval,
               const std::vector<ScoredPosition>& train_positions, const OpContext& ctx) {
    const int64_t eval_every = std::max(1, f.rpt_steps / f.eval_points);
    double flops = 0;
    const std::unique_ptr<Transformer> policy = load_demo_model(f, "start", ctx);
    AdamW opt(policy->layout(), ctx);
    TrainerState state;
    train_rpt(*policy, opt, eval.data.tokenizer, eval.data.format, eval.data.docs, train_positions, rpt, state,
              [&](const RptStepRecord& rec, nlohmann::json& record) {
                  flops += rec.flops;
                  if (rec.step % eval_every == 0 || rec.step == rpt.steps) eval.hard_into(*policy, record);
              });
    return flops;
}

// Continued NTP from the start checkpoint with as many steps as match RPT's FLOPs;
// returns the steps taken.
int64_t run_continued_ntp(const DemoFlags& f, const DemoEval& eval, const TokenizedCorpus& corpus,
                          const ModelConfig& config, double rpt_flops, const OpContext& ctx) {
    NtpOptions ntp;
    ntp.batch_size = f.pretrain_batch;
    ntp.seq_len = config.max_position_embeddings;
    const double step_flops = training_flops_per_token(config, ntp.seq_len) * double(ntp.batch_size) * ntp.seq_len;
    ntp.steps = std::max<int64_t>(1, int64_t(std::ceil(rpt_flops / step_flops)));
    ntp.warmup_steps = 0;
    ntp.min_lr_ratio = 1.0f;
    ntp.adamw.lr = kNtpContinueLr;
    ntp.adamw.weight_decay = 0.1f;
    ntp.eval_every = 0;
    ntp.eval_docs = 32;
    ntp.seed = f.seed + 1;
    ntp.log_every = std::max<int64_t>(1, ntp.steps / 5);
    ntp.metrics_path = f.out + "/ntp.jsonl";
    ntp.out_dir = f.out + "/ntp";
    std::fprintf(stderr, "RPT used %.2f TFLOP; continued NTP gets %lld steps of %.3f TFLOP\n", rpt_flops * 1e-12,
                 (long long)ntp.steps, step_flops * 1e-12);
    const int64_t eval_every = std::max<int64_t>(1, ntp.steps / f.eval_points);
    const std::unique_ptr<Transformer> cont = load_demo_model(f, "start", ctx);
    AdamW opt(cont->layout(), ctx);
    TrainerState state;
    train_ntp(*cont, opt, eval.data.tokenizer, corpus, ntp, state, [&](int64_t step, nlohmann::json& record) {
        if (step % eval_every == 0 || step == ntp.steps) eval.hard_into(*cont, record);
    });
    return ntp.steps;
}

// What the runs compare by: the table, summary.json and the curves.
struct DemoOutcome {
    std::vector<std::pair<std::string, EvalReport>> rows;  // start, NTP-continued, RPT
    double rpt_flops = 0;
    int64_t ntp_steps = 0;
};

void write_report(const DemoFlags& f, const DemoData& d, const RptOptions& rpt, const DemoOutcome& out) {
    const std::string& dir = f.out;
    std::printf("\nrpt demo%s: tiny model, %zu documents, %d pre-training steps, %d RPT steps (%d contexts x %d "
                "rollouts) vs %lld continued-NTP steps at equal compute (%.2f TFLOP)\n\n",
                f.quick ? " --quick" : "", d.texts.size(), f.pretrain_steps, f.rpt_steps, rpt.contexts,
                rpt.group_size, (long long)out.ntp_steps, out.rpt_flops * 1e-12);
    print_eval_table(out.rows, true);

    nlohmann::json summary = {{"quick", f.quick}, {"seed", f.seed}, {"rpt_flops", out.rpt_flops},
                              {"ntp_steps", out.ntp_steps}, {"rpt_steps", f.rpt_steps}};
    for (const auto& [name, report] : out.rows)
        for (const SplitResult& s : report.splits)
            summary["results"][name][s.name] = {{"standard", s.standard}, {"reasoning", s.reasoning},
                                                {"format", s.format}, {"positions", s.positions}};
    write_file_atomic(dir + "/summary.json", summary.dump(2) + "\n");
    plot_metrics({{dir + "/rpt.jsonl", "RPT"}, {dir + "/ntp.jsonl", "NTP-continued"}}, dir + "/curves.svg", "flops");
}

void run_demo(DemoFlags f) {
    claim_directory_output("--out", f.out, kDemoOutput, f.overwrite);
    const auto t_start = std::chrono::steady_clock::now();
    const OpContext ctx = make_context(f.device, true);

    stage("1. corpus and tokenizer");
    const DemoData data = prepare_corpus(f);

    stage("2. NTP pre-training of the tiny model");
    ModelConfig config = model_preset("tiny");
    config.eos_token_id = data.eot;
    Transformer model(config, ctx, resolve_precision(f.precision, ctx.device));
    model.init_weights(f.seed);
    TokenizedCorpus corpus = tokenize_corpus(data.texts, data.tokenizer, data.eot, f.seed, kHeldoutFraction);
    mix_format_examples(corpus.train_stream, data.train_docs, data.template_tokens,
                        {data.eot, f.format_share, kContextTokens, f.seed});
    pretrain(f, data, corpus, model);

    stage("3. filter: top-16 entropy of every position, the start checkpoint as proxy");
    DemoEval eval{data, EntropySplits{}, EvalOptions{}, {}, {}};
    eval.options.context_tokens = kContextTokens;
    eval.options.max_new_tokens = 6;
    eval.options.seed = f.seed;
    const std::vector<ScoredPosition> train_positions = filter_positions(f, model, eval);

    stage("4. evaluate the start checkpoint");
    DemoOutcome out;
    const EvalReport start = eval.all(model);
    std::fprintf(stderr, "start checkpoint: format rate %.2f, mean reasoning reward %.3f (easy split, greedy)\n",
                 start.easy().format, start.easy().reasoning);
    out.rows.emplace_back("start", start);

    stage("5. RPT from the start checkpoint");
    const RptOptions rpt = rpt_options(f);
    out.rpt_flops = run_rpt(f, rpt, eval, train_positions, ctx);

    stage("6. continued NTP from the start checkpoint at equal compute");
    out.ntp_steps = run_continued_ntp(f, eval, corpus, config, out.rpt_flops, ctx);

    stage("7. evaluation on held-out positions");
    out.rows.emplace_back("NTP-continued", eval.all(*load_demo_model(f, "ntp", ctx)));
    out.rows.emplace_back("RPT", eval.all(*load_demo_model(f, "rpt", ctx)));
    write_report(f, data, rpt, out);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    std::printf("\nwrote %s/summary.json and %s/curves.svg (%.0f s in all)\n", f.out.c_str(), f.out.c_str(), seconds);
}

}  // namespace

void add_demo_command(CLI::App& app) {
    CLI::App* cmd = app.add_subcommand("demo", "the whole RPT pipeline on the built-in corpus (make run)");
    auto f = std::make_shared<DemoFlags>();
    cmd->add_option("--out", f->out, "output directory");
    cmd->add_flag("--quick", f->quick,
                  "the pipeline at a smoke-test size (about 2 minutes on 2 cores; explicit --pretrain-steps and "
                  "--rpt-steps still apply), for CI");
    add_overwrite_flag(*cmd, f->overwrite, OutputRule::demo);
    cmd->add_option("--seed", f->seed, "seed of everything");
    cmd->add_option("--device", f->device, "auto, cpu or cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
    add_precision_flag(*cmd, f->precision);
    CLI::Option* rpt_steps = cmd->add_option("--rpt-steps", f->rpt_steps, "RPT steps")->check(positive());
    CLI::Option* pretrain_steps =
        cmd->add_option("--pretrain-steps", f->pretrain_steps, "pre-training steps")->check(positive());
    cmd->add_option("--format-share", f->format_share, "share of pre-training tokens in template-formatted examples")
        ->check(closed_range(0.0, 0.9));
    f->corpus.add_file_flags_to(*cmd);
    cmd->callback([f, rpt_steps, pretrain_steps]() {
        if (f->quick) apply_quick_sizes(*f, {pretrain_steps->count() > 0, rpt_steps->count() > 0});
        run_demo(*f);
    });
}

}  // namespace rpt::cli
