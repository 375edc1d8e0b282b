// When the trainer drops all-equal groups (rl/dynamic_sampling.h).
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

}  // namespace
}  // namespace rpt
