// libFuzzer target: the JSONL corpus reader (read_jsonl_corpus) in its three formats.
// The first input byte picks the format (byte % 3: text, gsm8k, omni-math) and, with
// bit 2 set, --skip-malformed; the rest is the file. Every document read must be
// non-empty and valid UTF-8 (writable back as JSON). std::runtime_error "FILE:LINE:
// reason" is the expected answer to bad input; anything else is a finding.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "rl/corpus.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    static const char* const kFormats[] = {"text", "gsm8k", "omni-math"};
    rpt::CorpusOptions options = rpt::corpus_preset(kFormats[data[0] % 3]);
    options.skip_malformed = (data[0] & 4) != 0;
    std::istringstream in(std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
    try {
        size_t skipped = 0;
        for (const std::string& doc : rpt::read_jsonl_corpus(in, "fuzz.jsonl", options, &skipped)) {
            if (doc.empty()) __builtin_trap();
            (void)nlohmann::json{{"text", doc}}.dump();  // throws type_error on invalid UTF-8
        }
        if (!options.skip_malformed && skipped != 0) __builtin_trap();
    } catch (const std::runtime_error&) {
        // rejected with a message: the intended behaviour
    }
    return 0;
}
