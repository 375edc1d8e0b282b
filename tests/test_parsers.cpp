// Bad input to each file parser is one clear error naming the file (and line or field),
// never a crash or a foreign exception: the cases the fuzz targets (fuzz/) found, kept
// as regressions, plus the range checks added with them.
#include <gtest/gtest.h>

#include <sstream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/safetensors_index.h"
#include "model/trainer_state.h"
#include "rl/corpus.h"
#include "rl/positions.h"
#include "rl/templates.h"

namespace rpt {
namespace {

// The message of the std::exception `f` throws ("" if none); a foreign exception type
// (not runtime_error / invalid_argument) fails the test.
template <typename F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const std::runtime_error& e) {
        return e.what();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

#define EXPECT_ERROR_HAS(expr, needle)                                                   \
    do {                                                                                 \
        const std::string msg_ = error_of([&] { (void)(expr); });                        \
        EXPECT_NE(msg_.find(needle), std::string::npos) << "message: '" << msg_ << "'"; \
    } while (0)

std::vector<std::string> corpus(const std::string& text, bool skip = false, size_t* skipped = nullptr) {
    std::istringstream in(text);
    CorpusOptions o = corpus_preset("gsm8k");
    o.skip_malformed = skip;
    return read_jsonl_corpus(in, "c.jsonl", o, skipped);
}

TEST(Parsers, CorpusNumberOverflowIsAMalformedLine) {
    const std::string text = "{\"question\": \"q\", \"answer\": \"a\"}\n{\"question\": 1e400, \"answer\": \"a\"}\n";
    EXPECT_ERROR_HAS(corpus(text), "c.jsonl:2: invalid JSON");
    size_t skipped = 0;
    EXPECT_EQ(corpus(text, true, &skipped).size(), 1u);
    EXPECT_EQ(skipped, 1u);
}

std::vector<ScoredPosition> positions(const std::string& text) {
    std::istringstream in(text);
    return read_positions(in, "p.jsonl");
}

TEST(Parsers, PositionsRangeChecked) {
    EXPECT_EQ(positions("{\"doc\": 3, \"pos\": 2, \"entropy\": 0.5}\n").at(0).position, 2);
    EXPECT_ERROR_HAS(positions("{\"doc\": 0, \"pos\": 0, \"entropy\": 0.5}"), "p.jsonl:1: bad position record");
    EXPECT_ERROR_HAS(positions("{\"doc\": 0, \"pos\": 4294967297, \"entropy\": 0.5}"), "'pos'");
    EXPECT_ERROR_HAS(positions("{\"doc\": 1e300, \"pos\": 1, \"entropy\": 0.5}"), "'doc'");
    EXPECT_ERROR_HAS(positions("{\"doc\": -1, \"pos\": 1, \"entropy\": 0.5}"), "'doc'");
    EXPECT_ERROR_HAS(positions("{\"doc\": 0, \"pos\": 1, \"entropy\": 1e300}"), "'entropy'");
    EXPECT_ERROR_HAS(positions("\n[1, 2]"), "p.jsonl:2:");
    EXPECT_ERROR_HAS(positions("{\"doc\": 0, \"pos\": 1, \"entropy\": 1e400}"), "p.jsonl:1:");
}

TEST(Parsers, SafetensorsIndex) {
    const auto map = parse_safetensors_index(R"({"weight_map": {"a": "x.safetensors"}})", "i.json");
    EXPECT_EQ(map.at("a"), "x.safetensors");
    EXPECT_ERROR_HAS(parse_safetensors_index(R"({"metadata": {"total_size": 1e400}, "weight_map": {}})", "i.json"),
                     "i.json: invalid JSON");
    EXPECT_ERROR_HAS(parse_safetensors_index(std::string("{\"weight_map\": {\"a\": \"x\\u0000y\"}}"), "i.json"),
                     "not a file name");
}

TEST(Parsers, TrainerState) {
    const std::string good =
        R"({"version": 1, "step": 3, "optimizer_steps": 3, "rng_state": 18446744073709551615, "data_cursor": 9})";
    const TrainingStateFile f = parse_training_state(good, "s.json");
    EXPECT_EQ(f.state.step, 3);
    EXPECT_EQ(f.state.rng_state, 18446744073709551615ull);
    nlohmann::json j = nlohmann::json::parse(good);
    j["step"] = -1;
    EXPECT_ERROR_HAS(parse_training_state(j.dump(), "s.json"), "s.json: field 'step'");
    j = nlohmann::json::parse(good);
    j["version"] = "1";
    EXPECT_ERROR_HAS(parse_training_state(j.dump(), "s.json"), "unsupported version");
    j = nlohmann::json::parse(good);
    j["extra"] = 5;
    EXPECT_ERROR_HAS(parse_training_state(j.dump(), "s.json"), "'extra'");
    EXPECT_ERROR_HAS(parse_training_state(std::string(100, '[') + std::string(100, ']'), "s.json"), "s.json");
    j = nlohmann::json::parse(good);
    j["extra"] = nlohmann::json::parse("{\"x\": " + std::string(100, '[') + std::string(100, ']') + "}");
    EXPECT_ERROR_HAS(parse_training_state(j.dump(), "s.json"), "nested deeper");
}

TEST(Parsers, ConfigIntegersRangeChecked) {
    nlohmann::json j = model_preset("tiny").to_hf_json();
    EXPECT_NO_THROW(ModelConfig::from_hf_json(j, "c.json"));
    j["vocab_size"] = 4294967301ull;  // 2^32 + 5 must not read as 5
    EXPECT_ERROR_HAS(ModelConfig::from_hf_json(j, "c.json"), "'vocab_size' must be a 32-bit integer");
    j = model_preset("tiny").to_hf_json();
    j["num_attention_heads"] = 65536;  // products of sizes would overflow
    j["head_dim"] = 65536;
    EXPECT_ERROR_HAS(ModelConfig::from_hf_json(j, "c.json"), "at most");
    j = model_preset("tiny").to_hf_json();
    j["rope_theta"] = 1e300;
    EXPECT_ERROR_HAS(ModelConfig::from_hf_json(j, "c.json"), "'rope_theta' must be a finite number");
}

TEST(Parsers, TemplateOptionalFieldsTyped) {
    nlohmann::json j = load_template("compact").to_json();
    EXPECT_NO_THROW(PromptTemplate::from_json(j, "t.json"));
    j["brace_matched"] = "yes";
    EXPECT_ERROR_HAS(PromptTemplate::from_json(j, "t.json"), "t.json: template field 'brace_matched'");
    j = load_template("compact").to_json();
    j["name"] = 3;
    EXPECT_ERROR_HAS(PromptTemplate::from_json(j, "t.json"), "t.json: template field 'name'");
}

}  // namespace
}  // namespace rpt
