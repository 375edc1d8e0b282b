// libFuzzer target: Tokenizer::encode and decode on arbitrary bytes, with the Qwen2-
// style tokenizer of tests/fixtures/hf_tokenizer (set RPT_FUZZ_TOKENIZER to use
// another). Checks the documented round trip: decode(encode(s)) == s for every s
// whose valid UTF-8 runs are already NFC (invalid bytes pass through untouched).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <utf8proc.h>

#include "model/pretokenizer.h"
#include "model/tokenizer.h"

namespace {

constexpr const char* kDefaultTokenizer = "tests/fixtures/hf_tokenizer/tokenizer.json";

const rpt::Tokenizer& tokenizer() {
    static const rpt::Tokenizer tok = [] {
        const char* path = std::getenv("RPT_FUZZ_TOKENIZER");
        return rpt::Tokenizer::load(path ? path : kDefaultTokenizer);
    }();
    return tok;
}

// True when s is valid UTF-8 and NFC already (then the round trip must be exact).
bool valid_nfc(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        const size_t n = rpt::utf8_char_length(s, i);
        if (n == 0) return false;
        i += n;
    }
    utf8proc_uint8_t* nfc = utf8proc_NFC(reinterpret_cast<const utf8proc_uint8_t*>(std::string(s).c_str()));
    if (!nfc) return false;
    const bool same = std::string_view(reinterpret_cast<const char*>(nfc)) == s;
    std::free(nfc);
    return same;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const rpt::Tokenizer& tok = tokenizer();
    const std::vector<int32_t> ids = tok.encode(text);
    for (int32_t id : ids)
        if (id < 0 || id >= tok.vocab_size()) __builtin_trap();
    const std::string back = tok.decode(ids);
    // NUL bytes end the C string utf8proc sees, so only NUL-free text is compared.
    if (text.find('\0') == std::string_view::npos && valid_nfc(text) && back != text) __builtin_trap();
    return 0;
}
