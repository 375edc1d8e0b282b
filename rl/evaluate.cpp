#include "rl/evaluate.h"

#include <algorithm>

#include <fmt/format.h>

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

EvalReport evaluate_positions(Transformer& model, const Tokenizer& tokenizer, const PromptTemplate& format,
                              const std::vector<std::vector<int32_t>>& docs,
                              const std::vector<ScoredPosition>& positions, const EntropySplits& splits,
                              const EvalOptions& o) {
    const size_t n = positions.size();
    std::vector<uint8_t> standard_hit(n, 0);
    std::vector<float> reward(n, 0.0f);
    std::vector<uint8_t> in_format(n, 0);
    const TemplateTokens tokens = bind_template(format, tokenizer);
    const RewardScorer scorer(tokenizer, format, model.context(), o.truth_tokens,
                              response_byte_capacity(tokenizer, o.max_new_tokens));
    EvalReport report;
    report.mode = o.greedy ? "greedy" : fmt::format("sampled (T={})", o.temperature);

    for (size_t p0 = 0; p0 < n; p0 += size_t(o.batch)) {
        const int B = int(std::min(n - p0, size_t(o.batch)));
        // Standard mode: one row per position holding its context x_{t-k} .. x_{t-1},
        // right-padded (causal attention keeps pads out of the prediction at x_{t-1}).
        int T = 1;
        for (int b = 0; b < B; ++b) T = std::max<int>(T, std::min<int>(o.context_tokens, positions[p0 + b].position));
        std::vector<int32_t> input(size_t(B) * T, 0), targets(size_t(B) * T, -1);
        std::vector<int> last(static_cast<size_t>(B));
        for (int b = 0; b < B; ++b) {
            const ScoredPosition& p = positions[p0 + size_t(b)];
            const auto& doc = docs.at(size_t(p.doc));
            const int len = std::min<int>(o.context_tokens, p.position);
            std::copy(doc.begin() + (p.position - len), doc.begin() + p.position, input.begin() + int64_t(b) * T);
            last[size_t(b)] = b * T + len - 1;
        }
        HeadRequest request;
        request.argmax = true;
        model.forward(input.data(), targets.data(), B, T, request);
        const std::vector<int32_t> argmax = model.argmax_tokens();
        for (int b = 0; b < B; ++b) {
            const ScoredPosition& p = positions[p0 + size_t(b)];
            standard_hit[p0 + size_t(b)] = argmax[size_t(last[size_t(b)])] == docs[size_t(p.doc)][size_t(p.position)];
        }
        if (!o.reasoning) continue;

        // Reasoning mode: one rollout per position under the template, scored by the reward.
        std::vector<std::vector<int32_t>> prompts;
        std::vector<int64_t> ids;
        std::vector<TruthSpan> truths;
        for (int b = 0; b < B; ++b) {
            const ScoredPosition& p = positions[p0 + size_t(b)];
            prompts.push_back(build_prompt(tokens, docs[size_t(p.doc)], size_t(p.position), o.context_tokens));
            ids.push_back(int64_t(p0) + b);
            truths.push_back({&docs[size_t(p.doc)], size_t(p.position)});
        }
        RolloutSettings rs;
        rs.group_size = 1;
        rs.max_new_tokens = o.max_new_tokens;
        rs.kv_budget_bytes = o.kv_budget_bytes;
        rs.kv_dtype = o.kv_dtype;
        rs.sampling.greedy = o.greedy;
        rs.sampling.temperature = o.temperature;
        rs.sampling.seed = o.seed;
        const RolloutResult rollouts = generate_rollouts(model, prompts, ids, tokens.stop_ids, rs);
        report.rollout_tokens += rollouts.generated_tokens;
        const RewardResult r = scorer.score(rollouts.responses, truths, 1);
        for (int b = 0; b < B; ++b) {
            reward[p0 + size_t(b)] = r.rewards[size_t(b)];
            in_format[p0 + size_t(b)] = r.prediction_len[size_t(b)] >= 0;
        }
    }

    const std::pair<const char*, float> named[] = {{"easy", splits.easy}, {"medium", splits.medium},
                                                   {"hard", splits.hard}};
    for (const auto& [name, threshold] : named) {
        SplitResult s;
        s.name = name;
        s.threshold = threshold;
        double hits = 0, rewards = 0, formats = 0;
        for (size_t i = 0; i < n; ++i) {
            if (!(positions[i].entropy > threshold)) continue;
            ++s.positions;
            hits += standard_hit[i];
            rewards += reward[i];
            formats += in_format[i];
        }
        if (s.positions > 0) {
            s.standard = hits / double(s.positions);
            s.reasoning = rewards / double(s.positions);
            s.format = formats / double(s.positions);
        }
        report.splits.push_back(s);
    }
    return report;
}

}  // namespace rpt
