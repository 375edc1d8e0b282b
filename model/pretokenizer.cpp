// NFC normalisation (utf8proc) and regex splitting (PCRE2) for the tokenizer; see
// pretokenizer.h.
#include "model/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <cstdint>
#include <cstdlib>
#include <stdexcept>

namespace rpt {

const char* const kQwen2SplitPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kGpt2SplitPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

// Hugging Face compiles these patterns with Oniguruma, whose Unicode \s is the
// White_Space property. PCRE2's UCP \s (10.42) lacks U+0085 NEL, the only White_Space
// character outside Z and ASCII controls, so we add it.
constexpr const char* kNelClassInside = "\\s\\x{85}";
constexpr const char* kSpaceOutside = "[\\s\\x{85}]";
constexpr const char* kNonSpaceOutside = "[^\\s\\x{85}]";

// Rewrites \s and \S (outside classes) and \s (inside classes) as above.
std::string oniguruma_compatible(const std::string& p) {
    std::string out;
    out.reserve(p.size() + 32);
    bool in_class = false;
    for (size_t i = 0; i < p.size(); ++i) {
        char c = p[i];
        if (c == '\\' && i + 1 < p.size()) {
            char e = p[++i];
            if (e == 's') out += in_class ? kNelClassInside : kSpaceOutside;
            else if (e == 'S' && !in_class) out += kNonSpaceOutside;
            else { out += c; out += e; }
            continue;
        }
        if (!in_class && c == '[') {
            in_class = true;
            out += c;
            // A ']' right after '[' or '[^' is a literal, not the end of the class.
            if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
            if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
            continue;
        }
        if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
            size_t close = p.find(":]", i + 2);  // POSIX class such as [:alpha:]
            if (close != std::string::npos) {
                out.append(p, i, close + 2 - i);
                i = close + 1;
                continue;
            }
        }
        if (in_class && c == ']') in_class = false;
        out += c;
    }
    return out;
}

pcre2_code* as_code(const std::shared_ptr<void>& p) { return static_cast<pcre2_code*>(p.get()); }

// Limits for the retry of a match that ran out of the default JIT stack (32 KiB) or
// match budget: generous, since the inputs are ours to tokenize, not hostile patterns.
constexpr size_t kJitStackStart = 64 * 1024;
constexpr size_t kJitStackMax = 256 * 1024 * 1024;
constexpr uint32_t kRetryMatchLimit = UINT32_MAX;
constexpr uint32_t kRetryHeapLimitKiB = 4 * 1024 * 1024;

}  // namespace

int utf8_char_length(std::string_view s, size_t i) {
    const size_t n = s.size();
    auto cont = [&](size_t k) { return k < n && (uint8_t(s[k]) & 0xC0) == 0x80; };
    uint8_t c = uint8_t(s[i]);
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;  // continuation byte or overlong 2-byte lead
    if (c < 0xE0) return cont(i + 1) ? 2 : 0;
    if (c < 0xF0) {
        if (!cont(i + 1) || !cont(i + 2)) return 0;
        uint8_t c1 = uint8_t(s[i + 1]);
        if (c == 0xE0 && c1 < 0xA0) return 0;   // overlong
        if (c == 0xED && c1 >= 0xA0) return 0;  // UTF-16 surrogate
        return 3;
    }
    if (c < 0xF5) {
        if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
        uint8_t c1 = uint8_t(s[i + 1]);
        if (c == 0xF0 && c1 < 0x90) return 0;   // overlong
        if (c == 0xF4 && c1 >= 0x90) return 0;  // > U+10FFFF
        return 4;
    }
    return 0;
}

std::string nfc_normalize(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    size_t i = 0;
    while (i < text.size()) {
        // Collect a maximal valid run; note whether it is pure ASCII (always NFC).
        size_t start = i;
        bool ascii = true;
        int len;
        while (i < text.size() && (len = utf8_char_length(text, i)) > 0) {
            ascii &= len == 1;
            i += size_t(len);
        }
        if (i > start) {
            if (ascii) {
                out.append(text.data() + start, i - start);
            } else {
                utf8proc_uint8_t* nfc = nullptr;
                utf8proc_ssize_t n = utf8proc_map(
                    reinterpret_cast<const utf8proc_uint8_t*>(text.data() + start),
                    utf8proc_ssize_t(i - start), &nfc,
                    utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
                if (n >= 0) out.append(reinterpret_cast<const char*>(nfc), size_t(n));
                else out.append(text.data() + start, i - start);  // cannot happen on valid runs
                std::free(nfc);
            }
        }
        if (i < text.size()) out.push_back(text[i++]);  // one invalid byte, unchanged
    }
    return out;
}

SplitRegex::SplitRegex(std::string pattern) : pattern_(std::move(pattern)) {
    const std::string compiled = oniguruma_compatible(pattern_);
    int err = 0;
    PCRE2_SIZE err_offset = 0;
    // MATCH_INVALID_UTF: invalid UTF-8 in the subject never matches anything (it ends
    // up in gaps) instead of making pcre2_match fail.
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(compiled.data()), compiled.size(),
                                     PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err,
                                     &err_offset, nullptr);
    if (code == nullptr) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        throw std::runtime_error("regex does not compile at offset " + std::to_string(err_offset) +
                                 ": " + reinterpret_cast<const char*>(msg));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // best effort: falls back to the interpreter
    code_ = std::shared_ptr<void>(code, [](void* c) { pcre2_code_free(static_cast<pcre2_code*>(c)); });
}

void SplitRegex::split(std::string_view text, std::vector<std::string_view>* pieces) const {
    pcre2_code* code = as_code(code_);
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
        pcre2_match_data_create_from_pattern(code, nullptr), &pcre2_match_data_free);
    // Created only if some match needs more than the default limits.
    std::unique_ptr<pcre2_match_context, decltype(&pcre2_match_context_free)> big_ctx(
        nullptr, &pcre2_match_context_free);
    std::unique_ptr<pcre2_jit_stack, decltype(&pcre2_jit_stack_free)> big_stack(
        nullptr, &pcre2_jit_stack_free);

    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    const size_t n = text.size();
    size_t pos = 0, last_end = 0;
    while (pos < n) {
        int rc = pcre2_match(code, subject, n, pos, 0, md.get(), nullptr);
        if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
            if (!big_ctx) {
                big_ctx.reset(pcre2_match_context_create(nullptr));
                big_stack.reset(pcre2_jit_stack_create(kJitStackStart, kJitStackMax, nullptr));
                pcre2_jit_stack_assign(big_ctx.get(), nullptr, big_stack.get());
                pcre2_set_match_limit(big_ctx.get(), kRetryMatchLimit);
                pcre2_set_depth_limit(big_ctx.get(), kRetryMatchLimit);
                pcre2_set_heap_limit(big_ctx.get(), kRetryHeapLimitKiB);
            }
            rc = pcre2_match(code, subject, n, pos, 0, md.get(), big_ctx.get());
        }
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            throw std::runtime_error(std::string("pre-tokenizer regex match failed: ") +
                                     reinterpret_cast<const char*>(msg));
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
        const size_t start = ov[0], end = ov[1];
        if (end == start) {  // empty match: not a piece; step over one character
            pos = start + 1;
            while (pos < n && (uint8_t(text[pos]) & 0xC0) == 0x80) ++pos;
            continue;
        }
        if (start > last_end) pieces->push_back(text.substr(last_end, start - last_end));
        pieces->push_back(text.substr(start, end - start));
        last_end = pos = end;
    }
    if (last_end < n) pieces->push_back(text.substr(last_end));
}

}  // namespace rpt
