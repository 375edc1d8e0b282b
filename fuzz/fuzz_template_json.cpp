// libFuzzer target: the RPT template JSON reader (what load_template does with a file:
// parse, then PromptTemplate::from_json) on arbitrary bytes. A template that loads must
// survive to_json -> from_json unchanged, bind to the fixture tokenizer or be refused
// with a message, and build a prompt and a formatted example. std::invalid_argument is
// the expected answer to bad input; anything else is a finding.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/tokenizer.h"
#include "rl/templates.h"

namespace {

constexpr const char* kTokenizerFile = "tests/fixtures/hf_tokenizer/tokenizer.json";

const rpt::Tokenizer& tokenizer() {
    static const rpt::Tokenizer tok = rpt::Tokenizer::load(kTokenizerFile);
    return tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return 0;
    try {
        const rpt::PromptTemplate t = rpt::PromptTemplate::from_json(j, "template.json");
        const rpt::PromptTemplate back = rpt::PromptTemplate::from_json(t.to_json(), "resaved-template.json");
        if (back.to_json() != t.to_json()) __builtin_trap();
        const rpt::TemplateTokens tokens = rpt::bind_template(t, tokenizer());
        const std::vector<int32_t> doc = tokenizer().encode("Problem: 12 + 30 = 42. Next, 42 * 2 = 84.");
        (void)rpt::build_prompt(tokens, doc, doc.size() / 2, 8);
        (void)rpt::format_example(tokens, doc, doc.size() - 1, 8, 3);
    } catch (const std::invalid_argument&) {
        // rejected with a message: the intended behaviour
    }
    return 0;
}
