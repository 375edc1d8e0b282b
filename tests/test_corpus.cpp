// Tests for rl/corpus: JSONL reading (text field, presets), errors naming FILE:LINE,
// skip mode, the writer round trip, the held-out split, and the real GSM8K file
// when the shared data directory is present.
#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

#include "model/file_io.h"
#include "rl/corpus.h"
#include "tests/temp_dir.h"

namespace fs = std::filesystem;

namespace {

using rpt::testing::TempDir;

// Expects read_jsonl_corpus to throw a message that starts "PATH:LINE:" and contains `needle`.
void expect_line_error(const std::string& path, const rpt::CorpusOptions& o, int line, const std::string& needle) {
  try {
    rpt::read_jsonl_corpus(path, o);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path + ":" + std::to_string(line) + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  }
}

}  // namespace

TEST(Corpus, ReadsTextFieldAndSkipsBlankLines) {
  TempDir dir;
  const std::string p = dir.write("c.jsonl", "{\"text\": \"one\\ntwo\", \"id\": 1}\n\n{\"text\": \"caf\\u00e9 \\\"q\\\"\"}\r\n  \n");
  auto docs = rpt::read_jsonl_corpus(p);
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0], "one\ntwo");
  EXPECT_EQ(docs[1], "caf\xc3\xa9 \"q\"");
}

TEST(Corpus, CustomTextField) {
  TempDir dir;
  const std::string p = dir.write("c.jsonl", R"({"content": "abc"})" "\n");
  rpt::CorpusOptions o;
  o.text_field = "content";
  EXPECT_EQ(rpt::read_jsonl_corpus(p, o), std::vector<std::string>{"abc"});
}

TEST(Corpus, Presets) {
  TempDir dir;
  const std::string p = dir.write("g.jsonl", R"({"question": "Q1?", "answer": "A1\n#### 3"})" "\n"
                                              R"({"question": "Q2?", "answer": "A2"})" "\n");
  auto docs = rpt::read_jsonl_corpus(p, rpt::corpus_preset("gsm8k"));
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0], "Q1?\nA1\n#### 3");
  const std::string q = dir.write("o.jsonl", R"({"problem": "P", "solution": "S", "answer": "7"})" "\n");
  EXPECT_EQ(rpt::read_jsonl_corpus(q, rpt::corpus_preset("omni-math")), std::vector<std::string>{"P\nS"});
  EXPECT_EQ(rpt::corpus_preset("text").text_field, "text");
  EXPECT_THROW(rpt::corpus_preset("wiki"), std::invalid_argument);
}

TEST(Corpus, MalformedLinesNameFileAndLine) {
  TempDir dir;
  const std::string good = R"({"text": "fine"})" "\n";
  expect_line_error(dir.write("a.jsonl", good + "{\"text\": \"unterminated\n"), {}, 2, "invalid JSON");
  expect_line_error(dir.write("b.jsonl", good + good + "[1, 2]\n"), {}, 3, "not a JSON object");
  expect_line_error(dir.write("c.jsonl", R"({"txt": "x"})" "\n"), {}, 1, "missing field 'text'");
  expect_line_error(dir.write("d.jsonl", good + "\n" + R"({"text": 5})" "\n"), {}, 3, "field 'text' is not a string");
  expect_line_error(dir.write("e.jsonl", R"({"text": ""})" "\n"), {}, 1, "empty");
  expect_line_error(dir.write("f.jsonl", R"({"question": "q"})" "\n"), rpt::corpus_preset("gsm8k"), 1,
                    "missing field 'answer'");
  expect_line_error(dir.write("g.jsonl", good + R"({"text": "a"} trailing)" "\n"), {}, 2, "invalid JSON");
}

TEST(Corpus, SkipModeCountsMalformedLines) {
  TempDir dir;
  const std::string p = dir.write("s.jsonl", R"({"text": "a"})" "\nnot json\n" R"({"text": 1})" "\n[]\n"
                                             R"({"text": "b"})" "\n");
  rpt::CorpusOptions o;
  o.skip_malformed = true;
  size_t skipped = 99;
  auto docs = rpt::read_jsonl_corpus(p, o, &skipped);
  EXPECT_EQ(docs, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(skipped, 3u);
}

TEST(Corpus, MissingFileNamesPath) {
  try {
    rpt::read_jsonl_corpus("/nonexistent/dir/corpus.jsonl");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/corpus.jsonl"), std::string::npos);
  }
}

TEST(Corpus, WriteReadRoundTrip) {
  TempDir dir;
  const std::string p = (dir.path / "out.jsonl").string();
  const std::vector<std::string> docs = {"plain", "two\nlines", "quotes \" and \\ backslash", "tab\tand \xc3\xa9"};
  rpt::write_jsonl_corpus(p, docs);
  EXPECT_EQ(rpt::read_jsonl_corpus(p), docs);
  EXPECT_THROW(rpt::write_jsonl_corpus(p, {"bad \xff utf8"}), std::runtime_error);
  EXPECT_EQ(rpt::read_jsonl_corpus(p), docs);  // failed write left the old file intact
}

TEST(Corpus, HeldoutSplitIsDeterministicAndProportional) {
  size_t held = 0;
  constexpr size_t kN = 20000;
  for (size_t i = 0; i < kN; i++) {
    const bool h = rpt::is_heldout(7, i, 0.1);
    EXPECT_EQ(h, rpt::is_heldout(7, i, 0.1));
    held += h;
  }
  EXPECT_NEAR(static_cast<double>(held) / kN, 0.1, 0.01);
  // Another seed selects another set; fractions 0 and 1 are exact.
  size_t same = 0;
  for (size_t i = 0; i < kN; i++) same += rpt::is_heldout(7, i, 0.1) && rpt::is_heldout(8, i, 0.1);
  EXPECT_LT(same, held / 3);
  for (size_t i = 0; i < 1000; i++) {
    EXPECT_FALSE(rpt::is_heldout(1, i, 0.0));
    EXPECT_TRUE(rpt::is_heldout(1, i, 1.0));
  }
  std::vector<std::string> docs;
  for (int i = 0; i < 100; i++) docs.push_back(std::to_string(i));
  auto split = rpt::split_corpus(docs, 3, 0.25);
  EXPECT_EQ(split.train.size() + split.heldout.size(), docs.size());
  EXPECT_GT(split.heldout.size(), 10u);
  for (const auto& d : split.heldout) EXPECT_TRUE(rpt::is_heldout(3, std::stoul(d), 0.25));
}

TEST(Corpus, Gsm8kTrainFile) {
  // Relative to the repository root, where the test binary is run from.
  const std::string path = "../shared/data/gsm8k/train.jsonl";
  if (!fs::exists(path)) GTEST_SKIP() << path << " not present";
  auto docs = rpt::read_jsonl_corpus(path, rpt::corpus_preset("gsm8k"));
  ASSERT_EQ(docs.size(), 7473u);
  EXPECT_EQ(docs[0].rfind("Natalia sold clips", 0), 0u);
  EXPECT_NE(docs[0].find("\n#### 72"), std::string::npos);
}
