// Tests of the byte-level BPE tokenizer: pre-tokenizer pieces derived by hand from the
// Qwen2 regex, NFC, BPE merge order against a naive reference, round trips (random
// bytes included), added tokens, training, tokenizer.json save/load and its errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/bpe_trainer.h"
#include "model/byte_level.h"
#include "model/pretokenizer.h"
#include "model/tokenizer.h"

namespace rpt {
namespace {

using json = nlohmann::json;
using Pieces = std::vector<std::string>;

// A tokenizer.json with the 256 byte tokens (GPT-2 order) plus `merges` (raw byte
// strings; their results get the next ids) and the Qwen2 pre-processing.
json make_json(const std::vector<std::pair<std::string, std::string>>& merges) {
    json vocab = json::object();
    int next = 0;
    for (uint8_t b : gpt2_byte_order()) vocab[bytes_to_mapped(std::string(1, char(b)))] = next++;
    json merge_list = json::array();
    for (const auto& [a, b] : merges) {
        const std::string ab = bytes_to_mapped(a + b);
        if (!vocab.contains(ab)) vocab[ab] = next++;
        merge_list.push_back(bytes_to_mapped(a) + " " + bytes_to_mapped(b));
    }
    json bl = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
    return {{"version", "1.0"},
            {"added_tokens", json::array()},
            {"normalizer", {{"type", "NFC"}}},
            {"pre_tokenizer",
             {{"type", "Sequence"},
              {"pretokenizers",
               {{{"type", "Split"}, {"pattern", {{"Regex", kQwen2SplitPattern}}}, {"behavior", "Isolated"}, {"invert", false}},
                bl}}}},
            {"post_processor", bl},
            {"decoder", bl},
            {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"vocab", vocab}, {"merges", merge_list}}}};
}

Tokenizer make_tokenizer(const std::vector<std::pair<std::string, std::string>>& merges) {
    return Tokenizer::from_json(make_json(merges), "test");
}

std::vector<std::string> token_strings(const Tokenizer& t, const std::vector<int32_t>& ids) {
    std::vector<std::string> out;
    for (int32_t id : ids) out.push_back(t.token_bytes(id));
    return out;
}

// Deterministic mixed-language corpus for training.
std::vector<std::string> make_corpus(int num_docs, uint32_t seed) {
    const std::vector<std::string> words = {
        "the", "of", "and", "to", "in", "is", "that", "for", "it", "with", "as", "was", "on",
        "token", "reasoning", "model", "predict", "next", "reward", "policy", "gradient",
        "I'm", "DON'T", "we'll", "they've", "Hello", "World", "def", "return", "self",
        "привет", "мир", "日本語", "中文", "テキスト", "ភាសាខ្មែរ", "café", "naïve",
        "x = 3 * (y + 12);", "if (a < b) {", "}", "\t", "\n", "\n\n", "  ", "42", "3.14159",
        "2024", "🙂", "👩‍💻", "==", "->", "::", "#include", "<ctx>"};
    std::mt19937 rng(seed);
    std::vector<std::string> docs;
    for (int d = 0; d < num_docs; ++d) {
        std::string doc;
        const int n = 20 + int(rng() % 200);
        for (int i = 0; i < n; ++i) {
            if (i) doc += (rng() % 7 == 0) ? "" : " ";
            doc += words[rng() % words.size()];
            if (rng() % 13 == 0) doc += std::to_string(rng() % 100000);
        }
        docs.push_back(doc);
    }
    return docs;
}

const Tokenizer& trained() {
    static const Tokenizer t = train_bpe(make_corpus(400, 1), 1024, {"<|endoftext|>", "<think>"});
    return t;
}

std::string random_bytes(std::mt19937& rng, size_t max_len) {
    std::string s(rng() % (max_len + 1), '\0');
    for (char& c : s) {
        // Mostly ASCII so that merges fire, with lead/continuation bytes and raw noise.
        const uint32_t r = rng() % 10;
        c = char(r < 5 ? 32 + rng() % 95 : r < 7 ? 0x80 + rng() % 0x40 : r < 8 ? 0xC2 + rng() % 0x30 : rng() % 256);
    }
    return s;
}

// HF BPE semantics done the slow, obvious way: merge the lowest-rank adjacent pair,
// leftmost among equals, until none is left.
std::vector<std::string> naive_bpe(const std::string& piece, const json& tok_json) {
    std::unordered_map<std::string, int> rank;
    const json& merges = tok_json["model"]["merges"];
    for (size_t r = 0; r < merges.size(); ++r) {
        const std::string m = merges[r].get<std::string>();
        rank.emplace(m, int(r));
    }
    std::vector<std::string> sym;  // mapped form
    for (char c : piece) sym.push_back(bytes_to_mapped(std::string(1, c)));
    while (true) {
        int best = INT_MAX;
        size_t at = 0;
        for (size_t i = 0; i + 1 < sym.size(); ++i) {
            auto it = rank.find(sym[i] + " " + sym[i + 1]);
            if (it != rank.end() && it->second < best) best = it->second, at = i;
        }
        if (best == INT_MAX) break;
        sym[at] += sym[at + 1];
        sym.erase(sym.begin() + long(at) + 1);
    }
    std::vector<std::string> out;
    for (const std::string& s : sym) {
        std::string raw;
        EXPECT_TRUE(mapped_to_bytes(s, &raw));
        out.push_back(raw);
    }
    return out;
}

std::string temp_path(const std::string& name) {
    return "/tmp/rpt_test_tokenizer_" + std::to_string(getpid()) + "_" + name;
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
}

// Loads `text` as a tokenizer.json file; returns the error message ("" if it loads).
std::string load_error(const std::string& text) {
    const std::string path = temp_path("bad.json");
    write_file(path, text);
    try {
        Tokenizer::load(path);
    } catch (const std::runtime_error& e) {
        std::remove(path.c_str());
        return e.what();
    }
    std::remove(path.c_str());
    return "";
}

// ------------------------------------------------------------------ ByteLevel

TEST(TokenizerByteLevel, Gpt2Alphabet) {
    EXPECT_EQ(gpt2_byte_order()[0], uint8_t('!'));
    EXPECT_EQ(gpt2_byte_order()[93], uint8_t('~'));
    EXPECT_EQ(gpt2_byte_order()[188], uint8_t(0));  // first non-printable byte: U+0100
    EXPECT_EQ(bytes_to_mapped(" "), "\u0120");      // 'Ġ'
    EXPECT_EQ(bytes_to_mapped("\n"), "\u010A");     // 'Ċ'
    EXPECT_EQ(bytes_to_mapped("a\xFF"), "a\u00FF");
    std::string all;
    for (int b = 0; b < 256; ++b) all += char(b);
    std::string back;
    ASSERT_TRUE(mapped_to_bytes(bytes_to_mapped(all), &back));
    EXPECT_EQ(back, all);
    EXPECT_FALSE(mapped_to_bytes(" ", &back));  // a raw space is not in the alphabet
    EXPECT_FALSE(mapped_to_bytes("中", &back));
}

// ------------------------------------------------------------------ pre-tokenizer

TEST(TokenizerPreTokenize, KnownPieces) {
    const SplitRegex re(kQwen2SplitPattern);
    auto split = [&](const std::string& s) {
        std::vector<std::string_view> v;
        re.split(s, &v);
        return Pieces(v.begin(), v.end());
    };
    EXPECT_EQ(split("Hello world 123"), (Pieces{"Hello", " world", " ", "1", "2", "3"}));
    EXPECT_EQ(split("  x\n\n y"), (Pieces{" ", " x", "\n\n", " y"}));
    EXPECT_EQ(split("I'm DON'T don't"), (Pieces{"I", "'m", " DON", "'T", " don", "'t"}));
    EXPECT_EQ(split("we'LL they'Ve"), (Pieces{"we", "'LL", " they", "'Ve"}));
    EXPECT_EQ(split("abc12345def"), (Pieces{"abc", "1", "2", "3", "4", "5", "def"}));
    EXPECT_EQ(split("foo.bar()"), (Pieces{"foo", ".bar", "()"}));
    EXPECT_EQ(split("x  \n"), (Pieces{"x", "  \n"}));
    EXPECT_EQ(split("a\tb"), (Pieces{"a", "\tb"}));
    EXPECT_EQ(split("if (x):\n    return 1"),
              (Pieces{"if", " (", "x", "):\n", "   ", " return", " ", "1"}));
    EXPECT_EQ(split("日本語 テキスト"), (Pieces{"日本語", " テキスト"}));
    EXPECT_EQ(split(""), Pieces{});
    // U+0085 (NEL) is whitespace for Oniguruma, which Hugging Face uses.
    EXPECT_EQ(split("x\u0085\u0085y"), (Pieces{"x", "\u0085", "\u0085y"}));
}

TEST(TokenizerPreTokenize, InvalidUtf8BecomesItsOwnPiece) {
    const SplitRegex re(kQwen2SplitPattern);
    auto split = [&](const std::string& s) {
        std::vector<std::string_view> v;
        re.split(s, &v);
        return Pieces(v.begin(), v.end());
    };
    EXPECT_EQ(split("ab\xFF" "cd"), (Pieces{"ab", "\xFF", "cd"}));
    EXPECT_EQ(split(" \xC3"), (Pieces{" ", "\xC3"}));  // truncated 2-byte character
    EXPECT_EQ(split(std::string("a\0b", 3)), (Pieces{"a", std::string("\0b", 2)}));
}

TEST(TokenizerPreTokenize, PathologicalRunsDoNotFail) {
    const SplitRegex re(kQwen2SplitPattern);
    for (const std::string& s : {std::string(1 << 20, ' '), std::string(1 << 20, '\n'),
                                 std::string(1 << 20, 'a'), std::string(1 << 20, '!'),
                                 std::string(1 << 20, '\xFF')}) {
        std::vector<std::string_view> v;
        re.split(s, &v);
        size_t total = 0;
        for (auto p : v) total += p.size();
        EXPECT_EQ(total, s.size());
    }
}

// ------------------------------------------------------------------ NFC

TEST(TokenizerNfc, NormalisesValidRunsAndPassesInvalidBytes) {
    EXPECT_EQ(nfc_normalize("e\u0301"), "\u00E9");
    EXPECT_EQ(nfc_normalize("\xFF" "e\u0301\xFE"), "\xFF\u00E9\xFE");
    EXPECT_EQ(nfc_normalize("\xED\xA0\x80"), "\xED\xA0\x80");  // surrogate: invalid, kept
    EXPECT_EQ(nfc_normalize("plain ascii"), "plain ascii");
    const Tokenizer& t = trained();
    EXPECT_EQ(t.encode("caf" "e\u0301 x"), t.encode("caf\u00E9 x"));
    EXPECT_EQ(t.decode(t.encode("e\u0301")), "\u00E9");  // non-NFC decodes to NFC
}

// ------------------------------------------------------------------ BPE

TEST(TokenizerBpe, MergeRankOrderAndLeftmostTies) {
    {
        const Tokenizer t = make_tokenizer({{"a", "b"}, {"b", "c"}});
        EXPECT_EQ(token_strings(t, t.encode("abc")), (Pieces{"ab", "c"}));
    }
    {
        const Tokenizer t = make_tokenizer({{"b", "c"}, {"a", "b"}});
        EXPECT_EQ(token_strings(t, t.encode("abc")), (Pieces{"a", "bc"}));
    }
    {
        const Tokenizer t = make_tokenizer({{"a", "a"}});
        EXPECT_EQ(token_strings(t, t.encode("aaa")), (Pieces{"aa", "a"}));
        EXPECT_EQ(token_strings(t, t.encode("aaaaa")), (Pieces{"aa", "aa", "a"}));
    }
    {
        const Tokenizer t = make_tokenizer({{"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {" ", "w"}});
        EXPECT_EQ(token_strings(t, t.encode("hello world")), (Pieces{"hello", " w", "o", "r", "l", "d"}));
    }
}

TEST(TokenizerBpe, MatchesNaiveReference) {
    const Tokenizer& t = trained();
    const json j = t.to_json();
    std::mt19937 rng(7);
    const auto corpus = make_corpus(20, 99);
    for (const std::string& doc : corpus) {
        for (const std::string& piece : t.pre_tokenize(doc)) {
            const std::vector<std::string> got = token_strings(t, t.encode(piece));
            ASSERT_EQ(got, naive_bpe(piece, j)) << "piece: " << piece;
        }
    }
}

// ------------------------------------------------------------------ round trips

TEST(TokenizerRoundTrip, RandomBytes) {
    const Tokenizer tiny = make_tokenizer({});
    std::mt19937 rng(12345);
    for (int i = 0; i < 2000; ++i) {
        const std::string s = random_bytes(rng, 64);
        const std::string expect = nfc_normalize(s);  // == s unless s holds non-NFC text
        ASSERT_EQ(trained().decode(trained().encode(s)), expect) << "case " << i;
        ASSERT_EQ(tiny.decode(tiny.encode(s)), expect) << "case " << i;
        const std::vector<int32_t> ids = tiny.encode(s);
        EXPECT_EQ(ids.size(), expect.size());  // no merges: one token per byte
    }
}

TEST(TokenizerRoundTrip, Multilingual) {
    const std::vector<std::string> texts = {
        "The quick brown fox jumps over the lazy dog.",
        "int main() {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n",
        "digits 1234567890 and 3.14159e-10",
        "I'm sure DON'T WE'LL they've",
        "日本語のテキストと中文文本",
        "Привет, мир! Съешь же ещё этих мягких французских булок.",
        "ភាសាខ្មែរ",
        "family: 👨‍👩‍👧‍👦, coder: 👩🏽‍💻, flag: 🇯🇵",
        "combining: x\u0323\u0301 \u00E9\u0301 q\u0307",  // already NFC
        "   leading and trailing spaces   \n\n\n",
        "<|endoftext|>special<think>mixed</think><|endoftext|>",
        "",
    };
    for (const std::string& s : texts) {
        ASSERT_EQ(nfc_normalize(s), s);
        EXPECT_EQ(trained().decode(trained().encode(s)), s) << s;
    }
}

// ------------------------------------------------------------------ added tokens

TEST(TokenizerAdded, LeftmostLongestNeverMerged) {
    Tokenizer t = make_tokenizer({{"<", "t"}, {"a", "b"}});
    const int32_t think = t.add_special_token("<think>");
    const int32_t thinkx = t.add_special_token("<think>x");
    EXPECT_EQ(think, t.vocab_size() - 2);
    EXPECT_EQ(thinkx, t.vocab_size() - 1);
    EXPECT_EQ(t.add_special_token("<think>"), think);  // existing: same id
    const std::vector<int32_t> ids = t.encode("ab<think>xy<think>y<think");
    ASSERT_GE(ids.size(), 4u);
    EXPECT_EQ(token_strings(t, ids), (Pieces{"ab", "<think>x", "y", "<think>", "y", "<t", "h", "i", "n", "k"}));
    EXPECT_EQ(t.token_id("<think>"), think);
    EXPECT_EQ(t.token_bytes(thinkx), "<think>x");
    EXPECT_TRUE(t.is_added_token(think));
    EXPECT_FALSE(t.is_added_token(0));
}

TEST(TokenizerAdded, MatchedBeforeNormalisation) {
    Tokenizer t = make_tokenizer({});
    const int32_t id = t.add_special_token("e\u0301");  // not NFC on purpose
    const std::vector<int32_t> raw = t.encode("xe\u0301y");
    EXPECT_NE(std::find(raw.begin(), raw.end(), id), raw.end());
    const std::vector<int32_t> nfc = t.encode("x\u00E9y");
    EXPECT_EQ(std::find(nfc.begin(), nfc.end(), id), nfc.end());
}

// A tokenizer with the given added tokens (content and flags) after a merge-less vocab.
Tokenizer with_added(const std::vector<std::pair<std::string, json>>& tokens) {
    json j = make_json({});
    for (const auto& [content, flags] : tokens) {
        json a = {{"id", 0}, {"content", content}, {"special", true}, {"normalized", false}};
        a.update(flags);
        j["added_tokens"].push_back(a);
    }
    return Tokenizer::from_json(j, "added");
}

// The semantics tokenizers has (added_tokens.h), on small cases; the HF fixtures check
// them against tokenizers itself.
TEST(TokenizerAdded, StripAndSingleWordAsHuggingFace) {
    const Tokenizer l = with_added({{"<X>", {{"lstrip", true}}}, {"<Y>", {{"rstrip", true}}}});
    EXPECT_EQ(token_strings(l, l.encode("a \u3000<X> b")), (Pieces{"a", "<X>", " ", "b"}));
    EXPECT_EQ(token_strings(l, l.encode("<Y> \n <X>")), (Pieces{"<Y>", "<X>"}));  // strips never overlap
    EXPECT_EQ(token_strings(l, l.encode("a\x1c<X>")), (Pieces{"a", "\x1c", "<X>"}));  // not White_Space
    const Tokenizer w = with_added({{"<X>", {{"single_word", true}}}, {"X>", json::object()}});
    EXPECT_EQ(w.encode("a <X>.").size(), 4u);   // a, space, <X>, .
    EXPECT_EQ(token_strings(w, w.encode("a<X>")), (Pieces{"a", "<", "X", ">"}));  // dropped, X> not tried
    EXPECT_EQ(w.encode("_<X>").size(), 4u);
    EXPECT_EQ(w.encode("\u00b2<X>").size(), 3u);  // (2 bytes) "²" is not a word character
    EXPECT_EQ(w.encode("x\u0301<X>").size(), 6u);  // a combining mark is (x + 2 bytes + 3)
    // rstrip white space that holds later matches: those are emitted again (as HF does).
    const Tokenizer r = with_added({{"<X>", {{"rstrip", true}}}, {"\n", json::object()}});
    EXPECT_EQ(token_strings(r, r.encode("<X>\n \nb")), (Pieces{"<X>", "\n", " ", "\n", "b"}));
}

TEST(TokenizerAdded, NormalizedTokensMatchAfterNfc) {
    const Tokenizer t = with_added({{"Caf\u00e9", {{"normalized", true}}}, {"bc", json::object()}, {"ab", {{"normalized", true}}}});
    const int32_t cafe = *t.token_id("Caf\u00e9");
    EXPECT_EQ(t.encode("Cafe\u0301")[0], cafe);
    EXPECT_EQ(t.encode("Caf\u00e9")[0], cafe);
    // Raw-text tokens are split out first, so "bc" wins over "ab" that starts earlier.
    EXPECT_EQ(token_strings(t, t.encode("abc")), (Pieces{"a", "bc"}));
}

TEST(TokenizerAdded, IdsAsHuggingFaceAssigns) {
    // The vocab id for a vocab entry; else the next id after the vocab, whatever the
    // file says; a repeated content keeps its id and takes the later flags.
    const Tokenizer t = with_added({{"<A>", {{"id", 7}}}, {"!", {{"id", 99}}}, {"<B>", json::object()},
                                    {"<A>", {{"lstrip", true}}}, {"", json::object()}});
    EXPECT_EQ(t.token_id("<A>"), 256);
    EXPECT_EQ(t.token_id("!"), 0);
    EXPECT_EQ(t.token_id("<B>"), 257);
    EXPECT_EQ(t.vocab_size(), 258);
    ASSERT_EQ(t.added_tokens().size(), 3u);
    EXPECT_TRUE(t.added_tokens()[0].lstrip);
}

TEST(TokenizerAdded, VocabEntriesOutsideTheAlphabetLoad) {
    // A trainer's special tokens in model.vocab (not ByteLevel characters) decode to their text.
    json j = make_json({});
    j["model"]["vocab"]["<\uff5cUser\uff5c>"] = 256;
    j["added_tokens"].push_back({{"id", 256}, {"content", "<\uff5cUser\uff5c>"}, {"special", true}});
    const Tokenizer t = Tokenizer::from_json(j, "specials-in-vocab");
    EXPECT_EQ(t.encode("a<\uff5cUser\uff5c>"), (std::vector<int32_t>{*t.token_id("a"), 256}));
    EXPECT_EQ(t.decode({256}), "<\uff5cUser\uff5c>");
    EXPECT_EQ(Tokenizer::from_json(t.to_json(), "again").to_json_text(), t.to_json_text());
}

TEST(TokenizerAdded, TrainedSpecialsComeAfterBpeVocab) {
    const Tokenizer& t = trained();
    EXPECT_EQ(t.vocab_size(), 1024);
    EXPECT_EQ(t.token_id("<|endoftext|>"), 1022);
    EXPECT_EQ(t.token_id("<think>"), 1023);
    const std::vector<int32_t> ids = t.encode("a<|endoftext|>b");
    EXPECT_EQ(ids.size(), 3u);
    EXPECT_EQ(ids[1], 1022);
    EXPECT_THROW(t.token_bytes(1024), std::out_of_range);
    EXPECT_THROW(t.decode({-1}), std::out_of_range);
}

// ------------------------------------------------------------------ training

TEST(TokenizerTrain, DeterministicExactSizeAndCompresses) {
    const auto corpus = make_corpus(300, 5);
    const Tokenizer a = train_bpe(corpus, 700, {"<|endoftext|>"});
    const Tokenizer b = train_bpe(corpus, 700, {"<|endoftext|>"});
    EXPECT_EQ(a.to_json_text(), b.to_json_text());
    EXPECT_EQ(a.vocab_size(), 700);
    EXPECT_GT(a.num_merges(), 0);
    const Tokenizer bytes_only = train_bpe(corpus, 257, {"<|endoftext|>"});
    EXPECT_EQ(bytes_only.num_merges(), 0);
    size_t merged = 0, unmerged = 0;
    for (const std::string& doc : corpus) {
        merged += a.encode(doc).size();
        unmerged += bytes_only.encode(doc).size();
    }
    EXPECT_LT(merged * 2, unmerged);  // a 700-token vocab on this corpus at least halves it
    // No learned token spans a special token or crosses a pre-tokenizer piece boundary.
    for (int32_t id = 0; id < a.vocab_size() - 1; ++id)
        EXPECT_EQ(a.token_bytes(id).find("<|endoftext|>"), std::string::npos);
}

TEST(TokenizerTrain, StopsWhenCorpusIsExhausted) {
    const Tokenizer t = train_bpe({"abab ab"}, 5000, {});
    EXPECT_LT(t.vocab_size(), 5000);
    EXPECT_EQ(t.encode("abab").size(), 1u);
    EXPECT_THROW(train_bpe({"x"}, 256, {"<s>"}), std::invalid_argument);
}

TEST(TokenizerTrain, FastEnough) {
    const auto corpus = make_corpus(4000, 3);  // about 2 MB
    size_t bytes = 0;
    for (const auto& d : corpus) bytes += d.size();
    const auto t0 = std::chrono::steady_clock::now();
    const Tokenizer t = train_bpe(corpus, 4096, {"<|endoftext|>"});
    const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto t1 = std::chrono::steady_clock::now();
    size_t tokens = 0;
    for (const auto& d : corpus) tokens += t.encode(d).size();
    const double enc_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    std::printf("train %.2f MB to vocab %d: %.2f s; encode %.1f MB/s (%.2f bytes/token)\n",
                double(bytes) / 1e6, t.vocab_size(), train_s, double(bytes) / 1e6 / enc_s,
                double(bytes) / double(tokens));
    EXPECT_LT(train_s, 30.0);
}

// ------------------------------------------------------------------ tokenizer.json

TEST(TokenizerJson, SaveLoadIdentical) {
    const Tokenizer& t = trained();
    const std::string path = temp_path("tok.json");
    t.save(path);
    const Tokenizer u = Tokenizer::load(path);
    EXPECT_EQ(u.to_json_text(), t.to_json_text());
    EXPECT_EQ(u.to_json(), t.to_json());
    for (const std::string& doc : make_corpus(30, 11)) EXPECT_EQ(u.encode(doc), t.encode(doc));
    std::remove(path.c_str());
    // The file is Hugging Face shaped.
    const json j = t.to_json();
    EXPECT_EQ(j["version"], "1.0");
    EXPECT_TRUE(j["truncation"].is_null());
    EXPECT_EQ(j["normalizer"]["type"], "NFC");
    EXPECT_EQ(j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"], kQwen2SplitPattern);
    EXPECT_EQ(j["model"]["type"], "BPE");
    EXPECT_EQ(j["model"]["vocab"]["!"], 0);
    EXPECT_EQ(j["added_tokens"][0]["content"], "<|endoftext|>");
    EXPECT_EQ(j["added_tokens"][0]["normalized"], false);
}

TEST(TokenizerJson, MergesAsPairs) {
    json j = trained().to_json();
    json pairs = json::array();
    for (const json& m : j["model"]["merges"]) {
        const std::string s = m.get<std::string>();
        pairs.push_back({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
    }
    j["model"]["merges"] = pairs;
    const Tokenizer u = Tokenizer::from_json(j, "pairs");
    EXPECT_EQ(u.to_json_text(), trained().to_json_text());
}

TEST(TokenizerJson, ErrorsNameFileAndField) {
    const std::string good = make_json({{"a", "b"}}).dump();
    std::string msg = load_error("{ not json");
    EXPECT_NE(msg.find("rpt_test_tokenizer"), std::string::npos) << msg;
    EXPECT_NE(msg.find("json"), std::string::npos) << msg;

    json j = make_json({{"a", "b"}});
    j.erase("model");
    msg = load_error(j.dump());
    EXPECT_NE(msg.find("bad.json: model: missing"), std::string::npos) << msg;

    j = make_json({{"a", "b"}});
    j["model"]["merges"].push_back("a zzz");
    msg = load_error(j.dump());
    EXPECT_NE(msg.find("model.merges[1]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("zzz"), std::string::npos) << msg;

    j = make_json({});
    j["model"].erase("vocab");
    EXPECT_NE(load_error(j.dump()).find("model.vocab: missing"), std::string::npos);

    j = make_json({});
    j["model"]["vocab"].erase("!");
    EXPECT_NE(load_error(j.dump()).find("model.vocab: no token for byte 33"), std::string::npos);

    j = make_json({});
    j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
    EXPECT_NE(load_error(j.dump()).find("pre_tokenizer.pretokenizers[0].pattern.Regex"), std::string::npos);

    j = make_json({});
    j["added_tokens"] = json::array({{{"id", 300}, {"content", "<x>"}, {"lstrip", "yes"}}});
    EXPECT_NE(load_error(j.dump()).find("added_tokens[0].lstrip: not a boolean"), std::string::npos);

    EXPECT_NE(load_error(good), "x");  // the unmodified file loads
    EXPECT_EQ(load_error(good), "");
    try {
        Tokenizer::load("/nonexistent/tokenizer.json");
        FAIL();
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/tokenizer.json: file"), std::string::npos);
    }
}

TEST(TokenizerJson, Gpt2StylePreTokenizerAndIgnoreMerges) {
    json j = make_json({{"a", "b"}, {"ab", "c"}});
    j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
    Tokenizer t = Tokenizer::from_json(j, "gpt2");
    EXPECT_EQ(t.pre_tokenize("Hello world 123"), (Pieces{"Hello", " world", " 123"}));
    EXPECT_EQ(Tokenizer::from_json(t.to_json(), "again").to_json_text(), t.to_json_text());
    // ignore_merges: a piece that is itself a vocab token is emitted whole.
    j = make_json({{"b", "c"}, {"a", "b"}, {"ab", "c"}});
    EXPECT_EQ(token_strings(Tokenizer::from_json(j, "x"), Tokenizer::from_json(j, "x").encode("abc")), (Pieces{"a", "bc"}));
    j["model"]["ignore_merges"] = true;
    const Tokenizer ig = Tokenizer::from_json(j, "ignore");
    EXPECT_EQ(token_strings(ig, ig.encode("abc")), (Pieces{"abc"}));
    EXPECT_EQ(ig.to_json()["model"]["ignore_merges"], true);
}

TEST(TokenizerThreads, ConcurrentEncodeMatchesSerial) {
    const Tokenizer& t = trained();
    const auto corpus = make_corpus(64, 21);
    std::vector<std::vector<int32_t>> serial, parallel(corpus.size());
    for (const auto& d : corpus) serial.push_back(t.encode(d));
    std::vector<std::thread> threads;
    for (int k = 0; k < 4; ++k)
        threads.emplace_back([&, k] {
            for (size_t i = size_t(k); i < corpus.size(); i += 4) parallel[i] = t.encode(corpus[i]);
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(parallel, serial);
}

TEST(TokenizerTokenBytes, CumulativeLengthsMatchText) {
    const Tokenizer& t = trained();
    const std::string text = "reward 1234 привет 🙂 done";
    const std::vector<int32_t> ids = t.encode(text);
    size_t total = 0;
    for (int32_t id : ids) {
        const std::string& b = t.token_bytes(id);
        EXPECT_EQ(text.compare(total, b.size(), b), 0);
        total += b.size();
    }
    EXPECT_EQ(total, text.size());
    EXPECT_EQ(t.token_byte_table().size(), size_t(t.vocab_size()));
}

// A model's head may be wider than its tokenizer (Qwen2 pads it): a sampled id past the
// vocabulary has no text, where decode() would throw.
TEST(TokenizerTokenBytes, DecodeSampledSkipsIdsPastTheVocabulary) {
    const Tokenizer& t = trained();
    const std::vector<int32_t> ids = t.encode("reward 1234");
    std::vector<int32_t> sampled = ids;
    sampled.insert(sampled.begin() + 1, t.vocab_size() + 7);
    sampled.push_back(-1);
    EXPECT_EQ(t.decode_sampled(sampled), "reward 1234");
    EXPECT_THROW(t.decode(sampled), std::out_of_range);
}

}  // namespace
}  // namespace rpt
