// libFuzzer target: the tokenizer.json loader on arbitrary bytes. Input that parses
// as JSON goes to Tokenizer::from_json; a tokenizer that loads must then encode,
// decode and save without failing. std::runtime_error (and nlohmann's parse errors)
// are the expected answers to bad input; anything else is a finding.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "model/tokenizer.h"

namespace {

constexpr const char* kProbeText = "Hello world! 123 <|endoftext|> 中文 \xff\xfe ok";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return 0;
    try {
        const rpt::Tokenizer tok = rpt::Tokenizer::from_json(j, "fuzz.json");
        const std::vector<int32_t> ids = tok.encode(kProbeText);
        (void)tok.decode(ids);
        (void)rpt::Tokenizer::from_json(nlohmann::json::parse(tok.to_json_text()), "fuzz-resaved.json");
    } catch (const std::runtime_error&) {
        // rejected with a message: the intended behaviour
    }
    return 0;
}
