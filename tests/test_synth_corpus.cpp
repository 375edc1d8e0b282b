// Tests for rl/synth_corpus: determinism, index independence, format and length
// bounds, variety, and — most important — that every equation in the worked
// solutions is arithmetically true and the answer is produced by the steps.
#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <cmath>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "rl/synth_corpus.h"

namespace {

// A number as printed in the documents: "42", "$7.35".
double parse_number(const std::string& tok) {
  return std::stod(tok[0] == '$' ? tok.substr(1) : tok);
}

// Evaluates "n op n op n ..." (op in + - * /) with the usual precedence, left to right.
double evaluate(const std::string& expr) {
  std::istringstream in(expr);
  std::vector<std::string> toks;
  for (std::string t; in >> t;) toks.push_back(t);
  double sum = 0, term = parse_number(toks[0]);
  char pending_add = '+';
  for (size_t i = 1; i + 1 < toks.size(); i += 2) {
    const char op = toks[i][0];
    const double v = parse_number(toks[i + 1]);
    if (op == '*') term *= v;
    else if (op == '/') term /= v;
    else {
      sum = pending_add == '+' ? sum + term : sum - term;
      term = v;
      pending_add = op;
    }
  }
  return pending_add == '+' ? sum + term : sum - term;
}

bool close(double a, double b) { return std::fabs(a - b) <= 1e-9 * std::max(1.0, std::fabs(b)); }

bool is_number(const std::string& w) {
  size_t i = w[0] == '$' ? 1 : 0, digits = 0, dots = 0;
  for (; i < w.size(); i++) {
    if (std::isdigit(static_cast<unsigned char>(w[i]))) digits++;
    else if (w[i] == '.' && digits > 0 && dots == 0 && i + 1 < w.size()) dots++;
    else return false;
  }
  return digits > 0;
}

// Splits `doc` into equation chains such as "240 * 25 / 100 = 60" or "3 * $2.45 =
// $7.35": runs of words "number (op number)* (= number (op number)*)+", where a
// number followed by punctuation ("12," "7.") ends the run.
std::vector<std::string> find_equations(const std::string& doc) {
  std::vector<std::string> found;
  std::istringstream lines(doc);
  for (std::string line; std::getline(lines, line);) {
    std::vector<std::string> chain;
    auto finish = [&] {
      if (!chain.empty() && !is_number(chain.back())) chain.pop_back();
      std::string text;
      bool has_equals = false;
      for (const std::string& t : chain) {
        text += (text.empty() ? "" : " ") + t;
        has_equals |= t == "=";
      }
      if (has_equals) found.push_back(text);
      chain.clear();
    };
    std::istringstream words(line);
    for (std::string w; words >> w;) {
      const bool want_operand = chain.empty() || !is_number(chain.back());
      if (!want_operand && (w == "+" || w == "-" || w == "*" || w == "/" || w == "=")) {
        chain.push_back(w);
        continue;
      }
      if (!want_operand) finish();
      std::string core = w;
      const bool ends_run = std::string(".,:;?!").find(core.back()) != std::string::npos;
      if (ends_run) core.pop_back();
      if (core.empty() || !is_number(core)) {
        finish();
        continue;
      }
      chain.push_back(core);
      if (ends_run) finish();
    }
    finish();
  }
  return found;
}

struct CheckResult {
  int equations = 0;
  std::vector<double> results;  // the last side of each equation
};

// Verifies every equation in `doc`; reports failures with the document text.
CheckResult check_equations(const std::string& doc) {
  CheckResult r;
  for (const std::string& chain : find_equations(doc)) {
    std::vector<std::string> sides;
    size_t start = 0;
    for (size_t pos; (pos = chain.find(" = ", start)) != std::string::npos; start = pos + 3)
      sides.push_back(chain.substr(start, pos - start));
    sides.push_back(chain.substr(start));
    const double first = evaluate(sides[0]);
    for (size_t i = 1; i < sides.size(); i++)
      EXPECT_TRUE(close(evaluate(sides[i]), first)) << "false equation '" << chain << "' in:\n" << doc;
    r.equations++;
    r.results.push_back(evaluate(sides.back()));
  }
  return r;
}

constexpr uint64_t kSeed = 1234;

}  // namespace

TEST(SynthCorpus, EvaluatorSanity) {
  EXPECT_DOUBLE_EQ(evaluate("2 + 3 * 4 - 8 / 2"), 10);
  EXPECT_DOUBLE_EQ(evaluate("$20.00 - $8.65"), 11.35);
  EXPECT_EQ(check_equations("x: 7 + 8 + 1 = 16, 25% of 240: 240 * 25 / 100 = 60. 347 = 8 * 43 + 3.").equations, 3);
  EXPECT_EQ(check_equations("Stop 1: no equation 5 < 6 here").equations, 0);
  EXPECT_EQ(find_equations("Change: $20.00 - $8.65 = $11.35.\nab 3 = x, 2 + 2 = 4 left"),
            (std::vector<std::string>{"$20.00 - $8.65 = $11.35", "2 + 2 = 4"}));
}

TEST(SynthCorpus, EveryEquationIsCorrectAndAnswerFollowsFromSteps) {
  int total_equations = 0;
  for (uint64_t i = 0; i < 2000; i++) {
    const std::string doc = rpt::synth_document(kSeed, i);
    const size_t sol = doc.find("\nSolution: "), ans = doc.rfind("Answer: ");
    ASSERT_NE(sol, std::string::npos) << doc;
    ASSERT_NE(ans, std::string::npos) << doc;
    const CheckResult r = check_equations(doc.substr(sol, ans - sol));
    ASSERT_GE(r.equations, 2) << "too few worked steps in:\n" << doc;
    total_equations += r.equations;
    // The answer is the result of one of the solution's equations.
    const double answer = parse_number(doc.substr(ans + 8, doc.size() - ans - 9));
    bool derived = false;
    for (double v : r.results) derived |= close(v, answer);
    EXPECT_TRUE(derived) << "answer not produced by any step in:\n" << doc;
    if (HasFailure()) break;  // one bad document is enough to debug
  }
  EXPECT_GT(total_equations, 2000 * 4);
}

TEST(SynthCorpus, FormatLengthAndAscii) {
  for (uint64_t i = 0; i < 20000; i++) {
    const std::string doc = rpt::synth_document(99, i);
    ASSERT_GE(doc.size(), rpt::kSynthMinChars) << doc;
    ASSERT_LE(doc.size(), rpt::kSynthMaxChars) << doc;
    ASSERT_EQ(doc.rfind("Problem: ", 0), 0u) << doc;
    ASSERT_NE(doc.find("\nSolution: "), std::string::npos) << doc;
    ASSERT_EQ(doc.back(), '\n');
    const size_t ans = doc.rfind("\nAnswer: ");
    ASSERT_NE(ans, std::string::npos) << doc;
    ASSERT_EQ(doc.find('\n', ans + 1), doc.size() - 1) << "Answer must be the last line:\n" << doc;
    for (char c : doc) ASSERT_TRUE(c == '\n' || (c >= 32 && c < 127)) << "non-printable byte in:\n" << doc;
  }
}

TEST(SynthCorpus, DeterministicBySeedAndIndexIndependent) {
  const auto batch = rpt::synth_corpus(kSeed, 300);
  ASSERT_EQ(batch.size(), 300u);
  // Same (seed, index) -> same document, whether alone, in a batch, or out of order.
  for (int i = 299; i >= 0; i -= 7) EXPECT_EQ(rpt::synth_document(kSeed, i), batch[i]);
  EXPECT_EQ(rpt::synth_corpus(kSeed, 300), batch);
  // The parallel path of a big batch agrees with single documents.
  const auto big = rpt::synth_corpus(kSeed, 5000);
  for (size_t i : {0u, 1u, 2500u, 4999u}) EXPECT_EQ(big[i], rpt::synth_document(kSeed, i));
  EXPECT_EQ(big[42], batch[42]);
  // Documents within a corpus are distinct, and another seed gives another corpus.
  EXPECT_EQ(std::set<std::string>(batch.begin(), batch.end()).size(), batch.size());
  const auto other = rpt::synth_corpus(kSeed + 1, 300);
  int same = 0;
  for (size_t i = 0; i < batch.size(); i++) same += batch[i] == other[i];
  EXPECT_LE(same, 3);
}

TEST(SynthCorpus, AllKindsAndManyPhrasingsAppear) {
  std::vector<int> counts(rpt::kSynthKindCount, 0);
  std::set<std::string> openings;  // first three words of the problem statement
  for (uint64_t i = 0; i < 1000; i++) {
    rpt::SynthKind kind;
    const std::string doc = rpt::synth_document(kSeed, i, {}, &kind);
    counts[static_cast<int>(kind)]++;
    std::istringstream in(doc.substr(9));
    std::string w1, w2, w3;
    in >> w1 >> w2 >> w3;
    if (!std::isdigit(static_cast<unsigned char>(w1[0]))) openings.insert(w1 + " " + w2);
  }
  for (int k = 0; k < rpt::kSynthKindCount; k++)
    EXPECT_GE(counts[k], 40) << rpt::synth_kind_name(static_cast<rpt::SynthKind>(k));
  EXPECT_GE(openings.size(), 20u);
}

TEST(SynthCorpus, DifficultyMixControlsMagnitudes) {
  auto mean_answer_digits = [](const rpt::SynthOptions& o) {
    double digits = 0;
    for (uint64_t i = 0; i < 500; i++) {
      const std::string doc = rpt::synth_document(5, i, o);
      const size_t ans = doc.rfind("Answer: ");
      std::string a = doc.substr(ans + 8);
      digits += static_cast<double>(a.find_first_of(".\n") - (a[0] == '$'));
    }
    return digits / 500;
  };
  const double easy = mean_answer_digits({1, 0, 0}), hard = mean_answer_digits({0, 0, 1});
  EXPECT_LT(easy + 1.0, hard) << "easy " << easy << " hard " << hard;
  EXPECT_THROW(rpt::synth_document(1, 0, {0, 0, 0}), std::invalid_argument);
  EXPECT_THROW(rpt::synth_corpus(1, 10, {-1, 1, 1}), std::invalid_argument);
}

TEST(SynthCorpus, IsFast) {
  // 100k documents per second is the target in an optimised build; a debug or
  // sanitizer build is allowed 10x slack.
  const auto start = std::chrono::steady_clock::now();
  size_t bytes = 0;
  for (uint64_t i = 0; i < 20000; i++) bytes += rpt::synth_document(3, i).size();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GT(bytes, 20000u * rpt::kSynthMinChars);
  EXPECT_LT(seconds, 2.0) << 20000 / seconds << " docs/s";
}
