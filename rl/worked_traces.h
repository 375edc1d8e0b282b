// worked_traces: scratchpad reasoning for the built-in corpus, the small-scale analogue
// of the R1 traces DeepSeek-R1-Distill was distilled from (issue 14).
//
// RPT was applied to models that already reason; a tiny model trained from scratch on
// documents alone has no reasoning to draw on, so its traces are empty and thinking
// cannot help it. The built-in corpus knows what most of its numbers are: in
//   "Stop 2: 1042 - 460 = 582."
// the digits of 582 follow from the equation before them. This file recognises such a
// position from the document text before it (a computed value with its first digits
// possibly written) and writes the computation step by step, in the corpus's own words
// and spacing, the way its column-method documents work a sum:
//   ones: 2 - 0 = 2.
//   tens: 4 < 6 so borrow, 14 - 6 = 8.
//   hundreds: 0 needs a borrow, 10 - 1 = 9, 9 - 4 = 5.
//   thousands: 1 - 1 = 0 after the borrow, 0 - 0 = 0.
//   So 1042 - 460 = 582.
// Why the corpus's notation: a tiny model learns "3 + 8 = 11" from thousands of
// documents, and a terser trace notation ("3+8=11") shares none of its tokens, so none
// of that skill (measured: 0.6% of traces right in the terse form). The last line
// restates the operation with its result, so the next digit is read off the trace.
// Long operations fall back to coarse steps (the "So" lines alone) to fit the trace
// budget; a position the context already determines gets no trace.
//
// The same module checks traces a model wrote: every equation "x op y ... = z" must hold.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rpt {

// A value being written at the end of `prefix`: the operation before " = ", its
// result, and the characters of the result still to come.
struct ComputedValue {
    std::string expression;  // "1042 - 460", "3 * $1.25", "300 * 20 / 100"
    std::string result;      // "582", "$3.75"
    std::string rest;        // of result, after what the prefix already wrote (never empty)
};

// The computed value `prefix` ends inside of: its last line ends "<a op b ...> = " with
// none, some but not all of the result written. nullopt for any other position, and for
// expressions this module does not evaluate exactly (inexact division, negative results,
// more than kMaxOperands operands).
std::optional<ComputedValue> computed_value_at(std::string_view prefix);
constexpr int kMaxOperands = 4;

// The scratchpad for `value`, at most `max_chars` characters (fine steps when they fit,
// else coarse ones; empty when even those do not fit). Operations on single digits only
// get an empty trace: they are a table the model can learn without one.
std::string worked_trace(const ComputedValue& value, size_t max_chars);

// What checking a trace found: its equations ("<expression> = <amount>", several to a
// line, with or without spaces) and how many of them hold. An '=' between anything
// else is neither.
struct TraceCheck {
    int equations = 0;
    int correct = 0;
    bool all_correct() const { return equations > 0 && correct == equations; }
};
TraceCheck check_trace(std::string_view trace);

}  // namespace rpt
