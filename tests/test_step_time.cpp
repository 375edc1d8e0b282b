// The RPT step-time model (model/step_time.h): its phases against hand-computed values
// from the formulas the header states, how they scale with GPUs and memory, and its
// errors. The README's table (R1-Distill-Qwen-1.5B and 14B on 8 and 64 H100s) is this
// model's output; these tests pin its arithmetic.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/file_io.h"
#include "model/flops.h"
#include "model/parameters.h"
#include "model/step_time.h"

namespace rpt {
namespace {

ModelConfig r1_distill(const std::string& size) {
    const std::string path = "bench/configs/r1-distill-qwen-" + size + ".json";
    return ModelConfig::from_hf_json(nlohmann::json::parse(read_file(path)), path);
}

// The paper's RPT step (DESIGN §1): G = 8 rollouts, 8k-token responses, bf16 on GPUs.
PlanSettings paper_step(int gpus, int zero, int micro_batch_rows = 8) {
    PlanSettings s;
    s.run = PlanRun::rpt;
    s.device = DeviceKind::cuda;
    s.precision = Precision::bf16;
    s.recompute = Recompute::layer;
    s.ranks = gpus;
    s.zero = zero;
    s.contexts = 256;
    s.rollouts = 8;
    s.prompt_tokens = 512;
    s.max_new_tokens = 8192;
    s.micro_batch_rows = micro_batch_rows;
    return s;
}

TEST(StepTime, PhasesFollowTheStatedFormulas) {
    const ModelConfig c = r1_distill("1.5b");
    const ClusterThroughputs k;
    const PlanSettings s = paper_step(8, 2);
    const StepTimeEstimate e = estimate_rpt_step(c, s, 4096, k);
    const double P = double(ParameterLayout(c).total());
    // Every sequence fits at once: one wave, a memory-bound decode step reading the bf16
    // weights and every sequence's keys and values at the mean context.
    EXPECT_EQ(e.sequences_per_gpu, 256);
    EXPECT_EQ(e.concurrent_sequences, 256);
    EXPECT_EQ(e.waves, 1);
    EXPECT_TRUE(e.decode_memory_bound);
    const double kv_per_token = 2.0 * c.num_layers * c.kv_dim() * 2;
    const double step_bytes = 2 * P + 256 * kv_per_token * (512 + 4096 / 2);
    EXPECT_NEAR(e.decode_step_s, step_bytes / (k.hbm_gbps * 1e9 * k.decode_efficiency), 1e-9);
    EXPECT_NEAR(e.rollout_s - e.prefill_s, 8192 * e.decode_step_s, 1e-6);
    // The update: forward + backward + the recomputation's forward over the packed groups.
    const double tokens = 32 * (512 + 8 * 4096.0), pairs = 32 * (512 * 512 / 2.0 + 8 * 4096.0 * (512 + 2048));
    EXPECT_DOUBLE_EQ(e.update_flops, training_flops(c, tokens, pairs) + forward_flops(c, tokens, pairs));
    EXPECT_NEAR(e.update_s, e.update_flops / (k.train_tflops * 1e12), 1e-9);
    // ZeRO-2 in a node: 32 micro-batches of fp32 gradients reduce-scattered, the updated
    // parameters gathered; all of it under the update's compute.
    const double ring = 7.0 / 8, busbw = k.intra_node_busbw_gbps * 1e9;
    EXPECT_NEAR(e.comm_s, 32 * 4 * P * ring / busbw + 4 * P * ring / busbw, 1e-9);
    EXPECT_EQ(e.exposed_comm_s, 0);
    EXPECT_NEAR(e.total_s, e.rollout_s + e.update_s + e.optimizer_s, 1e-9);
    EXPECT_GT(e.mfu(), 0);
    EXPECT_LT(e.mfu(), k.train_tflops / k.peak_tflops);
}

TEST(StepTime, MemoryLimitsTheConcurrentSequencesOf14BOnEightGpus) {
    const ModelConfig c = r1_distill("14b");
    // Micro-batches of 2 responses keep the update's activations small enough to leave
    // room for keys and values at all.
    const StepTimeEstimate eight = estimate_rpt_step(c, paper_step(8, 3, 2), 4096, ClusterThroughputs{});
    const StepTimeEstimate many = estimate_rpt_step(c, paper_step(64, 3, 2), 4096, ClusterThroughputs{});
    // On 8 GPUs the sharded state, the update's activations and the gathered bf16
    // weights leave room for a couple of 4k-token sequences: the 256 per GPU decode in
    // many waves.
    ASSERT_GT(eight.concurrent_sequences, 0);
    EXPECT_LT(eight.concurrent_sequences, eight.sequences_per_gpu);
    EXPECT_EQ(eight.waves, (256 + eight.concurrent_sequences - 1) / eight.concurrent_sequences);
    EXPECT_GT(eight.waves, 1);
    // On 64 the 32 per GPU fit at once; the cross-node collectives of 16 micro-batches
    // are about as long as the update, so the overlap hides most, not all, of them.
    EXPECT_EQ(many.waves, 1);
    EXPECT_GT(many.exposed_comm_s, 0);
    EXPECT_LT(many.exposed_comm_s, 0.2 * many.comm_s);
    EXPECT_LT(many.total_s, eight.total_s / 8);
    // Larger micro-batches hold more activations: less room, more waves, a longer rollout.
    const StepTimeEstimate wider = estimate_rpt_step(c, paper_step(64, 3, 4), 4096, ClusterThroughputs{});
    ASSERT_GT(wider.concurrent_sequences, 0);
    EXPECT_LT(wider.concurrent_sequences, many.concurrent_sequences);
    EXPECT_GT(wider.waves, many.waves);
    EXPECT_GT(wider.rollout_s, many.rollout_s);
}

TEST(StepTime, UpdateScalesInverselyWithGpusAndOneGpuHasNoCommunication) {
    const ModelConfig c = r1_distill("1.5b");
    const StepTimeEstimate one = estimate_rpt_step(c, paper_step(1, 0), 2048, ClusterThroughputs{});
    const StepTimeEstimate four = estimate_rpt_step(c, paper_step(4, 1), 2048, ClusterThroughputs{});
    EXPECT_EQ(one.comm_s, 0);
    EXPECT_NEAR(four.update_s * 4, one.update_s, 1e-6 * one.update_s);
    EXPECT_GT(four.comm_s, 0);
}

TEST(StepTime, NoRoomForASequenceIsReportedNotDividedByZero) {
    const ModelConfig c = r1_distill("14b");
    ClusterThroughputs k;
    k.device_memory_gib = 40;  // 14B's ZeRO-0 state alone is far more
    const StepTimeEstimate e = estimate_rpt_step(c, paper_step(8, 0), 4096, k);
    EXPECT_EQ(e.concurrent_sequences, 0);
    EXPECT_EQ(e.total_s, 0);
    EXPECT_NE(step_time_lines(paper_step(8, 0), 4096, k, e).back().find("no room"), std::string::npos);
}

TEST(StepTime, BadSettingsNameTheFlag) {
    const ModelConfig c = r1_distill("1.5b");
    PlanSettings pretrain = paper_step(8, 0);
    pretrain.run = PlanRun::pretrain;
    EXPECT_THROW(estimate_rpt_step(c, pretrain, 100, ClusterThroughputs{}), std::invalid_argument);
    try {
        estimate_rpt_step(c, paper_step(8, 0), 9000, ClusterThroughputs{});
        FAIL() << "a mean above the budget was accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("--mean-response-tokens"), std::string::npos);
    }
    EXPECT_THROW(estimate_rpt_step(c, paper_step(3, 0), 100, ClusterThroughputs{}), std::invalid_argument);
}

}  // namespace
}  // namespace rpt
