// The scaling study (rl/scaling_study.h) and the training compute a checkpoint records
// (rl/training_compute.h).
#include <cmath>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "rl/scaling_study.h"
#include "rl/training_compute.h"
#include "tests/temp_dir.h"

namespace rpt {
namespace {

// A checkpoint directory holding only a trainer_state.json with these extra and run fields.
std::string state_dir(const testing::TempDir& tmp, const std::string& name, int64_t step,
                      const nlohmann::json& extra, const nlohmann::json& run) {
    std::filesystem::create_directories(tmp.path / name);
    const nlohmann::json j = {{"version", 1},     {"step", step},   {"rng_state", 1}, {"data_cursor", step},
                              {"optimizer_steps", step}, {"extra", extra}, {"run", run}};
    tmp.write(name + "/trainer_state.json", j.dump());
    return (tmp.path / name).string();
}

TEST(TrainingCompute, AccumulatesInTheState) {
    TrainerState state;
    add_rpt_training_flops(state, 1.5e12);
    add_rpt_training_flops(state, 0.5e12);
    EXPECT_DOUBLE_EQ(state.extra[kRptTrainingFlopsKey].get<double>(), 2e12);
}

TEST(TrainingCompute, ReadsCheckpointsAndBaseModels) {
    testing::TempDir tmp;
    const nlohmann::json train_run = {{"command", "train"}, {"settings", nlohmann::json::object()}};
    const CheckpointCompute rpt =
        read_checkpoint_compute(state_dir(tmp, "rpt", 40, {{kRptTrainingFlopsKey, 3.25e13}}, train_run));
    EXPECT_EQ(rpt.rpt_steps, 40);
    EXPECT_DOUBLE_EQ(rpt.rpt_flops, 3.25e13);
    // A pre-trained checkpoint is the RPT run's base: 0 steps, 0 FLOPs.
    const CheckpointCompute base = read_checkpoint_compute(
        state_dir(tmp, "pre", 300, nlohmann::json::object(), {{"command", "pretrain"}, {"settings", {}}}));
    EXPECT_EQ(base.rpt_steps, 0);
    EXPECT_EQ(base.rpt_flops, 0);
    // No trainer state at all (a converted or inference-only checkpoint): also a base.
    std::filesystem::create_directories(tmp.path / "hf");
    EXPECT_EQ(read_checkpoint_compute(tmp.file("hf")).rpt_flops, 0);
    // An RPT checkpoint without the count is refused, not guessed.
    EXPECT_THROW(read_checkpoint_compute(state_dir(tmp, "old", 5, nlohmann::json::object(), train_run)),
                 std::runtime_error);
    EXPECT_THROW(read_checkpoint_compute(state_dir(tmp, "bad", 5, {{kRptTrainingFlopsKey, "many"}}, train_run)),
                 std::runtime_error);
}

SplitResult split(const char* name, double standard, double reasoning) {
    SplitResult s;
    s.name = name;
    s.standard = standard;
    s.reasoning = reasoning;
    s.positions = 100;
    return s;
}

// Checkpoints of a run whose reasoning accuracy follows a known law per split.
std::vector<ScalingPoint> lawful_points() {
    const double computes[] = {8e14, 1e14, 4e14, 2e14, 1.6e15};  // out of order on purpose
    const double alpha = 0.4, p_star[] = {0.6, 0.45, 0.3}, a[] = {0.2, 0.2, 0.15};
    std::vector<ScalingPoint> points;
    for (double c : computes) {
        ScalingPoint p;
        p.compute = {"ck-" + std::to_string(int(c / 1e14)), int64_t(c / 1e14), c};
        const double x = std::pow(c / 1e14, -alpha);
        p.splits = {split("easy", 0.4, p_star[0] - a[0] * x), split("medium", 0.3, p_star[1] - a[1] * x),
                    split("hard", 0.2, p_star[2] - a[2] * x)};
        points.push_back(p);
    }
    ScalingPoint base;
    base.compute = {"base", 0, 0};
    base.splits = {split("easy", 0.4, 0.1), split("medium", 0.3, 0.1), split("hard", 0.2, 0.05)};
    points.push_back(base);
    return points;
}

TEST(ScalingStudy, FitsEachSplitAndSortsByCompute) {
    const ScalingStudy study = fit_scaling_study(lawful_points(), true);
    ASSERT_EQ(study.points.size(), 6u);
    EXPECT_EQ(study.points.front().compute.dir, "base");
    for (size_t i = 1; i < study.points.size(); ++i)
        EXPECT_LT(study.points[i - 1].compute.rpt_flops, study.points[i].compute.rpt_flops);
    ASSERT_EQ(study.fits.size(), 6u);  // 3 splits x (reasoning, standard)
    const double p_star[] = {0.6, 0.45, 0.3};
    for (size_t s = 0; s < 3; ++s) {
        const ScalingFit& f = study.fits[2 * s];
        EXPECT_EQ(f.metric, "reasoning");
        EXPECT_EQ(f.fit.points, 5);  // the base is not fitted
        EXPECT_NEAR(f.fit.alpha, 0.4, 1e-5);
        EXPECT_NEAR(f.fit.p_star, p_star[s], 1e-6);
        EXPECT_NEAR(f.fit.r_squared, 1.0, 1e-9);
        EXPECT_TRUE(study.fits[2 * s + 1].fit.flat);  // standard accuracy is constant here
    }
    EXPECT_EQ(study.fits[4].split, "hard");
    const nlohmann::json j = scaling_study_json(study);
    EXPECT_EQ(j["checkpoints"].size(), 6u);
    EXPECT_NEAR(j["fits"]["medium"]["reasoning"]["p_star"].get<double>(), 0.45, 1e-6);
    EXPECT_NE(describe_scaling_study(study).find("R²"), std::string::npos);
}

TEST(ScalingStudy, StandardOnlyWithoutReasoning) {
    const ScalingStudy study = fit_scaling_study(lawful_points(), false);
    ASSERT_EQ(study.fits.size(), 3u);
    for (const ScalingFit& f : study.fits) EXPECT_EQ(f.metric, "standard");
    EXPECT_EQ(describe_scaling_study(study).find("rsn"), std::string::npos);
    EXPECT_NE(describe_scaling_study(fit_scaling_study(lawful_points(), true)).find("rsn"), std::string::npos);
}

TEST(ScalingStudy, NeedsThreeCheckpointsWithCompute) {
    const std::vector<CheckpointCompute> two = {{"base", 0, 0}, {"a", 10, 1e12}, {"b", 20, 2e12}};
    EXPECT_THROW(check_scaling_computes(two), std::invalid_argument);
    try {
        check_scaling_computes(two);
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("--checkpoints"), std::string::npos);
    }
    const std::vector<CheckpointCompute> same = {{"a", 10, 1e12}, {"b", 10, 1e12}, {"c", 10, 1e12}};
    EXPECT_THROW(check_scaling_computes(same), std::invalid_argument);
    const std::vector<CheckpointCompute> three = {{"base", 0, 0}, {"a", 10, 1e12}, {"b", 20, 2e12}, {"c", 30, 3e12}};
    EXPECT_NO_THROW(check_scaling_computes(three));
}

}  // namespace
}  // namespace rpt
