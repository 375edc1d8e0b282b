// The two Unicode character classes of Hugging Face's added-token matching, which is
// written in Rust: white space is `char::is_whitespace` (the White_Space property) and
// a word character is the regex crate's Unicode `\w` (Alphabetic, marks, decimal
// digits, connector punctuation, join controls). Both come from PCRE2's Unicode tables.
#pragma once

#include <cstddef>
#include <string_view>

namespace rpt {

// The character of `text` that starts at byte `i` (i < text.size()), or, for the
// "before" variants, the one that ends at byte `i` (i > 0). Bytes that are not valid
// UTF-8 there are in neither class. `*length` (optional) receives the character's byte
// length (1 for an invalid byte).
bool is_white_space_at(std::string_view text, size_t i, size_t* length = nullptr);
bool is_white_space_before(std::string_view text, size_t i, size_t* length = nullptr);
bool is_word_char_at(std::string_view text, size_t i);
bool is_word_char_before(std::string_view text, size_t i);

}  // namespace rpt
