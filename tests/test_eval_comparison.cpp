// Comparing two evaluations on the same positions: the outcomes a split holds, the
// pairing of positions, and the refusal to pair evaluations of different position sets.
#include <gtest/gtest.h>

#include "rl/eval_comparison.h"

namespace rpt {
namespace {

// Positions of entropy 0.6 / 1.2 / 2.0 (easy only, medium, hard) with the given outcomes.
struct Fixture {
    std::vector<ScoredPosition> positions;
    EvalReport a, b;
};

Fixture make_fixture() {
    Fixture f;
    const float entropies[] = {0.6f, 1.2f, 2.0f, 2.0f, 2.0f, 2.0f};
    const bool a_std[] = {1, 0, 1, 0, 0, 0}, b_std[] = {1, 1, 0, 0, 1, 0};
    const float a_rsn[] = {0, 1, 1, 1, 1, 0}, b_rsn[] = {0, 0, 0, 1, 0, 0};
    for (size_t i = 0; i < 6; ++i) {
        ScoredPosition p;
        p.doc = 0;
        p.position = int64_t(i) + 1;
        p.entropy = entropies[i];
        f.positions.push_back(p);
        PositionOutcome oa, ob;
        oa.standard_hit = a_std[i];
        ob.standard_hit = b_std[i];
        oa.reward = a_rsn[i];
        ob.reward = b_rsn[i];
        f.a.outcomes.push_back(oa);
        f.b.outcomes.push_back(ob);
    }
    for (EvalReport* r : {&f.a, &f.b}) {
        SplitResult easy, medium, hard;
        easy.name = "easy", easy.threshold = 0.5f;
        medium.name = "medium", medium.threshold = 1.0f;
        hard.name = "hard", hard.threshold = 1.5f;
        r->splits = {easy, medium, hard};
    }
    return f;
}

TEST(EvalComparison, SplitOutcomesFollowTheNestedThresholds) {
    const Fixture f = make_fixture();
    EXPECT_EQ(split_outcomes(f.a, f.positions, 0.5f, EvalMode::standard), (std::vector<double>{1, 0, 1, 0, 0, 0}));
    EXPECT_EQ(split_outcomes(f.a, f.positions, 1.5f, EvalMode::reasoning), (std::vector<double>{1, 1, 1, 0}));
    EXPECT_THROW(split_outcomes(f.a, {f.positions[0]}, 0.5f, EvalMode::standard), std::invalid_argument);
}

TEST(EvalComparison, CrossModeComparisonPairsPositions) {
    const Fixture f = make_fixture();
    const EvalSide a{"A", &f.a, EvalMode::reasoning}, b{"B", &f.b, EvalMode::standard};
    const std::vector<SplitComparison> c = compare_evaluations(a, b, f.positions, 3);
    ASSERT_EQ(c.size(), 3u);
    const SplitComparison& hard = c[2];
    EXPECT_EQ(hard.split, "hard");
    EXPECT_DOUBLE_EQ(hard.a.mean, 0.75);  // A reasoning on the hard positions: 1 1 1 0
    EXPECT_DOUBLE_EQ(hard.b.mean, 0.25);  // B standard: 0 0 1 0
    EXPECT_DOUBLE_EQ(hard.a_minus_b.difference, 0.5);
    EXPECT_EQ(hard.a_minus_b.only_a, 2);  // positions 3 and 4; position 5 both, 6 neither
    EXPECT_EQ(hard.a_minus_b.only_b, 0);
    EXPECT_EQ(c[0].a.n, 6);
    const nlohmann::json j = comparison_json(a, b, c);
    EXPECT_EQ(j["a"]["mode"], "reasoning");
    EXPECT_EQ(j["splits"]["hard"]["a_minus_b"]["only_a"], 2);
    EXPECT_NE(describe_comparison(a, b, c).find("McNemar p"), std::string::npos);
}

}  // namespace
}  // namespace rpt
