// Host synchronisation points of a training step, counted by the context
// (kernels/host_sync.h) on the CPU backend, where the same calls run as plain copies: the
// counts are those the CUDA path makes (kernels/cuda/README.md, "Host synchronisation").
//   pretrain step, A micro-batches: A uploads (each micro-batch's tokens and targets, one
//     copy) + 1 readback (the loss, added up on the device over the micro-batches) + 1
//     readback (the gradient norm) = A + 2, no waits; the constant dL/dlogprob is
//     uploaded once, by the first step (with the default RoPE positions riding along in
//     its first micro-batch's copy).
//   rollout: 2 uploads for the prefill (its tokens, targets and, on a new batch shape,
//     positions in one copy; the prefix lengths), then per decode step 1 upload (the
//     step's inputs) + 1 readback (the sampled tokens and log-probs, one copy).
//   GRPO update: 1 readback for the advantages, then per pass 1 for the gradient norm
//     and 1 for the pass's statistics, however many micro-batches: the log-probs,
//     coefficients and sums stay on the device (rl/policy_loss_device.h).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <tuple>
#include <vector>

#include "kernels/buffer.h"
#include "kernels/context.h"
#include "kernels/host_sync.h"
#include "model/optimizer.h"
#include "rl/grpo.h"
#include "rl/ntp_trainer.h"
#include "rl/rollout.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

ModelConfig sync_config() {
    test::TinyShape s;
    s.vocab = 40;
    s.ffn = 48;
    return test::tiny_config(s);
}

std::vector<int32_t> token_stream(int n, int vocab) {
    std::vector<int32_t> stream(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) stream[size_t(i)] = int32_t((i * 7 + i / 3) % vocab);
    return stream;
}

TEST(HostSync, CountersBelongToTheirContext) {
    const OpContext a = make_context("cpu", false), b = make_context("cpu", false);
    ASSERT_TRUE(a.syncs && b.syncs);
    EXPECT_NE(a.syncs, b.syncs);
    const OpContext copy = a;  // copies share the counter
    std::vector<float> host(4, 1.0f), back(4);
    Buffer buf(DeviceKind::cpu, 16, "test");
    const Tensor t = buf.view(DType::f32, 0, {4});
    copy_from_host(copy, t, host.data());
    copy_to_host(a, back.data(), t);
    synchronize(a);
    const HostSyncCounts c = host_sync_counts(a);
    EXPECT_EQ(c.uploads, 1);
    EXPECT_EQ(c.readbacks, 1);
    EXPECT_EQ(c.waits, 1);
    EXPECT_EQ(host_sync_counts(b).total(), 0);
    EXPECT_EQ(host_sync_counts(OpContext{}).total(), 0);  // no counter: nothing counted
}

class PretrainSyncs : public ::testing::TestWithParam<std::tuple<int, Precision>> {};

TEST_P(PretrainSyncs, StepMakesOnePerMicroBatchPlusTwo) {
    const auto [accum, precision] = GetParam();
    const OpContext ctx = make_context("cpu", false);
    Transformer model(sync_config(), ctx, precision);
    model.init_weights(3);
    AdamW optimizer(model.layout(), ctx);
    NtpOptions o;
    o.batch_size = 2;
    o.seq_len = 16;
    o.grad_accum = accum;
    o.steps = 5;
    o.warmup_steps = 1;
    o.quiet = true;
    const std::vector<int32_t> stream = token_stream(2000, model.config().vocab_size);
    const HostSyncCounts before_first = host_sync_counts(ctx);
    ntp_train_step(model, optimizer, stream, o, 1);
    const HostSyncCounts first = host_sync_counts(ctx) - before_first;
    for (int64_t step = 2; step <= 4; ++step) {
        const HostSyncCounts before = host_sync_counts(ctx);
        const NtpStepResult r = ntp_train_step(model, optimizer, stream, o, step);
        ASSERT_TRUE(std::isfinite(r.loss));
        const HostSyncCounts c = host_sync_counts(ctx) - before;
        EXPECT_EQ(c.uploads, accum) << "step " << step;
        EXPECT_EQ(c.readbacks, 2) << "step " << step;  // the loss, once; the gradient norm
        EXPECT_EQ(c.waits, 0) << "step " << step;
        EXPECT_LE(c.total(), accum + 2) << "step " << step;
        if (accum == 1) {
            // The loss added up on the device is the mean of the log-probs read back.
            double sum = 0;
            for (float lp : model.logprobs()) sum -= lp;
            const double mean = sum / double(o.batch_size * o.seq_len);
            EXPECT_NEAR(r.loss, mean, 1e-6 * mean) << "step " << step;
        }
    }
    // The first step also uploads dL/dlogprob (the default positions travel with its
    // first micro-batch's tokens, in the same copy).
    EXPECT_EQ(first.uploads, accum + 1);
    EXPECT_EQ(first.readbacks, 2);
    std::printf("pretrain step, %d micro-batch(es), %s: %lld host syncs (first step %lld)\n", accum,
                precision_name(precision), (long long)(accum + 2), (long long)first.total());
}

INSTANTIATE_TEST_SUITE_P(AccumAndPrecision, PretrainSyncs,
                         ::testing::Combine(::testing::Values(1, 3), ::testing::Values(Precision::f32,
                                                                                      Precision::bf16)));

TEST(HostSync, RolloutMakesTwoPerDecodeStep) {
    const OpContext ctx = make_context("cpu", false);
    Transformer model(sync_config(), ctx, Precision::bf16);
    model.init_weights(5);
    const std::vector<std::vector<int32_t>> prompts = {{1, 2, 3, 4}, {5, 6, 7}};
    RolloutSettings s;
    s.group_size = 2;
    s.max_new_tokens = 6;
    s.sampling.seed = 3;
    for (int run = 0; run < 2; ++run) {
        const HostSyncCounts before = host_sync_counts(ctx);
        const RolloutResult r = generate_rollouts(model, prompts, {0, 1}, {}, s);
        const HostSyncCounts c = host_sync_counts(ctx) - before;
        ASSERT_EQ(r.decode_steps, 6);
        // The prefill's positions, new on the first run, go up with its tokens: one copy.
        EXPECT_EQ(c.uploads, 2 + r.decode_steps) << "run " << run;
        EXPECT_EQ(c.readbacks, r.decode_steps) << "run " << run;
        EXPECT_EQ(c.waits, 0) << "run " << run;
    }
}

TEST(HostSync, GrpoUpdateReadsBackTwicePerPassAtAnyMicroBatchCount) {
    const OpContext ctx = make_context("cpu", false);
    Transformer policy(sync_config(), ctx), reference(sync_config(), ctx);
    policy.init_weights(5);
    reference.init_weights(5);
    const std::vector<std::vector<int32_t>> prompts = {{1, 2, 3, 4}, {5, 6, 7}, {8, 9, 10, 11, 12}};
    RolloutSettings rs;
    rs.group_size = 4;
    rs.max_new_tokens = 5;
    rs.sampling.seed = 3;
    const RolloutResult rollouts = generate_rollouts(policy, prompts, {0, 1, 2}, {}, rs);
    std::vector<float> rewards(rollouts.responses.size());
    for (size_t s = 0; s < rewards.size(); ++s) rewards[s] = float(s % 3 == 0);  // every group mixed
    // Responses per micro-batch -> micro-batches: 12 of one; groups of 4 split into rows of
    // 3 + 1, one row per micro-batch; all 12 in one.
    const std::vector<std::pair<int, int>> layouts = {{1, 12}, {3, 6}, {64, 1}};
    for (const auto& [micro_batch_rows, micro_batches] : layouts) {
        AdamW optimizer(policy.layout(), ctx);
        GrpoSettings g;
        g.micro_batch_rows = micro_batch_rows;
        g.updates_per_batch = 2;
        g.loss.kl_beta = 0.05f;
        const HostSyncCounts before = host_sync_counts(ctx);
        const GrpoStats stats = grpo_update(policy, optimizer, &reference, prompts, rollouts, rewards, g, 1e-3f, {});
        const HostSyncCounts c = host_sync_counts(ctx) - before;
        std::printf("GRPO update, %d response(s) per micro-batch: %lld readbacks, %lld uploads\n", micro_batch_rows,
                    static_cast<long long>(c.readbacks), static_cast<long long>(c.uploads));
        EXPECT_GT(stats.grad_norm, 0.0);
        EXPECT_GT(stats.kl, 0.0);  // the second pass moved the policy off the reference
        EXPECT_EQ(c.readbacks, 1 + 2 * g.updates_per_batch) << micro_batch_rows;
        // The rewards, then per micro-batch and pass: the loss's inputs, the reference's
        // batch and the policy's batch (tokens, targets, positions, segments: one copy each).
        EXPECT_EQ(c.uploads, 1 + 3 * micro_batches * g.updates_per_batch) << micro_batch_rows;
        EXPECT_EQ(c.waits, 0) << micro_batch_rows;
    }
}

}  // namespace
}  // namespace rpt
