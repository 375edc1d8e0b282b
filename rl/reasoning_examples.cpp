// reasoning_examples: worked examples drawn from the corpus (see reasoning_examples.h).
#include "rl/reasoning_examples.h"

#include <stdexcept>

#include "kernels/rng.h"

namespace rpt {
namespace {

// The text of each token of `doc` (byte-level tokens concatenate to the document).
std::vector<std::string> token_texts(const std::vector<int32_t>& doc, const Tokenizer& tokenizer) {
    std::vector<std::string> texts;
    texts.reserve(doc.size());
    for (const int32_t id : doc) texts.push_back(tokenizer.decode({id}));
    return texts;
}

}  // namespace

std::vector<ComputedPosition> computed_positions(const std::vector<int32_t>& doc, const Tokenizer& tokenizer) {
    const std::vector<std::string> texts = token_texts(doc, tokenizer);
    std::string text;
    for (const std::string& t : texts) text += t;
    std::vector<ComputedPosition> out;
    size_t offset = texts.empty() ? 0 : texts[0].size();
    for (size_t p = 1; p < doc.size(); offset += texts[p].size(), ++p) {
        std::optional<ComputedValue> v = computed_value_at(std::string_view(text).substr(0, offset));
        // The document must go on with the value (it always does in the built-in corpus).
        if (v && text.compare(offset, v->rest.size(), v->rest) == 0) out.push_back({p, std::move(*v)});
    }
    return out;
}

std::vector<int32_t> reasoning_example(const TemplateTokens& tokens, const Tokenizer& tokenizer,
                                       const std::vector<int32_t>& doc, size_t position,
                                       const ComputedValue* value, const ReasoningMix& mix, size_t* trace_tokens) {
    // The answer is one token, the one standard mode predicts: the prefix reward pays
    // nothing more for the value's later digits, and each is one more chance to be wrong.
    std::vector<int32_t> trace;
    if (value) trace = tokenizer.encode(worked_trace(*value, mix.max_trace_chars));
    if (trace_tokens) *trace_tokens = trace.size();
    return format_example(tokens, doc, position, mix.context_tokens, 1, trace);
}

ReasoningMixStats mix_reasoning_examples(std::vector<int32_t>& stream, const std::vector<std::vector<int32_t>>& docs,
                                         const Tokenizer& tokenizer, const TemplateTokens& tokens,
                                         const ReasoningMix& mix) {
    ReasoningMixStats stats;
    if (mix.share <= 0.0f) return stats;
    if (mix.share >= 1.0f) throw std::invalid_argument("the share of reasoning examples must be below 1");
    bool any = false;
    for (const auto& d : docs) any = any || d.size() >= 2;
    if (!any) throw std::invalid_argument("reasoning examples need documents of at least two tokens");
    const size_t target = size_t(double(stream.size()) * mix.share / (1.0 - mix.share));
    std::vector<int32_t> examples;
    for (uint64_t i = 0; examples.size() < target; ++i) {
        const auto& doc = docs[hash_keys(mix.seed, i, 1) % docs.size()];
        if (doc.size() < 2) continue;
        // Phase 1: the position, at a computed value with probability computed_share.
        size_t position = 1 + hash_keys(mix.seed, i, 2) % (doc.size() - 1);
        std::optional<ComputedValue> value;
        const bool want_computed = double(hash_keys(mix.seed, i, 3) % 1000000) < mix.computed_share * 1e6;
        const std::vector<ComputedPosition> computed = computed_positions(doc, tokenizer);
        if (want_computed && !computed.empty()) {
            const ComputedPosition& c = computed[hash_keys(mix.seed, i, 4) % computed.size()];
            position = c.position;
            value = c.value;
        } else {
            for (const ComputedPosition& c : computed)
                if (c.position == position) value = c.value;
        }
        // Phase 2: the example.
        size_t trace_tokens = 0;
        const std::vector<int32_t> ex =
            reasoning_example(tokens, tokenizer, doc, position, value ? &*value : nullptr, mix, &trace_tokens);
        examples.insert(examples.end(), ex.begin(), ex.end());
        examples.push_back(mix.end_of_text);
        ++stats.examples;
        stats.with_trace += trace_tokens > 0;
        stats.trace_tokens += trace_tokens;
    }
    stats.tokens = examples.size();
    stream.insert(stream.end(), examples.begin(), examples.end());
    return stats;
}

}  // namespace rpt
