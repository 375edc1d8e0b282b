// Text preparation before BPE, as in Hugging Face tokenizers: the NFC normaliser and
// the regex Split pre-tokeniser (behaviour "Isolated"). Both accept arbitrary bytes:
// invalid UTF-8 passes through NFC unchanged and ends up in pieces of its own, so that
// byte-level BPE can still round-trip it.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace rpt {

// Qwen2's Split regex (tokenizer.json of Qwen2/Qwen2.5/DeepSeek-R1-Distill-Qwen).
extern const char* const kQwen2SplitPattern;
// GPT-2's regex, used by ByteLevel pre-tokenisers with use_regex = true.
extern const char* const kGpt2SplitPattern;

// Length of the valid UTF-8 character starting at text[i] (1..4), or 0 if the bytes
// there are not one (truncated, overlong, surrogate, > U+10FFFF, stray continuation).
int utf8_char_length(std::string_view text, size_t i);

// NFC of every maximal valid UTF-8 run of `text`; invalid bytes are copied unchanged.
std::string nfc_normalize(std::string_view text);

// A compiled Split pattern. Immutable once built, so one instance may be used from many
// threads (each split() call allocates its own match data). Copies share the compiled
// code.
class SplitRegex {
 public:
    // Throws std::runtime_error if the pattern does not compile.
    explicit SplitRegex(std::string pattern);

    const std::string& pattern() const { return pattern_; }

    // Appends to `pieces` the pieces of `text` with behaviour "Isolated": every match
    // is a piece and so is every non-empty gap between matches (with Qwen2's pattern
    // gaps only hold invalid UTF-8). Concatenating the pieces gives back `text`.
    void split(std::string_view text, std::vector<std::string_view>* pieces) const;

 private:
    std::string pattern_;
    std::shared_ptr<void> code_;  // pcre2_code_8*, freed by its deleter
};

}  // namespace rpt
