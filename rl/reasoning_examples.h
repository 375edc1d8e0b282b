// reasoning_examples: worked next-token-reasoning examples for pre-training, the demo's
// stand-in for distillation (issue 14).
//
// DeepSeek-R1-Distill, the paper's start model, reasons because it was fine-tuned on R1's
// traces. A model trained from scratch gets its analogue here: examples in the RPT
// template whose trace carries out the computation of the next token's value
// (rl/worked_traces.h) and whose answer is the true next token, the one standard mode
// predicts. Positions the context already determines get an empty trace and the same
// one-token answer, as the plain format examples (rl/templates.h) do. Only the built-in
// corpus has traces: in any other corpus a position is rarely the result of an equation
// the text states.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "model/tokenizer.h"
#include "rl/templates.h"
#include "rl/worked_traces.h"

namespace rpt {

// A trace budget that fits the tiny model's 256 positions with a 48-token context.
constexpr size_t kDefaultTraceChars = 200;

// A document position inside a computed value, with that value.
struct ComputedPosition {
    size_t position = 0;
    ComputedValue value;
};
// Every such position of `doc`, in order.
std::vector<ComputedPosition> computed_positions(const std::vector<int32_t>& doc, const Tokenizer& tokenizer);

struct ReasoningMix {
    int32_t end_of_text = -1;   // appended after each example
    float share = 0;            // of the stream after mixing, in [0, 1)
    int context_tokens = 0;     // left context of each example
    uint64_t seed = 0;          // which documents and positions
    double computed_share = 0.8;  // of examples, drawn at computed positions (the rest uniformly)
    size_t max_trace_chars = kDefaultTraceChars;
};

// What the mixing added, for the log.
struct ReasoningMixStats {
    size_t examples = 0;
    size_t with_trace = 0;      // examples with a non-empty worked trace
    size_t trace_tokens = 0;    // over all traces
    size_t tokens = 0;          // appended to the stream
};

// The example at `position` of `doc`: a worked trace and the remaining tokens of the
// value when `value` is given (and its trace fits), else an empty trace and one token.
std::vector<int32_t> reasoning_example(const TemplateTokens& tokens, const Tokenizer& tokenizer,
                                       const std::vector<int32_t>& doc, size_t position,
                                       const ComputedValue* value, const ReasoningMix& mix,
                                       size_t* trace_tokens = nullptr);

// Appends reasoning examples until they are `share` of the stream (as
// mix_format_examples does with plain ones).
ReasoningMixStats mix_reasoning_examples(std::vector<int32_t>& stream, const std::vector<std::vector<int32_t>>& docs,
                                         const Tokenizer& tokenizer, const TemplateTokens& tokens,
                                         const ReasoningMix& mix);

}  // namespace rpt
