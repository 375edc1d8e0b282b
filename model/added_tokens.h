// Added tokens (special tokens such as <|im_start|>, and tokens added to a vocabulary
// after training) and how Hugging Face tokenizers splits them out of a text before
// normalisation and BPE. Matched exactly as `tokenizers` does (its AddedVocabulary,
// verified by experiment against tokenizers 0.23, see tools/make_fixtures.py):
//
// - Matches are leftmost-longest and never overlap: the text is scanned left to right
//   and, at the first position where tokens match, the longest one is taken; scanning
//   resumes after it (not after the whitespace it strips).
// - single_word: a match is dropped (its bytes stay plain text, and no shorter or
//   overlapping token is tried instead) when the character just before or just after
//   it is a word character (unicode_class.h). "Before" and "after" are within the text
//   being split: the whole input for tokens matched on raw text, one normalised piece
//   for normalised tokens.
// - lstrip: the token also takes the white space to its left, back to the previous
//   non-white-space character but never before the end of the previous token's span.
//   rstrip: it takes the white space to its right, even over later matches, which are
//   then still emitted (tokenizers behaves so; stripped white space is not encoded).
// - normalized: false tokens are matched on the raw text first; normalized tokens are
//   matched afterwards in each remaining piece after it is normalised (their content is
//   normalised too), so a raw-text token wins over a normalised one that starts earlier.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rpt {

struct AddedToken {
    int32_t id = 0;
    std::string content;   // raw UTF-8, as written in tokenizer.json
    bool special = true;   // e.g. skipped by "skip special tokens" displays
    bool single_word = false;
    bool lstrip = false;
    bool rstrip = false;
    bool normalized = false;  // matched on the normalised text (else on the raw text)
};

// A span of a split text: plain text (id < 0) or one added token (id >= 0). A token's
// span includes the white space it strips.
struct AddedSplit {
    size_t begin = 0, end = 0;
    int32_t id = -1;
};

// One set of tokens matched on the same text (the raw text, or normalised pieces).
// Immutable once built: safe to use from many threads.
class AddedTokenMatcher {
 public:
    // `pattern` is what the token matches in the text (its content, or the normalised
    // content); empty patterns are ignored.
    void add(std::string pattern, const AddedToken& token);
    bool empty() const { return patterns_.empty(); }

    // Replaces *out with the spans of `text` in order: plain-text spans (never empty)
    // and token spans. Spans only overlap where an rstrip token took white space that
    // holds later matches: those tokens, and the plain text after them up to the next
    // one, are emitted again, exactly as tokenizers does.
    void split(std::string_view text, std::vector<AddedSplit>* out) const;

 private:
    struct Pattern {
        std::string text;
        int32_t id;
        bool single_word, lstrip, rstrip;
    };
    // Leftmost-longest match at or after `from`: index into patterns_ and start, or
    // npos start when there is none.
    struct Match {
        size_t start = std::string_view::npos;
        size_t pattern = 0;
    };
    Match find(std::string_view text, size_t from) const;

    std::vector<Pattern> patterns_;
    std::vector<std::vector<size_t>> by_first_byte_;  // per first byte, longest first
};

}  // namespace rpt
