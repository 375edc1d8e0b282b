// corpus: JSONL corpora (one JSON object per line) and the train/held-out split.
//
// A document is either one string field ("text") or a problem/solution pair joined by
// a newline, as in GSM8K (question/answer) and Omni-MATH (problem/solution). Bad
// lines are errors that name FILE:LINE, or, when asked, are skipped and counted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <istream>
#include <string>
#include <string_view>
#include <vector>

namespace rpt {

struct CorpusOptions {
  std::string text_field = "text";
  // When both are set, document = problem + "\n" + solution (text_field is ignored).
  std::string problem_field, solution_field;
  bool skip_malformed = false;  // skip and count bad lines instead of throwing
};

// Options for a named corpus format: "text", "gsm8k" (question/answer) or
// "omni-math" (problem/solution). Throws std::invalid_argument for other names.
CorpusOptions corpus_preset(std::string_view name);

// Reads every non-blank line of `path` as a JSON object. A malformed line (bad JSON,
// not an object, a missing, non-string or empty field) throws std::runtime_error
// "PATH:LINE: reason", or with skip_malformed is dropped and counted in *skipped.
std::vector<std::string> read_jsonl_corpus(const std::string& path, const CorpusOptions& options = {},
                                           size_t* skipped = nullptr);
// The same on a stream; `source` stands for the path in messages (the fuzz target and
// tests read from memory).
std::vector<std::string> read_jsonl_corpus(std::istream& in, const std::string& source,
                                           const CorpusOptions& options = {}, size_t* skipped = nullptr);

// Writes {"text": doc} per line, atomically. Throws (naming path and document index)
// if a document is not valid UTF-8.
void write_jsonl_corpus(const std::string& path, const std::vector<std::string>& docs);

// Whether document `index` belongs to the held-out set: a hash of (seed, index)
// compared with `fraction`, so membership does not depend on corpus order or size.
bool is_heldout(uint64_t seed, size_t index, double fraction);

struct CorpusSplit {
  std::vector<std::string> train, heldout;
};
// Splits docs by is_heldout (order within each part is preserved).
CorpusSplit split_corpus(const std::vector<std::string>& docs, uint64_t seed, double fraction);

}  // namespace rpt
