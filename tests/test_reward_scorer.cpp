// The reward as the trainer and the evaluation run it (rl/reward.h): responses are
// decoded whole, however long (the answer comes at the end of the reasoning), and the
// ground truth reaches as far as a prediction can.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "model/bpe_trainer.h"
#include "rl/response_bytes.h"
#include "rl/reward.h"
#include "rl/templates.h"

namespace rpt {
namespace {

Tokenizer small_tokenizer() {
    return train_bpe({"let us reason about the count of apples: 42 apples, 7 pears", "the count is 42 apples"}, 300,
                     {});
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// 2,000 reasoning tokens, then </think> and the \boxed{} answer: far beyond the 4,096
// bytes the reward used to decode.
std::vector<int32_t> long_response(const Tokenizer& tok, const std::string& answer) {
    const std::vector<int32_t> filler = tok.encode(" apples");
    std::vector<int32_t> r;
    while (r.size() < 2000) r.push_back(filler[r.size() % filler.size()]);
    return concat(r, tok.encode("</think>\n\\boxed{" + answer + "}"));
}

struct Fixture {
    Tokenizer tok = small_tokenizer();
    PromptTemplate format = load_template("v0-r1-distill");
    std::vector<int32_t> head = tok.encode("the count is");
    std::vector<int32_t> doc = concat(head, tok.encode(" 42 apples, 7 pears"));
    TruthSpan truth{&doc, head.size()};
};

TEST(RewardScorer, ALongResponseWithItsAnswerAtTheEndScores) {
    Fixture f;
    const int capacity = response_byte_capacity(f.tok, 2100);
    const RewardScorer scorer(f.tok, f.format, OpContext{}, 0, capacity);
    const std::vector<int32_t> right = long_response(f.tok, " 42"), wrong = long_response(f.tok, " 43");
    ASSERT_GE(right.size(), 2000u);
    ASSERT_GT(f.tok.decode(right).size(), 4096u);
    const RewardResult r =
        scorer.score({right, wrong, long_response(f.tok, " 42 apples")}, {f.truth, f.truth, f.truth}, 1);
    EXPECT_EQ(r.rewards, (std::vector<float>{1.0f, 0.0f, 1.0f}));
    EXPECT_EQ(r.prediction_len, (std::vector<int32_t>{3, 3, 10}));
}

TEST(RewardScorer, TruthTokensCapsTheContinuation) {
    Fixture f;
    const std::vector<int32_t> answer = f.tok.encode(" 42 apples");
    const int cap = int(answer.size()) - 1;  // one token short of " 42 apples"
    const RewardScorer capped(f.tok, f.format, OpContext{}, cap, response_byte_capacity(f.tok, 2100));
    const RewardResult r = capped.score({long_response(f.tok, " 42 apples")}, {f.truth}, 1);
    EXPECT_EQ(r.rewards, std::vector<float>{0.0f});
}

TEST(RewardScorer, AResponseBeyondItsBudgetIsAnError) {
    Fixture f;
    const RewardScorer scorer(f.tok, f.format, OpContext{}, 0, response_byte_capacity(f.tok, 100));
    EXPECT_THROW(scorer.score({long_response(f.tok, " 42")}, {f.truth}, 1), std::invalid_argument);
}

TEST(ResponseBytes, CapacityIsTokensTimesTheLongestToken) {
    const Tokenizer tok = small_tokenizer();
    const int longest = longest_token_bytes(tok);
    EXPECT_GT(longest, 1);
    EXPECT_EQ(response_byte_capacity(tok, 8192), 8192 * longest);
    EXPECT_THROW(response_byte_capacity(tok, 0), std::invalid_argument);
    EXPECT_THROW(response_byte_capacity(tok, 1 << 30), std::invalid_argument);
}

}  // namespace
}  // namespace rpt
