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
    int pretrain_steps = 1200;
    int rpt_steps = 600;
    size_t filter_docs = 1500;
    size_t eval_positions = 600;
    int eval_points = 6;  // evaluations along each run for the plot
    float format_share = 0.25f;  // share of pre-training tokens in template-formatted examples
    CorpusFlags corpus;          // a JSONL corpus instead of the built-in one (--corpus)
};

constexpr double kHeldoutFraction = 0.1;
constexpr int kPretrainBatch = 8;
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

void run_demo(DemoFlags f) {
    claim_directory_output("--out", f.out, kDemoOutput, f.overwrite);
    if (f.quick) {
        f.docs = 1500;
        f.pretrain_steps = 250;
        f.rpt_steps = 20;
        f.filter_docs = 300;
        f.eval_positions = 150;
        f.eval_points = 3;
    }
    const auto t_start = std::chrono::steady_clock::now();
    const std::string dir = f.out;
    const OpContext ctx = make_context(f.device, true);
    const Precision precision = resolve_precision(f.precision, ctx.device);

    stage("1. corpus and tokenizer");
    const std::vector<std::string> texts = f.corpus.path.empty() ? synth_corpus(f.seed, f.docs) : f.corpus.load();
    create_demo_directory(f);
    write_jsonl_corpus(dir + "/corpus.jsonl", texts);
    const ModelConfig preset = model_preset("tiny");
    const Tokenizer tokenizer = train_bpe(texts, preset.vocab_size, default_special_tokens());
    tokenizer.save(dir + "/tokenizer.json");
    const int32_t eot = *tokenizer.token_id(kEndOfText);
    const PromptTemplate format = load_template("compact");
    const TemplateTokens template_tokens = bind_template(format, tokenizer);
    const auto docs = tokenize_documents(texts, tokenizer);
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

    stage("2. NTP pre-training of the tiny model");
    ModelConfig config = preset;
    config.eos_token_id = eot;
    Transformer model(config, ctx, precision);
    model.init_weights(f.seed);
    TokenizedCorpus corpus = tokenize_corpus(texts, tokenizer, eot, f.seed, kHeldoutFraction);
    mix_format_examples(corpus.train_stream, train_docs, template_tokens, eot, f.format_share, kContextTokens, f.seed);
    {
        AdamW opt(model.layout(), ctx);
        TrainerState state;
        NtpOptions o;
        o.batch_size = kPretrainBatch;
        o.seq_len = config.max_position_embeddings;
        o.steps = f.pretrain_steps;
        o.warmup_steps = f.pretrain_steps / 20;
        o.adamw.lr = 3e-3f;
        o.adamw.weight_decay = 0.1f;
        o.eval_every = 0;
        o.eval_docs = 64;
        o.log_every = std::max(1, f.pretrain_steps / 10);
        o.metrics_path = dir + "/pretrain.jsonl";
        o.out_dir = dir + "/start";
        train_ntp(model, opt, tokenizer, corpus, o, state);
    }

    stage("3. filter: top-16 entropy of every position, the start checkpoint as proxy");
    std::vector<std::vector<int32_t>> scored_docs;
    std::vector<int64_t> scored_ids;
    for (size_t i = 0; i < std::min(f.filter_docs, train_ids.size()); ++i) scored_ids.push_back(train_ids[i]);
    scored_ids.insert(scored_ids.end(), heldout_ids.begin(), heldout_ids.end());
    for (int64_t id : scored_ids) scored_docs.push_back(docs[size_t(id)]);
    const std::vector<ScoredPosition> scored =
        score_positions(model, scored_docs, scored_ids, config.max_position_embeddings, kFilterBatch);
    write_positions(dir + "/positions.jsonl", scored);
    const EntropySplits splits;
    std::vector<ScoredPosition> train_positions, eval_positions;
    for (const ScoredPosition& p : scored) {
        if (!(p.entropy > splits.easy)) continue;
        (is_heldout(f.seed, size_t(p.doc), kHeldoutFraction) ? eval_positions : train_positions).push_back(p);
    }
    std::fprintf(stderr, "all scored: %s\n", describe_splits(scored, splits).c_str());
    eval_positions = subsample_positions(eval_positions, f.eval_positions);
    std::vector<ScoredPosition> hard_positions = subsample_positions(positions_above(eval_positions, splits.hard),
                                                                     f.eval_positions / 3);
    std::fprintf(stderr, "training positions (entropy > %.1f): %zu; held-out evaluation positions: %zu (%zu hard)\n",
                 splits.easy, train_positions.size(), eval_positions.size(), hard_positions.size());

    EvalOptions eval;
    eval.context_tokens = kContextTokens;
    eval.max_new_tokens = 6;
    eval.seed = f.seed;
    auto hard_eval = [&](Transformer& m, nlohmann::json& record) {
        const EvalReport r = evaluate_positions(m, tokenizer, format, docs, hard_positions, splits, eval);
        record["eval_hard_standard"] = r.hard().standard;
        record["eval_hard_reasoning"] = r.hard().reasoning;
    };

    stage("4. evaluate the start checkpoint");
    const EvalReport start_report = evaluate_positions(model, tokenizer, format, docs, eval_positions, splits, eval);
    std::fprintf(stderr, "start checkpoint: format rate %.2f, mean reasoning reward %.3f (easy split, greedy)\n",
                 start_report.easy().format, start_report.easy().reasoning);

    stage("5. RPT from the start checkpoint");
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
    rpt.metrics_path = dir + "/rpt.jsonl";
    rpt.out_dir = dir + "/rpt";
    rpt.log_every = std::max(1, f.rpt_steps / 10);
    const int64_t rpt_eval_every = std::max(1, f.rpt_steps / f.eval_points);
    double rpt_flops = 0;
    {
        Transformer policy(read_checkpoint_config(dir + "/start"), ctx, precision);
        load_checkpoint_weights(dir + "/start", policy);
        AdamW opt(policy.layout(), ctx);
        TrainerState state;
        train_rpt(policy, opt, tokenizer, format, docs, train_positions, rpt, state,
                  [&](const RptStepRecord& rec, nlohmann::json& record) {
                      rpt_flops += rec.flops;
                      if (rec.step % rpt_eval_every == 0 || rec.step == rpt.steps) hard_eval(policy, record);
                  });
    }

    stage("6. continued NTP from the start checkpoint at equal compute");
    NtpOptions ntp;
    ntp.batch_size = kPretrainBatch;
    ntp.seq_len = config.max_position_embeddings;
    const double ntp_step_flops = training_flops_per_token(config, ntp.seq_len) * double(ntp.batch_size) * ntp.seq_len;
    ntp.steps = std::max<int64_t>(1, int64_t(std::ceil(rpt_flops / ntp_step_flops)));
    ntp.warmup_steps = 0;
    ntp.min_lr_ratio = 1.0f;
    ntp.adamw.lr = kNtpContinueLr;
    ntp.adamw.weight_decay = 0.1f;
    ntp.eval_every = 0;
    ntp.eval_docs = 32;
    ntp.seed = f.seed + 1;
    ntp.log_every = std::max<int64_t>(1, ntp.steps / 5);
    ntp.metrics_path = dir + "/ntp.jsonl";
    ntp.out_dir = dir + "/ntp";
    std::fprintf(stderr, "RPT used %.2f TFLOP; continued NTP gets %lld steps of %.3f TFLOP\n", rpt_flops * 1e-12,
                 (long long)ntp.steps, ntp_step_flops * 1e-12);
    const int64_t ntp_eval_every = std::max<int64_t>(1, ntp.steps / f.eval_points);
    {
        Transformer cont(read_checkpoint_config(dir + "/start"), ctx, precision);
        load_checkpoint_weights(dir + "/start", cont);
        AdamW opt(cont.layout(), ctx);
        TrainerState state;
        train_ntp(cont, opt, tokenizer, corpus, ntp, state, [&](int64_t step, nlohmann::json& record) {
            if (step % ntp_eval_every == 0 || step == ntp.steps) hard_eval(cont, record);
        });
    }

    stage("7. evaluation on held-out positions");
    std::vector<std::pair<std::string, EvalReport>> rows = {{"start", start_report}};
    for (const char* name : {"ntp", "rpt"}) {
        Transformer m(read_checkpoint_config(dir + "/" + name), ctx, precision);
        load_checkpoint_weights(dir + "/" + name, m);
        rows.emplace_back(name == std::string("ntp") ? "NTP-continued" : "RPT",
                          evaluate_positions(m, tokenizer, format, docs, eval_positions, splits, eval));
    }
    std::printf("\nrpt demo%s: tiny model, %zu documents, %d pre-training steps, %d RPT steps (%d contexts x %d "
                "rollouts) vs %lld continued-NTP steps at equal compute (%.2f TFLOP)\n\n",
                f.quick ? " --quick" : "", texts.size(), f.pretrain_steps, f.rpt_steps, rpt.contexts,
                rpt.group_size, (long long)ntp.steps, rpt_flops * 1e-12);
    print_eval_table(rows, true);

    nlohmann::json summary = {{"quick", f.quick}, {"seed", f.seed}, {"rpt_flops", rpt_flops},
                              {"ntp_steps", ntp.steps}, {"rpt_steps", f.rpt_steps}};
    for (const auto& [name, report] : rows)
        for (const SplitResult& s : report.splits)
            summary["results"][name][s.name] = {{"standard", s.standard}, {"reasoning", s.reasoning},
                                                {"format", s.format}, {"positions", s.positions}};
    write_file_atomic(dir + "/summary.json", summary.dump(2) + "\n");
    plot_metrics({{dir + "/rpt.jsonl", "RPT"}, {dir + "/ntp.jsonl", "NTP-continued"}}, dir + "/curves.svg", "flops");
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    std::printf("\nwrote %s/summary.json and %s/curves.svg (%.0f s in all)\n", dir.c_str(), dir.c_str(), seconds);
}

}  // namespace

void add_demo_command(CLI::App& app) {
    CLI::App* cmd = app.add_subcommand("demo", "the whole RPT pipeline on the built-in corpus (make run)");
    auto f = std::make_shared<DemoFlags>();
    cmd->add_option("--out", f->out, "output directory");
    cmd->add_flag("--quick", f->quick, "a small run (about 2 minutes) for CI");
    add_overwrite_flag(*cmd, f->overwrite, OutputRule::demo);
    cmd->add_option("--seed", f->seed, "seed of everything");
    cmd->add_option("--device", f->device, "auto, cpu or cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
    add_precision_flag(*cmd, f->precision);
    cmd->add_option("--rpt-steps", f->rpt_steps, "RPT steps")->check(positive());
    cmd->add_option("--pretrain-steps", f->pretrain_steps, "pre-training steps")->check(positive());
    cmd->add_option("--format-share", f->format_share, "share of pre-training tokens in template-formatted examples")
        ->check(closed_range(0.0, 0.9));
    f->corpus.add_file_flags_to(*cmd);
    cmd->callback([f]() { run_demo(*f); });
}

}  // namespace rpt::cli
