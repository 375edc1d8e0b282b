// RPT prompt templates (DESIGN §1). A template is data: the text around the context,
// the markers that delimit the prediction in a response, and the stop strings. Built
// in (rl/template_catalog.cpp): a compact special-token template for models trained
// from scratch, and the paper's prompts v0-v6 (Table 10) in the R1-Distill chat frame,
// kept as rl/templates/v*.json; any other is read from a JSON file with the same fields.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/rl_ops.h"
#include "model/tokenizer.h"

namespace rpt {

struct PromptTemplate {
    std::string name;
    std::string prompt_prefix;  // text before the context
    std::string prompt_suffix;  // text after the context (ends where the model starts)
    std::string think_close;    // the prediction must come after this
    std::string answer_open;    // the prediction follows this...
    std::string answer_close;   // ...and ends here (ignored when brace_matched)
    bool brace_matched = false; // \boxed{...}: the answer ends at the matching brace
    std::vector<std::string> stop;  // generation stops on any of these tokens

    nlohmann::json to_json() const;
    static PromptTemplate from_json(const nlohmann::json& j, const std::string& source);
    // The reward kernel's view (pointers into this template's strings).
    ops::RewardFormat reward_format(int max_response_bytes) const;
};

// "compact", "v0" .. "v6" ("v0-r1-distill" is v0), or a path to a JSON file.
PromptTemplate load_template(const std::string& name_or_path);
std::vector<std::string> builtin_template_names();
// The paper's templates, "v0" .. "v6".
std::vector<std::string> paper_template_names();

// A template bound to a tokenizer: its fixed token sequences and stop token ids.
struct TemplateTokens {
    std::vector<int32_t> prefix;
    std::vector<int32_t> suffix;
    std::vector<int32_t> stop_ids;  // single-token stop strings (and end-of-text)
    // The training target of a formatted example: think_close + answer_open, the
    // answer tokens, then answer_close (see format_example).
    std::vector<int32_t> think_close;
    std::vector<int32_t> answer_open;
    std::vector<int32_t> answer_close;
};
// Throws naming the template and string when a stop string is not a single token.
TemplateTokens bind_template(const PromptTemplate& t, const Tokenizer& tokenizer);

// The prompt for predicting document token `position` with at most `context_tokens`
// tokens of left context: prefix + doc[position - k, position) + suffix. The context
// is the document's own tokens, never re-tokenised.
std::vector<int32_t> build_prompt(const TemplateTokens& t, const std::vector<int32_t>& doc, size_t position,
                                  int context_tokens);

// A complete formatted example whose answer is the `answer_tokens` true next tokens:
// prompt + trace + think_close + answer_open + answer + answer_close. Mixed into
// pre-training so a model trained from scratch starts RPT answering in format; the
// trace is empty unless one is given (rl/reasoning_examples.h writes worked ones).
std::vector<int32_t> format_example(const TemplateTokens& t, const std::vector<int32_t>& doc, size_t position,
                                    int context_tokens, int answer_tokens, const std::vector<int32_t>& trace = {});

// How many formatted examples mix_format_examples adds, and how they are drawn.
struct FormatMix {
    int32_t end_of_text = -1;  // appended after each example
    float share = 0;           // of the stream after mixing, in [0, 1)
    int context_tokens = 0;    // left context of each example
    uint64_t seed = 0;         // which documents and positions
};

// Appends template-formatted examples (random positions of `docs`, one true next token
// as the answer, each followed by end_of_text) to a pre-training stream until they are
// `share` of it. Windows are cut from the stream at random offsets, so appended
// examples are seen throughout training.
void mix_format_examples(std::vector<int32_t>& stream, const std::vector<std::vector<int32_t>>& docs,
                         const TemplateTokens& tokens, const FormatMix& mix);

}  // namespace rpt
