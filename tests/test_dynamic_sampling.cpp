// When the trainer drops all-equal groups (rl/dynamic_sampling.h).
#include <algorithm>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "rl/dynamic_sampling.h"
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

}  // namespace
}  // namespace rpt
