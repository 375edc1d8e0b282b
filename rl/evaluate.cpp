#include "rl/evaluate.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "rl/pass_at_k.h"
#include "rl/response_bytes.h"
#include "rl/reward.h"
#include "rl/rollout.h"

namespace rpt {

std::vector<ScoredPosition> subsample_positions(const std::vector<ScoredPosition>& positions, size_t n) {
    if (positions.size() <= n) return positions;
    std::vector<ScoredPosition> out;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) out.push_back(positions[i * positions.size() / n]);
    return out;
}

namespace {

// What every batch reads: the model, the corpus and template, and the options.
struct EvalRun {
    Transformer& model;
    const std::vector<std::vector<int32_t>>& docs;
    const std::vector<ScoredPosition>& positions;
    const TemplateTokens& tokens;
    const RewardScorer& scorer;
    const Tokenizer& tokenizer;
    const std::string& think_close;
    const EvalOptions& o;
};

// Standard mode for positions [p0, p0 + B): one row per position holding its context
// x_{t-k} .. x_{t-1}, right-padded (causal attention keeps pads out of the prediction
// at x_{t-1}).
void standard_batch(const EvalRun& run, size_t p0, int B, std::vector<PositionOutcome>& out) {
    int T = 1;
    for (int b = 0; b < B; ++b)
        T = std::max<int>(T, std::min<int>(run.o.context_tokens, run.positions[p0 + size_t(b)].position));
    std::vector<int32_t> input(size_t(B) * T, 0), targets(size_t(B) * T, -1);
    std::vector<int> last(static_cast<size_t>(B));
    for (int b = 0; b < B; ++b) {
        const ScoredPosition& p = run.positions[p0 + size_t(b)];
        const auto& doc = run.docs.at(size_t(p.doc));
        const int len = std::min<int>(run.o.context_tokens, p.position);
        std::copy(doc.begin() + (p.position - len), doc.begin() + p.position, input.begin() + int64_t(b) * T);
        last[size_t(b)] = b * T + len - 1;
    }
    HeadRequest request;
    request.argmax = true;
    run.model.forward(input.data(), targets.data(), B, T, request);
    const std::vector<int32_t> argmax = run.model.argmax_tokens();
    for (int b = 0; b < B; ++b) {
        const ScoredPosition& p = run.positions[p0 + size_t(b)];
        out[p0 + size_t(b)].standard_hit =
            argmax[size_t(last[size_t(b)])] == run.docs[size_t(p.doc)][size_t(p.position)];
    }
}

// Reasoning mode for positions [p0, p0 + B): n = o.samples rollouts per position under
// the template, scored by the reward; returns the tokens generated.
int64_t reasoning_batch(const EvalRun& run, size_t p0, int B, std::vector<PositionOutcome>& out) {
    std::vector<std::vector<int32_t>> prompts;
    std::vector<int64_t> ids;
    std::vector<TruthSpan> truths;
    for (int b = 0; b < B; ++b) {
        const ScoredPosition& p = run.positions[p0 + size_t(b)];
        const auto& doc = run.docs[size_t(p.doc)];
        prompts.push_back(build_prompt(run.tokens, doc, size_t(p.position), run.o.context_tokens));
        ids.push_back(int64_t(p0) + b);
        truths.push_back({&doc, size_t(p.position)});
    }
    RolloutSettings rs;
    const int n = run.o.samples;
    rs.group_size = n;
    rs.max_new_tokens = run.o.max_new_tokens;
    rs.kv_budget_bytes = run.o.kv_budget_bytes;
    rs.kv_dtype = run.o.kv_dtype;
    rs.kv_block_tokens = run.o.kv_block_tokens;
    rs.sampling.greedy = run.o.greedy;
    rs.sampling.temperature = run.o.temperature;
    rs.sampling.seed = run.o.seed;
    const RolloutResult rollouts = generate_rollouts(run.model, prompts, ids, run.tokens.stop_ids, rs);
    const RewardResult r = run.scorer.score(rollouts.responses, truths, n);
    for (int b = 0; b < B; ++b) {
        PositionOutcome& o = out[p0 + size_t(b)];
        const size_t first = size_t(b) * size_t(n);
        double rewards = 0;
        o.samples = n;
        for (size_t s = first; s < first + size_t(n); ++s) {
            rewards += r.rewards[s];
            o.correct += r.rewards[s] > 0;
            o.formatted += r.prediction_len[s] >= 0;
        }
        o.reward = float(rewards / n);
        o.response = run.tokenizer.decode_sampled(rollouts.responses[first]);
        const size_t close = run.think_close.empty() ? std::string::npos : o.response.find(run.think_close);
        const std::string trace = o.response.substr(0, close);
        o.trace_tokens = int(run.tokenizer.encode(trace).size());
        o.trace = check_trace(trace);
    }
    return rollouts.generated_tokens;
}

}  // namespace

SplitResult summarize_split(const char* name, float threshold, const std::vector<ScoredPosition>& positions,
                            const std::vector<PositionOutcome>& outcomes, int pass_k) {
    SplitResult s;
    s.name = name;
    s.threshold = threshold;
    s.pass_k = pass_k;
    double hits = 0, rewards = 0, formats = 0, trace_tokens = 0, passes = 0;
    int64_t checked = 0, correct = 0, rewarded = 0, rewarded_after_correct = 0;
    for (size_t i = 0; i < positions.size(); ++i) {
        if (!(positions[i].entropy > threshold)) continue;
        const PositionOutcome& o = outcomes[i];
        ++s.positions;
        hits += o.standard_hit;
        rewards += o.reward;
        if (o.samples > 0) formats += double(o.formatted) / o.samples;
        if (o.samples > 0 && pass_k > 0) passes += pass_at_k(o.samples, o.correct, pass_k);
        trace_tokens += o.trace_tokens;
        checked += o.trace.equations > 0;
        correct += o.trace.all_correct();
        rewarded += o.reward > 0;
        rewarded_after_correct += o.reward > 0 && o.trace.all_correct();
    }
    if (s.positions > 0) {
        s.standard = hits / double(s.positions);
        s.reasoning = rewards / double(s.positions);
        s.format = formats / double(s.positions);
        s.pass_at_k = passes / double(s.positions);
        s.trace_tokens = trace_tokens / double(s.positions);
    }
    if (checked > 0) s.traces_correct = double(correct) / double(checked);
    if (rewarded > 0) s.correct_from_trace = double(rewarded_after_correct) / double(rewarded);
    return s;
}

void check_eval_samples(const EvalOptions& o) {
    if (o.samples < 1) throw std::invalid_argument(fmt::format("--samples {}: needs at least 1", o.samples));
    if (o.samples > 1 && o.greedy)
        throw std::invalid_argument(fmt::format("--samples {}: greedy rollouts would all be the same; add --sampled",
                                                o.samples));
    if (o.pass_k < 0 || o.pass_k > o.samples)
        throw std::invalid_argument(fmt::format("--pass-k {}: must be in [1, --samples {}] (0: --samples)", o.pass_k,
                                                o.samples));
}

EvalReport evaluate_positions(Transformer& model, const Tokenizer& tokenizer, const PromptTemplate& format,
                              const std::vector<std::vector<int32_t>>& docs,
                              const std::vector<ScoredPosition>& positions, const EntropySplits& splits,
                              const EvalOptions& o) {
    check_eval_samples(o);
    const size_t n = positions.size();
    EvalReport report;
    report.outcomes.resize(n);
    std::vector<PositionOutcome>& results = report.outcomes;
    const TemplateTokens tokens = bind_template(format, tokenizer);
    const RewardScorer scorer(tokenizer, format, model.context(), o.truth_tokens,
                              response_byte_capacity(tokenizer, o.max_new_tokens));
    const EvalRun run{model, docs, positions, tokens, scorer, tokenizer, format.think_close, o};
    report.mode = o.greedy ? "greedy"
                           : o.samples > 1 ? fmt::format("sampled (T={}, {} per position)", o.temperature, o.samples)
                                           : fmt::format("sampled (T={})", o.temperature);
    report.samples = o.samples;
    const int pass_k = !o.reasoning ? 0 : o.pass_k > 0 ? o.pass_k : o.samples;
    // Positions per batch: `batch` rollouts in all, whatever the samples per position.
    const size_t per_batch = size_t(std::max(1, o.batch / o.samples));
    for (size_t p0 = 0; p0 < n; p0 += per_batch) {
        const int B = int(std::min(n - p0, per_batch));
        standard_batch(run, p0, B, results);
        if (o.reasoning) report.rollout_tokens += reasoning_batch(run, p0, B, results);
    }
    report.splits.push_back(summarize_split("easy", splits.easy, positions, results, pass_k));
    report.splits.push_back(summarize_split("medium", splits.medium, positions, results, pass_k));
    report.splits.push_back(summarize_split("hard", splits.hard, positions, results, pass_k));
    return report;
}

}  // namespace rpt
