#include "rl/rpt_trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "comm/comm.h"
#include "rl/dynamic_sampling.h"
#include "kernels/rng.h"
#include "model/flops.h"
#include "model/kv_cache.h"
#include "rl/metrics.h"
#include "rl/rank_sums.h"
#include "rl/response_bytes.h"
#include "rl/reward.h"
#include "rl/rollout.h"

namespace rpt {
namespace {

// Contexts drawn in refill round r of step k get ids ((k * kMaxRounds + r) * B + b): the
// sampler's key, unique per context and independent of which rank decodes it.
constexpr int64_t kMaxRounds = 4;

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// What a step sampled, summed over this rank's responses, then over all ranks.
struct SampleSums {
    double reward = 0;
    double in_format = 0;         // responses with a prediction
    double response_tokens = 0;
    double reasoning_tokens = 0;  // tokens before the first think_close
    double slots = 0;             // responses kept for the update
    double groups_seen = 0;       // groups decoded, refills included
    double uniform_groups = 0;    // of which all G rewards were equal
    double generated = 0;         // tokens decoded
    double decode_rows = 0;
};

struct ContextBatch {
    std::vector<std::vector<int32_t>> prompts;
    std::vector<int64_t> ids;
    std::vector<TruthSpan> truths;
};

// Rank r of N draws the contexts b = j * N + r of the step's global batch: the pick and
// the sampler key depend on b alone, so N ranks draw and sample what one rank would.
ContextBatch draw_contexts(const TemplateTokens& tokens, const std::vector<std::vector<int32_t>>& docs,
                           const std::vector<ScoredPosition>& positions, const RptOptions& o, int64_t step, int round,
                           int count, int rank, int ranks) {
    ContextBatch batch;
    for (int j = 0; j < count; ++j) {
        const int b = j * ranks + rank;
        const uint64_t pick = hash_keys(o.seed, uint64_t(step), uint64_t(round), uint64_t(b)) % positions.size();
        const ScoredPosition& p = positions[pick];
        const auto& doc = docs.at(size_t(p.doc));
        batch.prompts.push_back(build_prompt(tokens, doc, size_t(p.position), o.context_tokens));
        batch.ids.push_back((step * kMaxRounds + round) * o.contexts + b);
        batch.truths.push_back({&doc, size_t(p.position)});
    }
    return batch;
}

// Appends the groups of `more` whose rewards are not all equal (or all groups when
// keep_uniform) to `into`.
void keep_groups(const ContextBatch& more, const RolloutResult& rollouts, const RewardResult& rewards, int G,
                 bool keep_uniform, int limit, ContextBatch& into, RolloutResult& into_rollouts,
                 RewardResult& into_rewards) {
    for (size_t b = 0; b < more.prompts.size() && int(into.prompts.size()) < limit; ++b) {
        const auto first = rewards.rewards.begin() + int64_t(b) * G;
        const bool uniform = std::all_of(first, first + G, [&](float r) { return r == *first; });
        if (uniform && !keep_uniform) continue;
        into.prompts.push_back(more.prompts[b]);
        into.ids.push_back(more.ids[b]);
        into.truths.push_back(more.truths[b]);
        for (int g = 0; g < G; ++g) {
            const size_t s = b * size_t(G) + size_t(g);
            into_rollouts.responses.push_back(rollouts.responses[s]);
            into_rollouts.sampler_logprobs.push_back(rollouts.sampler_logprobs[s]);
            into_rewards.rewards.push_back(rewards.rewards[s]);
            into_rewards.prediction_len.push_back(rewards.prediction_len[s]);
        }
    }
}

}  // namespace

void train_rpt(Transformer& model, AdamW& optimizer, const Tokenizer& tokenizer, const PromptTemplate& format,
               const std::vector<std::vector<int32_t>>& docs, const std::vector<ScoredPosition>& positions,
               const RptOptions& o, TrainerState& state, const RptStepHook& hook) {
    if (positions.empty()) throw std::invalid_argument("RPT needs training positions (none passed the filter)");
    const ModelConfig& config = model.config();
    const TemplateTokens tokens = bind_template(format, tokenizer);
    const RewardScorer scorer(tokenizer, format, model.context(), o.truth_tokens,
                              response_byte_capacity(tokenizer, o.max_new_tokens), o.reward);
    const int G = o.group_size;
    Comm* comm = optimizer.comm();
    const int rank = comm ? comm->rank() : 0, ranks = comm ? comm->size() : 1;
    const bool root = rank == 0;
    if (o.contexts % ranks != 0)
        throw std::invalid_argument(fmt::format("--contexts {} must be divisible by the {} ranks (groups never "
                                                "straddle ranks)", o.contexts, ranks));
    const int local_contexts = o.contexts / ranks;
    const bool resumed = state.step > 0;
    MetricsWriter metrics =
        o.metrics_path.empty() || !root ? MetricsWriter() : MetricsWriter(o.metrics_path, resumed);
    const int64_t end = o.stop_at > 0 ? std::min(o.stop_at, o.steps) : o.steps;
    ProgressClock clock(state.step, end);
    const int32_t think_close = tokens.think_close.size() == 1 ? tokens.think_close[0] : -1;

    RolloutSettings rs;
    rs.group_size = G;
    rs.max_new_tokens = o.max_new_tokens;
    rs.kv_budget_bytes = o.kv_budget_bytes;
    rs.kv_dtype = o.kv_dtype;
    rs.sampling.temperature = o.temperature;
    rs.sampling.top_p = o.top_p;
    rs.sampling.top_k = o.top_k;
    rs.sampling.seed = o.seed;
    GrpoSettings grpo = o.grpo;
    grpo.temperature = o.temperature;
    grpo.max_response_tokens = o.max_new_tokens;

    // The frozen reference of the optional KL term: the policy the run started from,
    // which a resumed run finds in its checkpoint.
    std::unique_ptr<Transformer> reference;
    if (grpo.loss.kl_beta > 0) {
        reference = std::make_unique<Transformer>(config, model.context(), model.precision());
        if (!o.resume_dir.empty() && has_reference_weights(o.resume_dir)) {
            load_reference_weights(o.resume_dir, *reference);
        } else {
            if (resumed && root && !o.quiet)
                std::fprintf(stderr, "warning: %s has no reference.safetensors: the KL reference is the resumed "
                             "policy\n", o.resume_dir.c_str());
            ops::copy(model.context(), reference->params().flat, model.params().flat);
            reference->refresh_working();
        }
    }
    {
        // The largest cache a step can need, reported once and checked against the budget now
        // rather than after the first rollouts.
        size_t longest_prompt = tokens.prefix.size() + tokens.suffix.size() + size_t(o.context_tokens);
        const KvCacheShape shape{local_contexts, G, int(longest_prompt), o.max_new_tokens, o.kv_dtype};
        const DeviceKind device = model.context().device;
        const size_t kv = KvCache::kv_bytes(config, shape, device);
        if (!o.quiet && root)
            std::fprintf(stderr, "KV cache: %.1f MiB per rollout batch in %s (%d contexts x %d rollouts per rank, "
                         "budget %.0f MiB)\n",
                         double(kv) / 1048576.0, dtype_name(resolve_kv_dtype(o.kv_dtype, device)), local_contexts, G,
                         double(o.kv_budget_bytes) / 1048576.0);
        KvCache::check_budget(config, shape, device, o.kv_budget_bytes);
    }

    for (int64_t step = state.step + 1; step <= end; ++step) {
        RptStepRecord rec;
        rec.step = step;
        rs.sampling.step = uint64_t(step);

        // Rollouts (and refills when dynamic sampling drops uniform groups).
        ContextBatch batch;
        RolloutResult rollouts;
        rollouts.group_size = G;
        RewardResult rewards;
        int64_t groups_seen = 0, uniform_groups = 0, generated = 0, decode_rows = 0;
        double flops = 0;
        const bool dynamic = dynamic_sampling_at(o, step);
        for (int round = 0; round < (dynamic ? o.max_refill_rounds + 1 : 1); ++round) {
            const int need = local_contexts - int(batch.prompts.size());
            if (need <= 0) break;
            const ContextBatch more = draw_contexts(tokens, docs, positions, o, step, round, need, rank, ranks);
            auto t0 = std::chrono::steady_clock::now();
            const RolloutResult r = generate_rollouts(model, more.prompts, more.ids, tokens.stop_ids, rs);
            rec.seconds_rollout += seconds_since(t0);
            rec.seconds_rollout_bookkeeping += r.bookkeeping_seconds;
            generated += r.generated_tokens;
            decode_rows += r.decode_rows;
            for (const auto& p : more.prompts) flops += double(p.size()) * forward_flops_per_token(config, double(p.size()));
            flops += double(r.decode_rows) * forward_flops_per_token(config, double(o.context_tokens + o.max_new_tokens));
            t0 = std::chrono::steady_clock::now();
            const RewardResult rw = scorer.score(r.responses, more.truths, G, &r.sampler_logprobs);
            rec.seconds_reward += seconds_since(t0);
            for (size_t b = 0; b < more.prompts.size(); ++b) {
                const auto first = rw.rewards.begin() + int64_t(b) * G;
                uniform_groups += std::all_of(first, first + G, [&](float x) { return x == *first; });
                ++groups_seen;
            }
            const bool last_round = !dynamic || round == o.max_refill_rounds;
            keep_groups(more, r, rw, G, !dynamic || last_round, local_contexts, batch, rollouts, rewards);
        }
        rollouts.contexts = int(batch.prompts.size());

        // Statistics of what was sampled, summed over ranks.
        const size_t S = rollouts.responses.size();
        SampleSums sums;
        sums.slots = double(S);
        sums.groups_seen = double(groups_seen);
        sums.uniform_groups = double(uniform_groups);
        sums.generated = double(generated);
        sums.decode_rows = double(decode_rows);
        for (size_t s = 0; s < S; ++s) {
            sums.reward += rewards.rewards[s];
            sums.in_format += rewards.prediction_len[s] >= 0 ? 1.0 : 0.0;
            sums.response_tokens += double(rollouts.responses[s].size());
            const auto& resp = rollouts.responses[s];
            const auto close = std::find(resp.begin(), resp.end(), think_close);
            sums.reasoning_tokens += double(close == resp.end() ? 0 : close - resp.begin());
        }
        sum_over_ranks<double>(comm, sums);
        if (comm) flops = comm->allreduce_sum(flops);
        const double all_slots = std::max(1.0, sums.slots);
        rec.reward_mean = sums.reward / all_slots;
        rec.format_rate = sums.in_format / all_slots;
        rec.response_len = sums.response_tokens / all_slots;
        rec.reasoning_len = sums.reasoning_tokens / all_slots;
        rec.all_equal_fraction = sums.groups_seen > 0 ? sums.uniform_groups / sums.groups_seen : 0.0;
        generated = int64_t(sums.generated);
        decode_rows = int64_t(sums.decode_rows);

        // GRPO update.
        rec.lr = cosine_lr(step, o.warmup_steps, o.steps, o.adamw.lr, o.min_lr_ratio);
        const auto t_update = std::chrono::steady_clock::now();
        rec.grpo = grpo_update(model, optimizer, reference.get(), batch.prompts, rollouts, rewards.rewards, grpo, float(rec.lr),
                               o.adamw);
        rec.seconds_update = seconds_since(t_update);
        flops += rec.grpo.flops;
        rec.flops = flops;
        rec.rollout_tokens_per_s = double(generated) / std::max(1e-9, rec.seconds_rollout);
        rec.train_tokens_per_s = double(rec.grpo.train_tokens) / std::max(1e-9, rec.seconds_update);
        state.step = step;

        nlohmann::json record = {
            {"step", step},
            {"reward_mean", rec.reward_mean},
            {"all_equal_fraction", rec.all_equal_fraction},
            {"format_rate", rec.format_rate},
            {"response_len", rec.response_len},
            {"reasoning_len", rec.reasoning_len},
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
            {"decode_rows", decode_rows},
            {"flops", rec.flops},
        };
        if (hook) hook(rec, record);
        if (!o.quiet && root && (step % o.log_every == 0 || step == end))
            std::fprintf(stderr,
                         "rpt step %5lld/%lld | reward %.3f | format %.2f | uniform %.2f | clip %.3f | "
                         "%6.0f rollout tok/s | %6.0f train tok/s | ETA %s\n",
                         (long long)step, (long long)o.steps, rec.reward_mean, rec.format_rate,
                         rec.all_equal_fraction, rec.grpo.clip_fraction, rec.rollout_tokens_per_s,
                         rec.train_tokens_per_s, format_duration(clock.eta(step)).c_str());
        metrics.write(record);
        if (!o.out_dir.empty() && ((o.checkpoint_every > 0 && step % o.checkpoint_every == 0) || step == end)) {
            state.rng_state = o.seed;
            state.data_cursor = uint64_t(step);
            save_checkpoint(o.out_dir, model, tokenizer, &optimizer, &state, reference.get());
        }
    }
}

}  // namespace rpt
