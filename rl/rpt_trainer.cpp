#include "rl/rpt_trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "comm/comm.h"
#include "kernels/rng.h"
#include "model/flops.h"
#include "model/kv_cache.h"
#include "model/memory_plan.h"
#include "rl/dynamic_sampling.h"
#include "rl/rank_sums.h"
#include "rl/response_bytes.h"
#include "rl/reward.h"
#include "rl/rollout.h"
#include "rl/train_log.h"
#include "rl/training_compute.h"
#include "rl/worked_traces.h"

namespace rpt {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// What a step sampled, summed over this rank's responses, then over all ranks.
struct SampleSums {
    double reward = 0;
    double in_format = 0;         // responses with a prediction
    double response_tokens = 0;
    double reasoning_tokens = 0;  // tokens before the first think_close
    double checked_traces = 0;    // traces with at least one equation line
    double correct_traces = 0;    // of which every equation holds (rl/worked_traces.h)
    double slots = 0;             // responses kept for the update
    double groups_seen = 0;       // groups decoded, refills included
    double uniform_groups = 0;    // of which all G rewards were equal
    double generated = 0;         // tokens decoded
    double decode_rows = 0;
};

// Contexts with their G responses and rewards each, in context order.
struct Groups {
    std::vector<std::vector<int32_t>> prompts;  // (B) prompt tokens
    std::vector<int64_t> ids;                   // (B) the sampler's context keys
    std::vector<TruthSpan> truths;              // (B) where each ground truth starts
    RolloutResult rollouts;                     // S = B * G responses, context-major
    RewardResult rewards;                       // (S)
};

// What every step of a run reads, bound once.
struct RptRun {
    RptRun(const Transformer& model, const Tokenizer& tokenizer, const PromptTemplate& format,
           const std::vector<std::vector<int32_t>>& docs, const std::vector<ScoredPosition>& positions,
           const RptOptions& options, Comm* comm);

    const RptOptions& o;
    const Tokenizer& tokenizer;  // to read traces back as text
    const std::vector<std::vector<int32_t>>& docs;
    const std::vector<ScoredPosition>& positions;
    const TemplateTokens tokens;
    const RewardScorer scorer;
    const int G;
    Comm* const comm;
    const int rank, ranks;
    const int local_contexts;   // contexts per rank and step
    const int32_t think_close;  // -1 when the marker is not one token
    RolloutSettings rollout;    // sampling.step is set per step (sample_round)
    GrpoSettings grpo;
};

RptRun::RptRun(const Transformer& model, const Tokenizer& tokenizer, const PromptTemplate& format,
               const std::vector<std::vector<int32_t>>& docs_, const std::vector<ScoredPosition>& positions_,
               const RptOptions& options, Comm* comm_)
    : o(options),
      tokenizer(tokenizer),
      docs(docs_),
      positions(positions_),
      tokens(bind_template(format, tokenizer)),
      scorer(tokenizer, format, model.context(), options.truth_tokens,
             response_byte_capacity(tokenizer, options.max_new_tokens), options.reward),
      G(options.group_size),
      comm(comm_),
      rank(comm_ ? comm_->rank() : 0),
      ranks(comm_ ? comm_->size() : 1),
      local_contexts(options.contexts / ranks),
      think_close(tokens.think_close.size() == 1 ? tokens.think_close[0] : -1) {
    if (o.contexts % ranks != 0)
        throw std::invalid_argument(fmt::format("--contexts {} must be divisible by the {} ranks (groups never "
                                                "straddle ranks)", o.contexts, ranks));
    rollout.group_size = G;
    rollout.max_new_tokens = o.max_new_tokens;
    rollout.kv_budget_bytes = o.kv_budget_bytes;
    rollout.kv_dtype = o.kv_dtype;
    rollout.kv_block_tokens = o.kv_block_tokens;
    rollout.sampling.temperature = o.temperature;
    rollout.sampling.top_p = o.top_p;
    rollout.sampling.top_k = o.top_k;
    rollout.sampling.seed = o.seed;
    grpo = o.grpo;
    grpo.temperature = o.temperature;
    grpo.max_response_tokens = o.max_new_tokens;
}

// The frozen reference of the optional KL term (null without one): the policy the run
// started from, which a resumed run finds in its checkpoint.
std::unique_ptr<Transformer> make_reference(const RptRun& run, const Transformer& model, bool resumed) {
    if (run.grpo.loss.kl_beta <= 0) return nullptr;
    auto reference = std::make_unique<Transformer>(model.config(), model.context(), model.precision());
    // Forward only: it keeps each layer's input alone (the recomputation layout; nothing
    // is recomputed, as it never runs backward) instead of every layer's activations.
    reference->set_recompute(Recompute::layer);
    const RptOptions& o = run.o;
    if (!o.resume_dir.empty() && has_reference_weights(o.resume_dir)) {
        load_reference_weights(o.resume_dir, *reference);
        return reference;
    }
    if (resumed && run.rank == 0 && !o.quiet)
        std::fprintf(stderr, "warning: %s has no reference.safetensors: the KL reference is the resumed "
                     "policy\n", o.resume_dir.c_str());
    ops::copy(model.context(), reference->params().flat, model.params().flat);
    reference->refresh_working();
    return reference;
}

// The cache a rollout batch starts with and the largest it can grow to, reported once;
// the start is checked against the budget now rather than after the first rollouts (the
// pool's growth is checked as it happens, model/kv_cache.h).
void check_kv_budget(const RptRun& run, const Transformer& model) {
    const RptOptions& o = run.o;
    const size_t longest_prompt = run.tokens.prefix.size() + run.tokens.suffix.size() + size_t(o.context_tokens);
    const KvCacheShape shape{run.local_contexts, run.G, int(longest_prompt), o.max_new_tokens, o.kv_dtype,
                             model.precision(), o.kv_block_tokens};
    const DeviceKind device = model.context().device;
    if (!o.quiet && run.rank == 0)
        std::fprintf(stderr, "KV cache: %.1f MiB per rollout batch at most in %s (every response at "
                     "--max-new-tokens), from %.1f MiB, %s (%d contexts x %d rollouts per rank, budget %.0f MiB)\n",
                     double(KvCache::kv_bytes(model.config(), shape, device)) / 1048576.0,
                     dtype_name(resolve_kv_dtype(o.kv_dtype, device)),
                     double(KvCache::min_kv_bytes(model.config(), shape, device)) / 1048576.0,
                     shape.paged() ? fmt::format("in blocks of {} tokens that follow the live tokens",
                                                 o.kv_block_tokens).c_str()
                                   : "contiguous (--kv-block-tokens 0)",
                     run.local_contexts, run.G, double(o.kv_budget_bytes) / 1048576.0);
    KvCache::check_budget(model.config(), shape, device, o.kv_budget_bytes);
}

// The run's memory plan (model/memory_plan.h), printed once by rank 0: what `rpt plan`
// says for these settings.
void report_memory_plan(const RptRun& run, const Transformer& model, const AdamW& optimizer) {
    const RptOptions& o = run.o;
    if (o.quiet || run.rank != 0) return;
    PlanSettings s;
    s.run = PlanRun::rpt;
    s.device = model.context().device;
    s.precision = model.precision();
    s.recompute = model.recompute();
    s.ranks = run.ranks;
    s.zero = optimizer.zero_level();
    s.contexts = o.contexts;
    s.rollouts = run.G;
    s.prompt_tokens = int(run.tokens.prefix.size() + run.tokens.suffix.size()) + o.context_tokens;
    s.max_new_tokens = o.max_new_tokens;
    s.micro_batch_rows = run.grpo.micro_batch_rows;
    s.shared_prompt = run.grpo.prompt_layout == PromptLayout::shared;
    s.kl_reference = run.grpo.loss.kl_beta > 0;
    s.kv_dtype = o.kv_dtype;
    s.kv_block_tokens = o.kv_block_tokens;
    for (const std::string& line : plan_lines(model.config(), s, plan_memory(model.config(), s)))
        std::fprintf(stderr, "%s\n", line.c_str());
}

// Which contexts a sampling round draws: `count` of them in round `round` of step `step`.
struct ContextDraw {
    int64_t step = 0;
    int round = 0;
    int count = 0;
};

// Rank r of N draws the contexts b = j * N + r of the step's global batch: the pick and
// the sampler key depend on b alone, so N ranks draw and sample what one rank would.
Groups draw_contexts(const RptRun& run, const ContextDraw& draw) {
    Groups groups;
    for (int j = 0; j < draw.count; ++j) {
        const int b = j * run.ranks + run.rank;
        const uint64_t pick =
            hash_keys(run.o.seed, uint64_t(draw.step), uint64_t(draw.round), uint64_t(b)) % run.positions.size();
        const ScoredPosition& p = run.positions[pick];
        const auto& doc = run.docs.at(size_t(p.doc));
        groups.prompts.push_back(build_prompt(run.tokens, doc, size_t(p.position), run.o.context_tokens));
        // The sampler's key: unique per context, independent of which rank decodes it.
        groups.ids.push_back(
            sampling_context_key(draw.step, draw.round, b, run.o.contexts, run.o.max_refill_rounds));
        groups.truths.push_back({&doc, size_t(p.position)});
    }
    return groups;
}

// Whether the G rewards of context b are all equal (its advantages are all zero).
bool uniform_group(const RewardResult& rewards, size_t b, int G) {
    const auto first = rewards.rewards.begin() + int64_t(b) * G;
    return std::all_of(first, first + G, [&](float r) { return r == *first; });
}

// Appends the groups of `from` whose rewards are not all equal (or all groups when
// keep_uniform) to `into`, until it holds `limit` contexts.
void keep_groups(const Groups& from, int G, bool keep_uniform, int limit, Groups& into) {
    for (size_t b = 0; b < from.prompts.size() && int(into.prompts.size()) < limit; ++b) {
        if (uniform_group(from.rewards, b, G) && !keep_uniform) continue;
        into.prompts.push_back(from.prompts[b]);
        into.ids.push_back(from.ids[b]);
        into.truths.push_back(from.truths[b]);
        for (int g = 0; g < G; ++g) {
            const size_t s = b * size_t(G) + size_t(g);
            into.rollouts.responses.push_back(from.rollouts.responses[s]);
            into.rollouts.sampler_logprobs.push_back(from.rollouts.sampler_logprobs[s]);
            into.rewards.rewards.push_back(from.rewards.rewards[s]);
            into.rewards.prediction_len.push_back(from.rewards.prediction_len[s]);
        }
    }
}

// A step's sampling: the groups kept for the update and what every round cost.
struct StepSample {
    Groups kept;
    SampleSums sums;           // this rank's counts so far (the kept responses' sums come later)
    double rollout_flops = 0;  // prefill and decode, this rank's
};

// One round: roll out G responses for each drawn context and score them; its counts,
// FLOPs and seconds go into `sample` and `rec`.
Groups sample_round(const RptRun& run, Transformer& model, const ContextDraw& draw, StepSample& sample,
                    RptStepRecord& rec) {
    Groups groups = draw_contexts(run, draw);
    RolloutSettings rs = run.rollout;
    rs.sampling.step = uint64_t(draw.step);
    auto t0 = std::chrono::steady_clock::now();
    groups.rollouts = generate_rollouts(model, groups.prompts, groups.ids, run.tokens.stop_ids, rs);
    rec.seconds_rollout += seconds_since(t0);
    rec.seconds_rollout_bookkeeping += groups.rollouts.bookkeeping_seconds;
    sample.sums.generated += double(groups.rollouts.generated_tokens);
    sample.sums.decode_rows += double(groups.rollouts.decode_rows);
    rec.kv_peak_bytes = std::max(rec.kv_peak_bytes, groups.rollouts.kv_peak_bytes);
    rec.kv_peak_blocks = std::max(rec.kv_peak_blocks, groups.rollouts.kv_peak_blocks);
    const ModelConfig& config = model.config();
    for (const auto& p : groups.prompts)
        sample.rollout_flops += double(p.size()) * forward_flops_per_token(config, double(p.size()));
    sample.rollout_flops += double(groups.rollouts.decode_rows) *
                            forward_flops_per_token(config, double(run.o.context_tokens + run.o.max_new_tokens));
    t0 = std::chrono::steady_clock::now();
    groups.rewards = run.scorer.score(groups.rollouts.responses, groups.truths, run.G, &groups.rollouts.sampler_logprobs);
    rec.seconds_reward += seconds_since(t0);
    for (size_t b = 0; b < groups.prompts.size(); ++b) {
        sample.sums.uniform_groups += uniform_group(groups.rewards, b, run.G);
        ++sample.sums.groups_seen;
    }
    return groups;
}

// Rollouts, and refills while dynamic sampling drops uniform groups (the last round
// keeps whatever it draws).
StepSample collect_groups(const RptRun& run, Transformer& model, int64_t step, RptStepRecord& rec) {
    const RptOptions& o = run.o;
    StepSample sample;
    sample.kept.rollouts.group_size = run.G;
    run_sampling_rounds(dynamic_sampling_at(o, step), o.max_refill_rounds, run.local_contexts,
                        [&](const SamplingRound& r) {
                            const Groups groups = sample_round(run, model, {step, r.round, r.need}, sample, rec);
                            const size_t before = sample.kept.prompts.size();
                            keep_groups(groups, run.G, r.keep_uniform, run.local_contexts, sample.kept);
                            return int(sample.kept.prompts.size() - before);
                        });
    sample.kept.rollouts.contexts = int(sample.kept.prompts.size());
    return sample;
}

// The kept responses' statistics, summed over ranks with the round counts, into the
// step's record (rollout FLOPs of all ranks included).
void record_samples(const RptRun& run, StepSample& sample, RptStepRecord& rec) {
    const Groups& kept = sample.kept;
    SampleSums& sums = sample.sums;
    const size_t S = kept.rollouts.responses.size();
    sums.slots = double(S);
    for (size_t s = 0; s < S; ++s) {
        const auto& resp = kept.rollouts.responses[s];
        sums.reward += kept.rewards.rewards[s];
        sums.in_format += kept.rewards.prediction_len[s] >= 0 ? 1.0 : 0.0;
        sums.response_tokens += double(resp.size());
        const auto close = std::find(resp.begin(), resp.end(), run.think_close);
        sums.reasoning_tokens += double(close == resp.end() ? 0 : close - resp.begin());
        const TraceCheck trace = check_trace(run.tokenizer.decode_sampled(std::vector<int32_t>(resp.begin(), close)));
        sums.checked_traces += trace.equations > 0;
        sums.correct_traces += trace.all_correct();
    }
    sum_over_ranks<double>(run.comm, sums);
    rec.flops = run.comm ? run.comm->allreduce_sum(sample.rollout_flops) : sample.rollout_flops;
    const double all_slots = std::max(1.0, sums.slots);
    rec.reward_mean = sums.reward / all_slots;
    rec.format_rate = sums.in_format / all_slots;
    rec.response_len = sums.response_tokens / all_slots;
    rec.reasoning_len = sums.reasoning_tokens / all_slots;
    rec.traces_correct = sums.checked_traces > 0 ? sums.correct_traces / sums.checked_traces : 0.0;
    rec.all_equal_fraction = sums.groups_seen > 0 ? sums.uniform_groups / sums.groups_seen : 0.0;
    rec.groups_drawn = int64_t(sums.groups_seen);
    rec.decode_rows = int64_t(sums.decode_rows);
    rec.rollout_tokens_per_s = double(int64_t(sums.generated)) / std::max(1e-9, rec.seconds_rollout);
}

// The GRPO step on the kept groups at the step's learning rate; its FLOPs and
// throughput into the record.
void update_policy(const RptRun& run, Transformer& model, AdamW& optimizer, Transformer* reference,
                   const Groups& kept, RptStepRecord& rec) {
    const RptOptions& o = run.o;
    rec.lr = cosine_lr(rec.step, o.warmup_steps, o.steps, o.adamw.lr, o.min_lr_ratio);
    const auto t0 = std::chrono::steady_clock::now();
    rec.grpo = grpo_update(model, optimizer, reference, kept.prompts, kept.rollouts, kept.rewards.rewards, run.grpo,
                           float(rec.lr), o.adamw);
    rec.seconds_update = seconds_since(t0);
    rec.flops += rec.grpo.flops;
    rec.train_tokens_per_s = double(rec.grpo.train_tokens) / std::max(1e-9, rec.seconds_update);
}

nlohmann::json step_record(const RptStepRecord& rec) {
    return {
        {"step", rec.step},
        {"reward_mean", rec.reward_mean},
        {"all_equal_fraction", rec.all_equal_fraction},
        {"groups_drawn", rec.groups_drawn},
        {"format_rate", rec.format_rate},
        {"response_len", rec.response_len},
        {"reasoning_len", rec.reasoning_len},
        {"traces_correct", rec.traces_correct},
        {"clip_fraction", rec.grpo.clip_fraction},
        {"kl", rec.grpo.kl},
        {"entropy", rec.grpo.entropy},
        {"loss", rec.grpo.loss},
        {"grad_norm", rec.grpo.grad_norm},
        {"lr", rec.lr},
        {"rollout_tokens_per_s", rec.rollout_tokens_per_s},
        {"train_tokens_per_s", rec.train_tokens_per_s},
        {"seconds_rollout", rec.seconds_rollout},
        {"seconds_reward", rec.seconds_reward},
        {"seconds_update", rec.seconds_update},
        {"decode_rows", rec.decode_rows},
        {"kv_peak_bytes", rec.kv_peak_bytes},
        {"kv_peak_blocks", rec.kv_peak_blocks},
        {"flops", rec.flops},
    };
}

TrainLogSettings log_settings(const RptOptions& o, int64_t first_step, int rank) {
    TrainLogSettings s;
    s.label = "rpt step";
    s.step_width = 5;
    s.first_step = first_step;
    s.end = o.stop_at > 0 ? std::min(o.stop_at, o.steps) : o.steps;
    s.steps = o.steps;
    s.log_every = o.log_every;
    s.checkpoint_every = o.checkpoint_every;
    s.metrics_path = o.metrics_path;
    s.root = rank == 0;
    s.quiet = o.quiet;
    return s;
}

}  // namespace

void train_rpt(Transformer& model, AdamW& optimizer, const Tokenizer& tokenizer, const PromptTemplate& format,
               const std::vector<std::vector<int32_t>>& docs, const std::vector<ScoredPosition>& positions,
               const RptOptions& o, TrainerState& state, const RptStepHook& hook) {
    if (positions.empty()) throw std::invalid_argument("RPT needs training positions (none passed the filter)");
    const RptRun run(model, tokenizer, format, docs, positions, o, optimizer.comm());
    const TrainLogSettings ls = log_settings(o, state.step, run.rank);
    TrainLog log(ls);
    const std::unique_ptr<Transformer> reference = make_reference(run, model, state.step > 0);
    check_kv_budget(run, model);
    report_memory_plan(run, model, optimizer);

    for (int64_t step = state.step + 1; step <= ls.end; ++step) {
        RptStepRecord rec;
        rec.step = step;
        // ZeRO-3: the whole weights once per step's rollouts, not per layer: decoding runs
        // every layer once per generated token (hundreds of times per batch), a
        // different number of times on each rank, and a gather is a collective.
        model.gather_parameters();
        StepSample sample = collect_groups(run, model, step, rec);
        record_samples(run, sample, rec);
        update_policy(run, model, optimizer, reference.get(), sample.kept, rec);
        state.step = step;
        add_rpt_training_flops(state, rec.flops);

        nlohmann::json record = step_record(rec);
        if (hook) hook(rec, record);
        if (log.logs_at(step))
            log.progress(step, "reward %.3f | format %.2f | uniform %.2f | clip %.3f | %6.0f rollout tok/s | "
                         "%6.0f train tok/s | KV %.1f MiB", rec.reward_mean, rec.format_rate, rec.all_equal_fraction,
                         rec.grpo.clip_fraction, rec.rollout_tokens_per_s, rec.train_tokens_per_s,
                         double(rec.kv_peak_bytes) / 1048576.0);
        log.record(record);
        if (!o.out_dir.empty() && log.checkpoints_at(step)) {
            state.rng_state = o.seed;
            state.data_cursor = uint64_t(step);
            save_checkpoint(o.out_dir, model, tokenizer, &optimizer, &state, reference.get());
        }
    }
}

}  // namespace rpt
