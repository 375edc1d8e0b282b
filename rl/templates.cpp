#include "rl/templates.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "kernels/rng.h"
#include "rl/special_tokens.h"

namespace rpt {

nlohmann::json PromptTemplate::to_json() const {
    return {{"name", name},           {"prompt_prefix", prompt_prefix}, {"prompt_suffix", prompt_suffix},
            {"think_close", think_close}, {"answer_open", answer_open}, {"answer_close", answer_close},
            {"brace_matched", brace_matched}, {"stop", stop}};
}

PromptTemplate PromptTemplate::from_json(const nlohmann::json& j, const std::string& source) {
    auto text = [&](const char* key) -> std::string {
        if (!j.contains(key) || !j[key].is_string())
            throw std::invalid_argument(fmt::format("{}: template field '{}' must be a string", source, key));
        return j[key].get<std::string>();
    };
    if (!j.is_object()) throw std::invalid_argument(fmt::format("{}: a template must be a JSON object", source));
    PromptTemplate t;
    // Optional fields are checked too: nlohmann's value() would throw a message that
    // names neither the file nor the field.
    if (j.contains("name") && !j["name"].is_string())
        throw std::invalid_argument(fmt::format("{}: template field 'name' must be a string", source));
    if (j.contains("brace_matched") && !j["brace_matched"].is_boolean())
        throw std::invalid_argument(fmt::format("{}: template field 'brace_matched' must be true or false", source));
    t.name = j.value("name", source);
    t.prompt_prefix = text("prompt_prefix");
    t.prompt_suffix = text("prompt_suffix");
    t.think_close = text("think_close");
    t.answer_open = text("answer_open");
    t.answer_close = text("answer_close");
    t.brace_matched = j.value("brace_matched", false);
    if (!j.contains("stop") || !j["stop"].is_array())
        throw std::invalid_argument(fmt::format("{}: template field 'stop' must be an array of strings", source));
    for (const auto& s : j["stop"]) {
        if (!s.is_string()) throw std::invalid_argument(fmt::format("{}: template field 'stop' must hold strings", source));
        t.stop.push_back(s.get<std::string>());
    }
    if (t.answer_open.empty()) throw std::invalid_argument(fmt::format("{}: template field 'answer_open' is empty", source));
    if (t.brace_matched && t.answer_open.back() != '{')
        throw std::invalid_argument(fmt::format("{}: brace_matched needs 'answer_open' to end with '{{'", source));
    return t;
}

ops::RewardFormat PromptTemplate::reward_format(int max_response_bytes) const {
    ops::RewardFormat f;
    f.think_close = think_close.empty() ? nullptr : think_close.c_str();
    f.answer_open = answer_open.c_str();
    f.answer_close = answer_close.c_str();
    f.brace_matched = brace_matched;
    f.max_response_bytes = max_response_bytes;
    return f;
}

TemplateTokens bind_template(const PromptTemplate& t, const Tokenizer& tokenizer) {
    TemplateTokens b;
    b.prefix = tokenizer.encode(t.prompt_prefix);
    b.suffix = tokenizer.encode(t.prompt_suffix);
    b.think_close = tokenizer.encode(t.think_close);
    b.answer_open = tokenizer.encode(t.answer_open);
    b.answer_close = tokenizer.encode(t.answer_close);
    for (const std::string& s : t.stop) {
        const std::vector<int32_t> ids = tokenizer.encode(s);
        if (ids.size() != 1)
            throw std::invalid_argument(fmt::format("template '{}': stop string '{}' is {} tokens with this tokenizer, "
                                                    "not one", t.name, s, ids.size()));
        b.stop_ids.push_back(ids[0]);
    }
    if (const auto eot = tokenizer.token_id(kEndOfText))
        if (std::find(b.stop_ids.begin(), b.stop_ids.end(), *eot) == b.stop_ids.end()) b.stop_ids.push_back(*eot);
    return b;
}

std::vector<int32_t> build_prompt(const TemplateTokens& t, const std::vector<int32_t>& doc, size_t position,
                                  int context_tokens) {
    if (position == 0 || position > doc.size())
        throw std::invalid_argument(fmt::format("position {} outside a document of {} tokens", position, doc.size()));
    const size_t begin = position > size_t(context_tokens) ? position - size_t(context_tokens) : 0;
    std::vector<int32_t> prompt = t.prefix;
    prompt.insert(prompt.end(), doc.begin() + int64_t(begin), doc.begin() + int64_t(position));
    prompt.insert(prompt.end(), t.suffix.begin(), t.suffix.end());
    return prompt;
}

std::vector<int32_t> format_example(const TemplateTokens& t, const std::vector<int32_t>& doc, size_t position,
                                    int context_tokens, int answer_tokens, const std::vector<int32_t>& trace) {
    std::vector<int32_t> ex = build_prompt(t, doc, position, context_tokens);
    ex.insert(ex.end(), trace.begin(), trace.end());
    ex.insert(ex.end(), t.think_close.begin(), t.think_close.end());
    ex.insert(ex.end(), t.answer_open.begin(), t.answer_open.end());
    const size_t end = std::min(doc.size(), position + size_t(std::max(1, answer_tokens)));
    ex.insert(ex.end(), doc.begin() + int64_t(position), doc.begin() + int64_t(end));
    ex.insert(ex.end(), t.answer_close.begin(), t.answer_close.end());
    return ex;
}

void mix_format_examples(std::vector<int32_t>& stream, const std::vector<std::vector<int32_t>>& docs,
                         const TemplateTokens& tokens, const FormatMix& mix) {
    const float share = mix.share;
    const uint64_t seed = mix.seed;
    if (share <= 0.0f) return;
    if (share >= 1.0f) throw std::invalid_argument("the share of formatted examples must be below 1");
    bool any = false;
    for (const auto& d : docs) any = any || d.size() >= 2;
    if (!any) throw std::invalid_argument("formatted examples need documents of at least two tokens");
    const size_t target = size_t(double(stream.size()) * share / (1.0 - share));
    std::vector<int32_t> examples;
    for (uint64_t i = 0; examples.size() < target; ++i) {
        const auto& doc = docs[hash_keys(seed, i, 1) % docs.size()];
        if (doc.size() < 2) continue;
        const size_t position = 1 + hash_keys(seed, i, 2) % (doc.size() - 1);
        const std::vector<int32_t> ex = format_example(tokens, doc, position, mix.context_tokens, 1);
        examples.insert(examples.end(), ex.begin(), ex.end());
        examples.push_back(mix.end_of_text);
    }
    stream.insert(stream.end(), examples.begin(), examples.end());
}

}  // namespace rpt
