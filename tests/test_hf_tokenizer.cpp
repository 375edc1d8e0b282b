// rpt's tokenizer against Hugging Face `tokenizers` (fixtures made by
// tools/make_fixtures.py): for every text of a varied set, the same ids as HF and the
// same decode. Two fixtures: tests/fixtures/hf_tokenizer (Qwen2's pipeline, added
// tokens after training, merges as pairs) and tests/fixtures/hf_tokenizer_added
// (special tokens also in model.vocab, added tokens with every flag, merges as "a b"
// strings). Also: each survives rpt's save/load unchanged in behaviour, and either
// merges form loads the same tokenizer.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/file_io.h"
#include "model/pretokenizer.h"
#include "model/tokenizer.h"

namespace rpt {
namespace {

constexpr const char* kBaseDir = "tests/fixtures/hf_tokenizer";
constexpr const char* kAddedDir = "tests/fixtures/hf_tokenizer_added";
constexpr size_t kMinCases = 20;

std::string tokenizer_file(const std::string& dir) { return dir + "/tokenizer.json"; }

struct Case {
    std::string text, decoded;
    std::vector<int32_t> ids;
};

std::vector<Case> load_cases(const std::string& dir) {
    const nlohmann::json j = nlohmann::json::parse(read_file(dir + "/cases.json"));
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

// HF's decode returns a string: bytes that are not UTF-8 become U+FFFD, one per maximal
// invalid subpart (Rust's from_utf8_lossy). rpt's decode returns the bytes themselves.
std::string lossy_utf8(const std::string& bytes) {
    std::string out;
    for (size_t i = 0; i < bytes.size();) {
        if (const int n = utf8_char_length(bytes, i); n > 0) {
            out.append(bytes, i, size_t(n));
            i += size_t(n);
            continue;
        }
        // A lead byte and the continuation bytes that could still have completed it.
        const auto b = uint8_t(bytes[i]);
        const size_t need = b >= 0xF0 && b <= 0xF4 ? 3 : b >= 0xE0 ? 2 : b >= 0xC2 && b <= 0xDF ? 1 : 0;
        size_t k = 1;
        for (; k <= need && i + k < bytes.size(); ++k) {
            const auto c = uint8_t(bytes[i + k]);
            const uint8_t lo = k == 1 && b == 0xE0 ? 0xA0 : k == 1 && b == 0xF0 ? 0x90 : 0x80;
            const uint8_t hi = k == 1 && b == 0xED ? 0x9F : k == 1 && b == 0xF4 ? 0x8F : 0xBF;
            if (c < lo || c > hi) break;
        }
        out += "\xEF\xBF\xBD";
        i += k;
    }
    return out;
}

void expect_matches_hf(const Tokenizer& tok, const std::vector<Case>& cases) {
    for (const Case& c : cases) {
        const std::vector<int32_t> ids = tok.encode(c.text);
        EXPECT_EQ(ids, c.ids) << "text: " << c.text << "\nours: " << show(ids) << "\nHF:   " << show(c.ids);
        EXPECT_EQ(lossy_utf8(tok.decode(c.ids)), c.decoded) << "text: " << c.text;
    }
}

class HfTokenizerFixture : public ::testing::TestWithParam<const char*> {};

TEST_P(HfTokenizerFixture, IdsAndDecodingMatchHuggingFace) {
    const Tokenizer tok = Tokenizer::load(tokenizer_file(GetParam()));
    const std::vector<Case> cases = load_cases(GetParam());
    ASSERT_GE(cases.size(), kMinCases);
    expect_matches_hf(tok, cases);
}

// What rpt writes encodes exactly as the HF original.
TEST_P(HfTokenizerFixture, SavedCopyBehavesTheSame) {
    const Tokenizer tok = Tokenizer::load(tokenizer_file(GetParam()));
    const std::string path = (std::filesystem::temp_directory_path() / "rpt_hf_tokenizer_copy.json").string();
    tok.save(path);
    const Tokenizer back = Tokenizer::load(path);
    std::filesystem::remove(path);
    EXPECT_EQ(back.vocab_size(), tok.vocab_size());
    ASSERT_EQ(back.added_tokens().size(), tok.added_tokens().size());
    for (size_t i = 0; i < tok.added_tokens().size(); ++i) {
        const AddedToken &a = tok.added_tokens()[i], &b = back.added_tokens()[i];
        EXPECT_TRUE(a.id == b.id && a.content == b.content && a.special == b.special && a.lstrip == b.lstrip &&
                    a.rstrip == b.rstrip && a.single_word == b.single_word && a.normalized == b.normalized)
            << a.content;
    }
    expect_matches_hf(back, load_cases(GetParam()));
}

// Merges written as "a b" strings and as ["a", "b"] pairs give the same tokenizer.
TEST_P(HfTokenizerFixture, EitherMergesFormLoads) {
    nlohmann::json j = nlohmann::json::parse(read_file(tokenizer_file(GetParam())));
    for (nlohmann::json& m : j["model"]["merges"]) {
        if (m.is_string()) {
            const std::string s = m.get<std::string>();
            const size_t sp = s.find(' ');
            m = nlohmann::json::array({s.substr(0, sp), s.substr(sp + 1)});
        } else {
            m = m[0].get<std::string>() + " " + m[1].get<std::string>();
        }
    }
    expect_matches_hf(Tokenizer::from_json(j, "other-merges-form.json"), load_cases(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HfTokenizerFixture, ::testing::Values(kBaseDir, kAddedDir));

TEST(HfTokenizer, AddedTokensLoaded) {
    const Tokenizer tok = Tokenizer::load(tokenizer_file(kBaseDir));
    ASSERT_TRUE(tok.token_id("<|endoftext|>").has_value());
    ASSERT_TRUE(tok.token_id("</think>").has_value());
    EXPECT_TRUE(tok.is_added_token(*tok.token_id("<|im_start|>")));
    bool think_special = true;
    for (const AddedToken& t : tok.added_tokens())
        if (t.content == "<think>") think_special = t.special;
    EXPECT_FALSE(think_special);  // a non-special added token keeps its flag
}

const AddedToken* find_added(const Tokenizer& tok, const std::string& content) {
    for (const AddedToken& t : tok.added_tokens())
        if (t.content == content) return &t;
    return nullptr;
}

// Flags and ids as tokenizers gives them (see make_fixtures.py's second fixture).
TEST(HfTokenizer, AddedTokenFlagsAndIds) {
    const Tokenizer tok = Tokenizer::load(tokenizer_file(kAddedDir));
    // Special tokens that are also vocab entries keep their vocab ids (the trainer's 0..5).
    const AddedToken* user = find_added(tok, "<｜User｜>");
    ASSERT_NE(user, nullptr);
    EXPECT_EQ(user->id, 4);
    EXPECT_EQ(tok.token_bytes(user->id), "<｜User｜>");
    // Listed twice: the later flags win, the id stays.
    const AddedToken* start = find_added(tok, "<|im_start|>");
    ASSERT_NE(start, nullptr);
    EXPECT_EQ(start->id, 1);
    EXPECT_TRUE(start->lstrip);
    const AddedToken* mask = find_added(tok, "[MASK]");
    ASSERT_NE(mask, nullptr);
    EXPECT_TRUE(mask->lstrip && mask->rstrip && mask->special && !mask->normalized);
    const AddedToken* think = find_added(tok, "<think>");
    ASSERT_NE(think, nullptr);
    EXPECT_TRUE(think->normalized && !think->special);
    // Content that is a vocab entry takes the vocab id; written in ByteLevel characters,
    // it decodes to the bytes they stand for.
    EXPECT_EQ(find_added(tok, "The")->id, 313);
    EXPECT_EQ(tok.token_bytes(find_added(tok, "Ġhello")->id), " hello");
    // The file says id 3 for <|fim_pad|>; tokenizers gives it the next free id, and an
    // empty content is dropped.
    EXPECT_EQ(find_added(tok, "<|fim_pad|>")->id, tok.vocab_size() - 1);
    EXPECT_EQ(find_added(tok, ""), nullptr);
}

}  // namespace
}  // namespace rpt
