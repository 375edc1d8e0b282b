// rpt's tokenizer against Hugging Face `tokenizers`: a byte-level BPE trained by HF with
// exactly Qwen2's pipeline (tests/fixtures/hf_tokenizer/, made by tools/make_fixtures.py)
// must give the same ids as HF for every text of a varied set, and decode them to the
// same text HF's decoder gives. Also: the file survives rpt's save/load unchanged in
// behaviour.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/file_io.h"
#include "model/tokenizer.h"

namespace rpt {
namespace {

constexpr const char* kTokenizerFile = "tests/fixtures/hf_tokenizer/tokenizer.json";
constexpr const char* kCasesFile = "tests/fixtures/hf_tokenizer/cases.json";
constexpr size_t kMinCases = 20;

struct Case {
    std::string text, decoded;
    std::vector<int32_t> ids;
};

std::vector<Case> load_cases() {
    const nlohmann::json j = nlohmann::json::parse(read_file(kCasesFile));
    std::vector<Case> cases;
    for (const nlohmann::json& c : j)
        cases.push_back({c.at("text").get<std::string>(), c.at("decoded").get<std::string>(),
                         c.at("ids").get<std::vector<int32_t>>()});
    return cases;
}

std::string show(const std::vector<int32_t>& ids) {
    std::string s;
    for (int32_t id : ids) s += std::to_string(id) + " ";
    return s;
}

void expect_matches_hf(const Tokenizer& tok, const std::vector<Case>& cases) {
    for (const Case& c : cases) {
        const std::vector<int32_t> ids = tok.encode(c.text);
        EXPECT_EQ(ids, c.ids) << "text: " << c.text << "\nours: " << show(ids) << "\nHF:   " << show(c.ids);
        EXPECT_EQ(tok.decode(c.ids), c.decoded) << "text: " << c.text;
    }
}

TEST(HfTokenizer, IdsAndDecodingMatchHuggingFace) {
    const Tokenizer tok = Tokenizer::load(kTokenizerFile);
    const std::vector<Case> cases = load_cases();
    ASSERT_GE(cases.size(), kMinCases);
    expect_matches_hf(tok, cases);
}

TEST(HfTokenizer, AddedTokensLoaded) {
    const Tokenizer tok = Tokenizer::load(kTokenizerFile);
    ASSERT_TRUE(tok.token_id("<|endoftext|>").has_value());
    ASSERT_TRUE(tok.token_id("</think>").has_value());
    EXPECT_TRUE(tok.is_added_token(*tok.token_id("<|im_start|>")));
    bool think_special = true;
    for (const AddedToken& t : tok.added_tokens())
        if (t.content == "<think>") think_special = t.special;
    EXPECT_FALSE(think_special);  // a non-special added token keeps its flag
}

// What rpt writes encodes exactly as the HF original.
TEST(HfTokenizer, SavedCopyBehavesTheSame) {
    const Tokenizer tok = Tokenizer::load(kTokenizerFile);
    const std::string path = (std::filesystem::temp_directory_path() / "rpt_hf_tokenizer_copy.json").string();
    tok.save(path);
    const Tokenizer back = Tokenizer::load(path);
    std::filesystem::remove(path);
    EXPECT_EQ(back.vocab_size(), tok.vocab_size());
    expect_matches_hf(back, load_cases());
}

}  // namespace
}  // namespace rpt
