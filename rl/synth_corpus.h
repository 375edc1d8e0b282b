// synth_corpus: the built-in corpus — an unbounded, deterministic stream of
// multi-step arithmetic and word problems with worked solutions.
//
// Why this corpus: RPT rewards a model for predicting the next token *by reasoning*.
// In these documents most numbers in a solution are computed from earlier numbers
// (carries, partial products, running totals, change, remainders), so a model that
// does the arithmetic can predict tokens that an n-gram model cannot. Every document
// has the shape
//   Problem: <text>\nSolution: <step lines>\nAnswer: <number>\n
// is ASCII, 150-600 characters long, and all of its equations are exact.
//
// Document i is a pure function of (seed, i): it draws from a counter-based
// splitmix64 stream seeded by both, so any shard of the corpus can be generated
// independently (one rank, one thread, or one document at a time).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rpt {

// The problem families; each has several phrasings.
enum class SynthKind : int {
  kAddition = 0,    // column addition with carries
  kSubtraction,     // column subtraction with borrows
  kMultiplication,  // digit-by-digit with carries, or partial products
  kDivision,        // long division / sharing with a remainder
  kRunningTotal,    // a sequence of additions and removals
  kShopping,        // prices, quantities and change
  kRate,            // speed / time / distance and work rates
  kPercent,         // percentages of round numbers
  kMultiStep,       // multi-step word problems mixing operations
  kExpression,      // order of operations
  kCount
};
constexpr int kSynthKindCount = static_cast<int>(SynthKind::kCount);
const char* synth_kind_name(SynthKind kind);

// Relative weights of the three difficulty levels; operands have 1-2 digits when
// easy, 2-3 when medium, 3-4 when hard. Weights need not sum to 1.
struct SynthOptions {
  double easy = 0.35;
  double medium = 0.40;
  double hard = 0.25;
};

constexpr size_t kSynthMinChars = 150;
constexpr size_t kSynthMaxChars = 600;

// Document `index` of the corpus with this seed. If `kind` is non-null it receives
// the problem family (for tests and statistics).
std::string synth_document(uint64_t seed, uint64_t index, const SynthOptions& options = {},
                           SynthKind* kind = nullptr);

// Documents 0..n_docs-1; element i equals synth_document(seed, i, options).
std::vector<std::string> synth_corpus(uint64_t seed, size_t n_docs, const SynthOptions& options = {});

}  // namespace rpt
