// column_methods: the pencil-and-paper methods the built-in corpus writes out, in its
// words ("tens: 6 + 7 + 1 = 14, write 4 carry 1."), shared by the corpus's documents
// (rl/synth_corpus.cpp) and the worked traces (rl/worked_traces.cpp). One writer for
// both is what makes a trace read exactly like the documents the model learned from.
//
// Each appends its lines (each ending in '\n') to `out`; all arithmetic is on
// non-negative integers (money in cents).
#pragma once

#include <cstdint>
#include <iterator>
#include <string>

namespace rpt::columns {

// The place names, ones first; numbers with more digits than this are not written in
// columns.
constexpr const char* kPlaces[] = {"ones", "tens", "hundreds", "thousands", "ten-thousands", "hundred-thousands"};
constexpr int kPlaceCount = int(std::size(kPlaces));

int64_t pow10(int d);
int digit_at(int64_t x, int place);  // place 0 = ones
int num_digits(int64_t x);           // of x >= 0; 0 has one

// a + b from the right with carries, and a last line for a final carry. Needs
// max(num_digits) < kPlaceCount.
void add(int64_t a, int64_t b, std::string& out);
// a - b (a >= b) from the right, borrowing. Needs num_digits(a) <= kPlaceCount.
void subtract(int64_t a, int64_t b, std::string& out);
// a times one digit from the right with carries; the last column writes all of it.
// Needs num_digits(a) <= kPlaceCount.
void multiply_by_digit(int64_t a, int digit, std::string& out);
// Long division of a by d (d > 0): the leading digits until they reach d, then one
// line per quotient digit with the remainder brought down.
void long_division(int64_t a, int64_t d, std::string& out);

}  // namespace rpt::columns
