// One seed of the demo's comparison (see demo_run.h), stage by stage.
#include "tools/cli/demo_run.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "kernels/rng.h"
#include "model/bpe_trainer.h"
#include "model/checkpoint.h"
#include "model/file_io.h"
#include "model/flops.h"
#include "model/recompute.h"
#include "rl/corpus.h"
#include "rl/ntp_trainer.h"
#include "rl/positions.h"
#include "rl/reasoning_examples.h"
#include "rl/rpt_trainer.h"
#include "rl/special_tokens.h"
#include "rl/synth_corpus.h"
#include "rl/templates.h"
#include "rl/token_data.h"
#include "tools/cli/rpt_flags.h"

namespace rpt::cli {

const EvalReport& DemoSeedResult::row(const std::string& name) const {
    for (const auto& [n, r] : rows)
        if (n == name) return r;
    throw std::logic_error("no demo row " + name);
}

namespace {

constexpr double kHeldoutFraction = 0.1;
constexpr double kValidationFraction = 0.5;  // of the held-out documents: the grids' positions
constexpr int kContextTokens = 48;
constexpr int kFilterBatch = 16;

void stage(const char* what) { std::fprintf(stderr, "\n== %s\n", what); }

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

// The seed's run: its flags, seed, directory and device.
struct SeedRun {
    const DemoFlags& f;
    uint64_t seed;
    std::string dir;
    const OpContext& ctx;
    std::string path(const std::string& name) const { return dir + "/" + name; }
};

DemoData prepare_corpus(const SeedRun& run) {
    const DemoFlags& f = run.f;
    std::vector<std::string> texts = f.corpus.path.empty() ? synth_corpus(run.seed, f.docs) : f.corpus.load();
    write_jsonl_corpus(run.path("corpus.jsonl"), texts);
    Tokenizer tokenizer = train_bpe(texts, model_preset("tiny").vocab_size, default_special_tokens());
    tokenizer.save(run.path("tokenizer.json"));
    const int32_t eot = *tokenizer.token_id(kEndOfText);
    PromptTemplate format = load_template("compact");
    TemplateTokens template_tokens = bind_template(format, tokenizer);
    auto docs = tokenize_documents(texts, tokenizer);
    std::vector<std::vector<int32_t>> train_docs;
    std::vector<int64_t> train_ids, heldout_ids;
    for (size_t i = 0; i < docs.size(); ++i) {
        if (is_heldout(run.seed, i, kHeldoutFraction)) heldout_ids.push_back(int64_t(i));
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

// The template examples of pre-training: worked ones on the built-in corpus, plain
// (empty-trace) ones on any other.
void mix_template_examples(const SeedRun& run, const DemoData& d, TokenizedCorpus& corpus) {
    if (!run.f.corpus.path.empty()) {
        mix_format_examples(corpus.train_stream, d.train_docs, d.template_tokens,
                            {d.eot, run.f.format_share, kContextTokens, run.seed});
        std::fprintf(stderr, "template examples with empty traces (a JSONL corpus has no worked traces)\n");
        return;
    }
    ReasoningMix mix;
    mix.end_of_text = d.eot;
    mix.share = run.f.format_share;
    mix.context_tokens = kContextTokens;
    mix.seed = run.seed;
    const ReasoningMixStats st = mix_reasoning_examples(corpus.train_stream, d.train_docs, d.tokenizer,
                                                        d.template_tokens, mix);
    std::fprintf(stderr, "%zu worked examples (%zu with a trace, %.1f trace tokens on average), %.1f%% of the stream\n",
                 st.examples, st.with_trace, st.with_trace ? double(st.trace_tokens) / double(st.with_trace) : 0.0,
                 100.0 * double(st.tokens) / double(corpus.train_stream.size()));
}

// Pre-training of `model` from its initial weights; the start checkpoint goes to start/.
void pretrain(const SeedRun& run, const DemoData& d, const TokenizedCorpus& corpus, Transformer& model) {
    const DemoFlags& f = run.f;
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
    o.seed = run.seed;
    o.log_every = std::max(1, f.pretrain_steps / 10);
    o.metrics_path = run.path("pretrain.jsonl");
    o.out_dir = run.path("start");
    train_ntp(model, opt, d.tokenizer, corpus, o, state);
}

// The positions every evaluation reads: held-out documents split into validation (the
// grids) and evaluation (the table), both above the easy threshold.
struct DemoPositions {
    std::vector<ScoredPosition> train;
    std::vector<ScoredPosition> eval;       // the table's, uniformly drawn so the nested splits stay unbiased
    std::vector<ScoredPosition> curve;      // hard evaluation positions scored along the runs
    std::vector<ScoredPosition> validation; // hard validation positions the grids are scored on
};

// Up to `hard_wanted` hard positions: the uniform subsample of `all` that holds them.
std::vector<ScoredPosition> subsample_for_hard(const std::vector<ScoredPosition>& all, float hard, size_t hard_wanted) {
    const size_t n_hard = positions_above(all, hard).size();
    if (n_hard == 0) return subsample_positions(all, hard_wanted);
    const size_t n = size_t(std::ceil(double(hard_wanted) * double(all.size()) / double(n_hard)));
    return subsample_positions(all, n);
}

DemoPositions filter_positions(const SeedRun& run, const DemoData& d, Transformer& proxy, const EntropySplits& splits) {
    const DemoFlags& f = run.f;
    std::vector<std::vector<int32_t>> scored_docs;
    std::vector<int64_t> scored_ids;
    for (size_t i = 0; i < std::min(f.filter_docs, d.train_ids.size()); ++i) scored_ids.push_back(d.train_ids[i]);
    scored_ids.insert(scored_ids.end(), d.heldout_ids.begin(), d.heldout_ids.end());
    for (int64_t id : scored_ids) scored_docs.push_back(d.docs[size_t(id)]);
    const std::vector<ScoredPosition> scored =
        score_positions(proxy, scored_docs, scored_ids, proxy.config().max_position_embeddings, kFilterBatch);
    write_positions(run.path("positions.jsonl"), scored);
    DemoPositions out;
    std::vector<ScoredPosition> eval_all, validation_all;
    for (const ScoredPosition& p : scored) {
        if (!(p.entropy > splits.easy)) continue;
        if (!is_heldout(run.seed, size_t(p.doc), kHeldoutFraction)) out.train.push_back(p);
        else if (is_heldout(run.seed + 1, size_t(p.doc), kValidationFraction)) validation_all.push_back(p);
        else eval_all.push_back(p);
    }
    std::fprintf(stderr, "all scored: %s\n", describe_splits(scored, splits).c_str());
    out.eval = subsample_for_hard(eval_all, splits.hard, f.eval_hard_positions);
    out.curve = subsample_positions(positions_above(out.eval, splits.hard), f.curve_positions);
    out.validation = subsample_positions(positions_above(validation_all, splits.hard), f.grid_positions);
    std::fprintf(stderr, "training positions (entropy > %.1f): %zu; held-out evaluation positions: %zu (%zu hard); "
                 "hard validation positions for the grids: %zu\n", splits.easy, out.train.size(), out.eval.size(),
                 positions_above(out.eval, splits.hard).size(), out.validation.size());
    return out;
}

// Evaluates a model on a position set with the demo's options.
struct DemoEvaluator {
    const DemoData& data;
    EntropySplits splits;
    EvalOptions options;
    EvalReport operator()(Transformer& m, const std::vector<ScoredPosition>& positions) const {
        return evaluate_positions(m, data.tokenizer, data.format, data.docs, positions, splits, options);
    }
    // The hard split's accuracy in one mode (positions all hard).
    double hard_score(Transformer& m, const std::vector<ScoredPosition>& positions, EvalMode mode) const {
        const EvalReport r = (*this)(m, positions);
        return mode == EvalMode::standard ? r.hard().standard : r.hard().reasoning;
    }
};

// Which positions are inside a computed value (what a worked trace can help with).
std::vector<uint8_t> computed_flags(const DemoData& d, const std::vector<ScoredPosition>& positions) {
    std::vector<uint8_t> flags;
    for (const ScoredPosition& p : positions) {
        const std::vector<int32_t>& doc = d.docs[size_t(p.doc)];
        const std::vector<int32_t> prefix(doc.begin(), doc.begin() + p.position);
        flags.push_back(computed_value_at(d.tokenizer.decode(prefix)).has_value());
    }
    return flags;
}

// A checkpoint of this seed's run, ready to train or evaluate: --recompute set (a model
// that only evaluates never runs backward, so it changes nothing there).
std::unique_ptr<Transformer> load_model(const SeedRun& run, const std::string& name) {
    const std::string dir = run.path(name);
    auto m = std::make_unique<Transformer>(read_checkpoint_config(dir), run.ctx,
                                           resolve_precision(run.f.precision, run.ctx.device));
    m->set_recompute(parse_recompute(run.f.recompute));
    load_checkpoint_weights(dir, *m);
    return m;
}

// One RPT run from the start checkpoint: `steps` at `lr` into `name`/, the curve positions
// evaluated along the way when given; returns its training FLOPs.
double run_rpt(const SeedRun& run, const DemoEvaluator& eval, const DemoPositions& pos, float lr, int64_t steps,
               const std::string& name, bool curves) {
    const DemoFlags& f = run.f;
    RptOptions rpt;
    rpt.contexts = 16;
    rpt.group_size = 8;
    rpt.max_new_tokens = f.response_tokens;
    rpt.context_tokens = kContextTokens;
    rpt.temperature = 0.8f;
    rpt.steps = steps;
    rpt.adamw.lr = lr;
    rpt.adamw.weight_decay = 0.0f;
    rpt.seed = run.seed;
    rpt.metrics_path = run.path(name + ".jsonl");
    rpt.out_dir = run.path(name);
    rpt.log_every = std::max<int64_t>(1, steps / 10);
    const int64_t eval_every = std::max<int64_t>(1, steps / f.eval_points);
    double flops = 0;
    const std::unique_ptr<Transformer> policy = load_model(run, "start");
    AdamW opt(policy->layout(), run.ctx);
    TrainerState state;
    train_rpt(*policy, opt, eval.data.tokenizer, eval.data.format, eval.data.docs, pos.train, rpt, state,
              [&](const RptStepRecord& rec, nlohmann::json& record) {
                  flops += rec.flops;
                  if (!curves || !(rec.step % eval_every == 0 || rec.step == rpt.steps)) return;
                  const EvalReport r = eval(*policy, pos.curve);
                  record["eval_hard_standard"] = r.hard().standard;
                  record["eval_hard_reasoning"] = r.hard().reasoning;
              });
    return flops;
}

// The NTP step count whose FLOPs match `flops`.
int64_t ntp_steps_for(const SeedRun& run, const ModelConfig& config, double flops) {
    const int seq = config.max_position_embeddings;
    const double step_flops = training_flops_per_token(config, seq) * double(run.f.pretrain_batch) * seq;
    return std::max<int64_t>(1, int64_t(std::ceil(flops / step_flops)));
}

// One continued-NTP run from the start checkpoint on the pre-training stream (the same
// documents and template examples).
void run_ntp(const SeedRun& run, const DemoEvaluator& eval, const DemoPositions& pos, const TokenizedCorpus& corpus,
             float lr, int64_t steps, const std::string& name, bool curves) {
    const DemoFlags& f = run.f;
    const std::unique_ptr<Transformer> cont = load_model(run, "start");
    NtpOptions ntp;
    ntp.batch_size = f.pretrain_batch;
    ntp.seq_len = cont->config().max_position_embeddings;
    ntp.steps = steps;
    ntp.warmup_steps = 0;
    ntp.min_lr_ratio = 1.0f;
    ntp.adamw.lr = lr;
    ntp.adamw.weight_decay = 0.1f;
    ntp.eval_every = 0;
    ntp.eval_docs = 32;
    ntp.seed = run.seed + 1;
    ntp.log_every = std::max<int64_t>(1, steps / 5);
    ntp.metrics_path = run.path(name + ".jsonl");
    ntp.out_dir = run.path(name);
    const int64_t eval_every = std::max<int64_t>(1, steps / f.eval_points);
    AdamW opt(cont->layout(), run.ctx);
    TrainerState state;
    train_ntp(*cont, opt, eval.data.tokenizer, corpus, ntp, state, [&](int64_t step, nlohmann::json& record) {
        if (!curves || !(step % eval_every == 0 || step == ntp.steps)) return;
        const EvalReport r = eval(*cont, pos.curve);
        record["eval_hard_standard"] = r.hard().standard;
        record["eval_hard_reasoning"] = r.hard().reasoning;
    });
}

std::string grid_name(const char* arm, float lr) { return fmt::format("grid/{}-lr{:.0e}", arm, lr); }

// The learning rate with the best validation score (the first on ties).
float pick_lr(const std::vector<GridTrial>& trials, const std::vector<float>& lrs) {
    if (trials.empty()) return lrs.front();
    const GridTrial* best = &trials.front();
    for (const GridTrial& t : trials)
        if (t.score > best->score) best = &t;
    return best->lr;
}

void print_grid(const char* arm, const char* mode, const std::vector<GridTrial>& trials, float chosen) {
    std::string line = fmt::format("{} grid (hard validation {} accuracy):", arm, mode);
    for (const GridTrial& t : trials) line += fmt::format(" lr {:.0e}: {:.1f}%", t.lr, 100 * t.score);
    std::fprintf(stderr, "%s -> lr %.0e\n", line.c_str(), chosen);
}

// The grids: each learning rate tried for grid_fraction of its arm's run and scored on
// the validation positions in the arm's own mode; a one-value grid is not tried.
float choose_rpt_lr(const SeedRun& run, const DemoEvaluator& eval, const DemoPositions& pos,
                    std::vector<GridTrial>& trials) {
    const DemoFlags& f = run.f;
    if (f.rpt_lrs.size() < 2) return f.rpt_lrs.front();
    const int64_t steps = std::max<int64_t>(1, int64_t(f.rpt_steps * f.grid_fraction));
    for (const float lr : f.rpt_lrs) {
        const std::string name = grid_name("rpt", lr);
        run_rpt(run, eval, pos, lr, steps, name, false);
        trials.push_back({lr, eval.hard_score(*load_model(run, name), pos.validation, EvalMode::reasoning), steps});
    }
    const float lr = pick_lr(trials, f.rpt_lrs);
    print_grid("RPT", "reasoning", trials, lr);
    return lr;
}

// NTP trials get grid_fraction of the full RPT run's FLOPs, as the RPT trials do.
float choose_ntp_lr(const SeedRun& run, const DemoEvaluator& eval, const DemoPositions& pos,
                    const TokenizedCorpus& corpus, int64_t full_steps, std::vector<GridTrial>& trials) {
    const DemoFlags& f = run.f;
    if (f.ntp_lrs.size() < 2) return f.ntp_lrs.front();
    const int64_t steps = std::max<int64_t>(1, int64_t(double(full_steps) * f.grid_fraction));
    for (const float lr : f.ntp_lrs) {
        const std::string name = grid_name("ntp", lr);
        run_ntp(run, eval, pos, corpus, lr, steps, name, false);
        trials.push_back({lr, eval.hard_score(*load_model(run, name), pos.validation, EvalMode::standard), steps});
    }
    const float lr = pick_lr(trials, f.ntp_lrs);
    print_grid("NTP-continued", "standard", trials, lr);
    return lr;
}

}  // namespace

DemoSeedResult run_demo_seed(const DemoFlags& f, uint64_t seed, const std::string& dir, const OpContext& ctx) {
    const auto t_start = std::chrono::steady_clock::now();
    const SeedRun run{f, seed, dir, ctx};
    DemoSeedResult out;
    out.seed = seed;
    out.dir = dir;

    stage("1. corpus and tokenizer");
    const DemoData data = prepare_corpus(run);
    out.documents = data.texts.size();
    out.worked_examples = f.corpus.path.empty();

    stage("2. NTP pre-training of the tiny model, with worked next-token-reasoning examples");
    ModelConfig config = model_preset("tiny");
    config.eos_token_id = data.eot;
    Transformer model(config, ctx, resolve_precision(f.precision, ctx.device));
    model.set_recompute(parse_recompute(f.recompute));
    model.init_weights(seed);
    TokenizedCorpus corpus = tokenize_corpus(data.texts, data.tokenizer, data.eot, seed, kHeldoutFraction);
    mix_template_examples(run, data, corpus);
    pretrain(run, data, corpus, model);

    stage("3. filter: top-16 entropy of every position, the start checkpoint as proxy");
    DemoEvaluator eval{data, EntropySplits{}, EvalOptions{}};
    eval.options.context_tokens = kContextTokens;
    eval.options.max_new_tokens = f.response_tokens;
    eval.options.seed = seed;
    const DemoPositions pos = filter_positions(run, data, model, eval.splits);
    out.eval_positions = pos.eval;
    out.computed = computed_flags(data, pos.eval);

    stage("4. evaluate the start checkpoint");
    out.rows.emplace_back("start", eval(model, pos.eval));
    std::fprintf(stderr, "start checkpoint, hard split: standard %.1f%%, reasoning %.1f%% (format %.2f)\n",
                 100 * out.rows.back().second.hard().standard, 100 * out.rows.back().second.hard().reasoning,
                 out.rows.back().second.hard().format);

    stage("5. RPT from the start checkpoint, its learning rate from a grid on validation positions");
    out.rpt_lr = choose_rpt_lr(run, eval, pos, out.rpt_grid);
    out.rpt_flops = run_rpt(run, eval, pos, out.rpt_lr, f.rpt_steps, "rpt", true);

    stage("6. continued NTP from the start checkpoint at equal compute, its learning rate from a grid");
    out.ntp_steps = ntp_steps_for(run, config, out.rpt_flops);
    std::fprintf(stderr, "RPT used %.2f TFLOP; continued NTP gets %lld steps\n", out.rpt_flops * 1e-12,
                 (long long)out.ntp_steps);
    out.ntp_lr = choose_ntp_lr(run, eval, pos, corpus, out.ntp_steps, out.ntp_grid);
    run_ntp(run, eval, pos, corpus, out.ntp_lr, out.ntp_steps, "ntp", true);

    stage("7. evaluation on held-out positions");
    out.rows.emplace_back("NTP-continued", eval(*load_model(run, "ntp"), pos.eval));
    out.rows.emplace_back("RPT", eval(*load_model(run, "rpt"), pos.eval));
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    return out;
}

}  // namespace rpt::cli
