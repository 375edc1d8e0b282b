// When the trainer drops all-equal groups (rl/dynamic_sampling.h).
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "model/bpe_trainer.h"
#include "rl/dynamic_sampling.h"
#include "rl/special_tokens.h"
#include "rl/templates.h"
#include "rl/token_data.h"
#include "tests/test_util.h"
#include "rl/rpt_trainer.h"

namespace rpt {
namespace {

TEST(DynamicSampling, OnEveryStepOrFromAStep) {
    RptOptions o;
    EXPECT_FALSE(dynamic_sampling_at(o, 1));
    EXPECT_FALSE(dynamic_sampling_at(o, 1000));
    o.dynamic_sampling_from = 500;  // the paper's schedule
    EXPECT_FALSE(dynamic_sampling_at(o, 499));
    EXPECT_TRUE(dynamic_sampling_at(o, 500));
    EXPECT_TRUE(dynamic_sampling_at(o, 1000));
    o.dynamic_sampling = true;  // every step wins
    EXPECT_TRUE(dynamic_sampling_at(o, 1));
}

// A sampler that keeps `per_round` groups of each draw (the rest all-equal), or all of
// them in a round that must keep everything; records the rounds it saw.
struct FakeRounds {
    int per_round = 1;
    std::vector<SamplingRound> seen;
    int operator()(const SamplingRound& r) {
        seen.push_back(r);
        return r.keep_uniform ? r.need : std::min(per_round, r.need);
    }
};

int rounds_run(bool dynamic, int bound, int wanted, FakeRounds& fake) {
    return run_sampling_rounds(dynamic, bound, wanted, [&fake](const SamplingRound& r) { return fake(r); });
}

TEST(DynamicSampling, WithoutItOneRoundKeepsEverything) {
    FakeRounds fake;
    EXPECT_EQ(rounds_run(false, 16, 8, fake), 1);
    ASSERT_EQ(fake.seen.size(), 1u);
    EXPECT_TRUE(fake.seen[0].keep_uniform);
    EXPECT_EQ(fake.seen[0].need, 8);
}

TEST(DynamicSampling, DefaultBoundStopsAfterThreeRefillsAndTopsUp) {
    FakeRounds fake;  // one useful group per round: 8 wanted would need 8 rounds
    EXPECT_EQ(rounds_run(true, kDefaultMaxRefillRounds, 8, fake), 4);
    ASSERT_EQ(fake.seen.size(), 4u);
    for (int r = 0; r < 3; ++r) {
        EXPECT_EQ(fake.seen[size_t(r)].round, r);
        EXPECT_EQ(fake.seen[size_t(r)].need, 8 - r);
        EXPECT_FALSE(fake.seen[size_t(r)].keep_uniform);
    }
    EXPECT_TRUE(fake.seen[3].keep_uniform);  // the bound's round tops the batch up
    EXPECT_EQ(fake.seen[3].need, 5);
}

TEST(DynamicSampling, LargerBoundRefillsUntilTheGroupsAreFilled) {
    FakeRounds fake;
    EXPECT_EQ(rounds_run(true, 16, 8, fake), 8);  // filled by useful groups, round 7
    ASSERT_EQ(fake.seen.size(), 8u);
    for (const SamplingRound& r : fake.seen) EXPECT_FALSE(r.keep_uniform);
    EXPECT_EQ(fake.seen.back().need, 1);
}

TEST(DynamicSampling, LargerBoundStopsAtTheBound) {
    FakeRounds fake;
    fake.per_round = 0;  // every group all-equal: only the bound ends it
    EXPECT_EQ(rounds_run(true, 10, 8, fake), 11);
    EXPECT_TRUE(fake.seen.back().keep_uniform);
    EXPECT_EQ(fake.seen.back().round, 10);
    EXPECT_EQ(fake.seen.back().need, 8);
}

TEST(DynamicSampling, ZeroBoundIsOneRoundKeepingAll) {
    FakeRounds fake;
    fake.per_round = 0;
    EXPECT_EQ(rounds_run(true, 0, 4, fake), 1);
    EXPECT_TRUE(fake.seen[0].keep_uniform);
}

TEST(DynamicSampling, ContextKeysKeepTodaysValuesAndStayUnique) {
    // Up to the default bound: the key rpt used before the bound was a flag.
    for (int bound = 0; bound <= kDefaultMaxRefillRounds; ++bound)
        EXPECT_EQ(sampling_context_key(7, 2, 5, 16, bound), (7 * 4 + 2) * 16 + 5);
    // A larger bound: unique over steps, rounds 0..bound and contexts.
    const int bound = 9, contexts = 3;
    std::set<int64_t> keys;
    for (int64_t step = 1; step <= 4; ++step)
        for (int round = 0; round <= bound; ++round)
            for (int64_t b = 0; b < contexts; ++b) keys.insert(sampling_context_key(step, round, b, contexts, bound));
    EXPECT_EQ(keys.size(), size_t(4 * (bound + 1) * contexts));
}

// The trainer's refills: one-token responses never hold a prediction, so every group is
// all-equal and only the bound ends a step's refills.
int64_t groups_drawn_per_step(int max_refill_rounds, bool dynamic) {
    const std::vector<std::string> texts = {"one two three four five six seven eight nine ten eleven twelve",
                                            "a b c d e f g h i j k l m n o p q r s t u v w x y z"};
    const Tokenizer tokenizer = train_bpe(texts, 280, default_special_tokens());
    const auto docs = tokenize_documents(texts, tokenizer);
    test::TinyShape shape;
    shape.vocab = tokenizer.vocab_size();
    Transformer model(test::tiny_config(shape), OpContext{});
    model.init_weights(2);
    std::vector<ScoredPosition> positions;
    for (int64_t d = 0; d < 2; ++d) positions.push_back({d, int32_t(docs[size_t(d)].size() / 2), 1.0f});
    RptOptions o;
    o.contexts = 3;
    o.group_size = 2;
    o.max_new_tokens = 1;
    o.context_tokens = 8;
    o.steps = 2;
    o.dynamic_sampling = dynamic;
    o.max_refill_rounds = max_refill_rounds;
    o.quiet = true;
    AdamW optimizer(model.layout(), OpContext{});
    TrainerState state;
    std::vector<int64_t> drawn;
    train_rpt(model, optimizer, tokenizer, load_template("compact"), docs, positions, o, state,
              [&](const RptStepRecord& rec, nlohmann::json& record) {
                  EXPECT_EQ(record["groups_drawn"].get<int64_t>(), rec.groups_drawn);
                  EXPECT_EQ(rec.all_equal_fraction, 1.0);
                  drawn.push_back(rec.groups_drawn);
              });
    EXPECT_EQ(drawn.size(), 2u);
    EXPECT_EQ(drawn.front(), drawn.back());
    return drawn.front();
}

TEST(DynamicSampling, TrainerRefillsUntilTheBound) {
    EXPECT_EQ(groups_drawn_per_step(kDefaultMaxRefillRounds, false), 3);  // one round
    EXPECT_EQ(groups_drawn_per_step(kDefaultMaxRefillRounds, true), 3 * 4);
    EXPECT_EQ(groups_drawn_per_step(9, true), 3 * 10);
}

}  // namespace
}  // namespace rpt
