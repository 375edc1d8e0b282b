// Flags shared by every command that reads documents: a JSONL corpus, or the built-in
// synthetic math corpus when --corpus is absent (the embedded default).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace rpt::cli {

struct CorpusFlags {
    std::string path;             // JSONL; empty = built-in synthetic corpus
    std::string format = "text";  // text | gsm8k | omni-math
    std::string text_field;       // overrides the format's text field
    bool skip_malformed = false;
    size_t synth_docs = 4000;     // documents of the built-in corpus
    uint64_t synth_seed = 1;

    void add_to(CLI::App& command);
    // Only the JSONL flags (--corpus, --corpus-format, --text-field, --skip-malformed).
    void add_file_flags_to(CLI::App& command);
    // Reads or generates the documents; prints a one-line summary to stderr.
    std::vector<std::string> load() const;
};

}  // namespace rpt::cli
