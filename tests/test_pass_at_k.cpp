// The unbiased pass@k estimator (rl/pass_at_k.h), against hand-computed binomials.
#include <stdexcept>

#include <gtest/gtest.h>

#include "rl/pass_at_k.h"

namespace rpt {
namespace {

TEST(PassAtK, KOneIsTheShareCorrect) {
    EXPECT_DOUBLE_EQ(pass_at_k(8, 0, 1), 0.0);
    EXPECT_DOUBLE_EQ(pass_at_k(8, 3, 1), 3.0 / 8.0);
    EXPECT_DOUBLE_EQ(pass_at_k(8, 8, 1), 1.0);
}

TEST(PassAtK, KEqualsNIsAnyCorrect) {
    EXPECT_DOUBLE_EQ(pass_at_k(8, 0, 8), 0.0);
    EXPECT_DOUBLE_EQ(pass_at_k(8, 1, 8), 1.0);
    EXPECT_DOUBLE_EQ(pass_at_k(8, 5, 8), 1.0);
}

TEST(PassAtK, HandComputedBinomials) {
    // n = 5, c = 2, k = 2: 1 - C(3,2)/C(5,2) = 1 - 3/10.
    EXPECT_NEAR(pass_at_k(5, 2, 2), 0.7, 1e-12);
    // n = 8, c = 1, k = 4: 1 - C(7,4)/C(8,4) = 1 - 35/70.
    EXPECT_NEAR(pass_at_k(8, 1, 4), 0.5, 1e-12);
    // n = 10, c = 3, k = 5: 1 - C(7,5)/C(10,5) = 1 - 21/252.
    EXPECT_NEAR(pass_at_k(10, 3, 5), 1.0 - 21.0 / 252.0, 1e-12);
    // Large n stays finite: n = 1000, c = 1, k = 10: 10/1000.
    EXPECT_NEAR(pass_at_k(1000, 1, 10), 0.01, 1e-12);
}

TEST(PassAtK, RefusesImpossibleCounts) {
    EXPECT_THROW(pass_at_k(8, 1, 0), std::invalid_argument);
    EXPECT_THROW(pass_at_k(8, 1, 9), std::invalid_argument);
    EXPECT_THROW(pass_at_k(8, 9, 1), std::invalid_argument);
    EXPECT_THROW(pass_at_k(8, -1, 1), std::invalid_argument);
}

}  // namespace
}  // namespace rpt
