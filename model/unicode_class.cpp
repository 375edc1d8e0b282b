// Unicode character classes from PCRE2 (see unicode_class.h).
#include "model/unicode_class.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "model/pretokenizer.h"

namespace rpt {
namespace {

// PCRE2 10.40+ has the binary properties; \p{Alphabetic} includes letters, letter
// numbers and Other_Alphabetic (e.g. circled letters), as Rust's \w does.
constexpr const char* kWhiteSpacePattern = "\\p{White_Space}";
constexpr const char* kWordPattern = "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]";

// A compiled one-character class. Immutable after construction; each test allocates its
// own match data, so it is safe from many threads.
class CharClass {
 public:
    explicit CharClass(const char* pattern) {
        int error = 0;
        PCRE2_SIZE offset = 0;
        pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED,
                                         PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
        if (code == nullptr) throw std::runtime_error(std::string("PCRE2 cannot compile ") + pattern);
        code_.reset(code, pcre2_code_free);
    }

    // Whether the valid UTF-8 character `ch` is in the class.
    bool contains(std::string_view ch) const {
        std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
            pcre2_match_data_create_from_pattern(code_.get(), nullptr), pcre2_match_data_free);
        if (!md) throw std::bad_alloc();
        return pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(ch.data()), ch.size(), 0,
                           PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, md.get(), nullptr) >= 0;
    }

 private:
    std::shared_ptr<pcre2_code> code_;
};

const CharClass& white_space() {
    static const CharClass c(kWhiteSpacePattern);  // compiled once, never modified
    return c;
}

const CharClass& word() {
    static const CharClass c(kWordPattern);
    return c;
}

// The valid character starting at i, or empty.
std::string_view char_at(std::string_view text, size_t i) {
    const int n = utf8_char_length(text, i);
    return n > 0 ? text.substr(i, size_t(n)) : std::string_view();
}

// The valid character ending at i, or empty (a UTF-8 character is at most 4 bytes).
std::string_view char_before(std::string_view text, size_t i) {
    for (size_t n = 1; n <= 4 && n <= i; ++n) {
        if (n < 4 && n < i && (uint8_t(text[i - n]) & 0xC0) == 0x80) continue;  // a continuation byte
        return utf8_char_length(text, i - n) == int(n) ? text.substr(i - n, n) : std::string_view();
    }
    return {};
}

}  // namespace

bool is_white_space_at(std::string_view text, size_t i, size_t* length) {
    const std::string_view ch = char_at(text, i);
    if (length) *length = ch.empty() ? 1 : ch.size();
    return !ch.empty() && white_space().contains(ch);
}

bool is_white_space_before(std::string_view text, size_t i, size_t* length) {
    const std::string_view ch = char_before(text, i);
    if (length) *length = ch.empty() ? 1 : ch.size();
    return !ch.empty() && white_space().contains(ch);
}

bool is_word_char_at(std::string_view text, size_t i) {
    const std::string_view ch = char_at(text, i);
    return !ch.empty() && word().contains(ch);
}

bool is_word_char_before(std::string_view text, size_t i) {
    const std::string_view ch = char_before(text, i);
    return !ch.empty() && word().contains(ch);
}

}  // namespace rpt
