// The rollout engine against the training forward pass: tokens decoded over the
// shared-prefix KV cache must carry the same log-probs as a full forward over
// prompt + response (the quantity GRPO recomputes), and sampling must not depend on
// batch composition. A bf16 cache (run here on the CPU) stays close to the fp32 one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/rng.h"
#include "rl/rollout.h"
#include "tests/rollout_test_util.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

ModelConfig rollout_config() {
    test::TinyShape s;
    s.vocab = 40;
    s.ffn = 48;
    return test::tiny_config(s);
}

TEST(Rollout, SamplerLogprobsMatchTheTrainingForward) {
    Transformer model(rollout_config(), OpContext{});
    model.init_weights(4);
    // Larger weights than the init make the distribution far from uniform.
    std::vector<float> params(size_t(model.layout().total()));
    copy_to_host(params.data(), model.params().flat);
    for (size_t i = 0; i < params.size(); ++i) params[i] *= 20.0f;
    copy_from_host(model.params().flat, params.data());

    const auto prompts = test::prompts_of({5, 9, 2}, 3, 40);
    RolloutSettings s;
    s.group_size = 3;
    s.max_new_tokens = 7;
    s.sampling.temperature = 0.7f;
    s.sampling.seed = 11;
    const std::vector<int32_t> stop = {0};  // some rollouts stop early
    const RolloutResult r = generate_rollouts(model, prompts, {0, 1, 2}, stop, s);
    ASSERT_EQ(r.responses.size(), 9u);
    int64_t rows = 0;
    for (size_t slot = 0; slot < r.responses.size(); ++slot) {
        const auto& prompt = prompts[slot / 3];
        const auto& resp = r.responses[slot];
        ASSERT_GE(resp.size(), 1u);
        rows += int64_t(resp.size());
        std::vector<int32_t> tokens(prompt), targets(prompt.size(), -1);
        tokens.insert(tokens.end(), resp.begin(), resp.end() - 1);
        targets.resize(tokens.size(), -1);
        for (size_t j = 0; j < resp.size(); ++j) targets[prompt.size() - 1 + j] = resp[j];
        model.forward(tokens.data(), targets.data(), 1, int(tokens.size()), {}, 1.0f / 0.7f);
        const std::vector<float> lp = model.logprobs();
        for (size_t j = 0; j < resp.size(); ++j)
            EXPECT_NEAR(r.sampler_logprobs[slot][j], lp[prompt.size() - 1 + j], 1e-4) << "slot " << slot << " token " << j;
        // A response ends at a stop token or at the budget.
        EXPECT_TRUE(resp.back() == 0 || int(resp.size()) == s.max_new_tokens);
    }
    // Finished sequences leave the batch: decode rows = generated tokens.
    EXPECT_EQ(r.decode_rows, rows);
    EXPECT_EQ(r.generated_tokens, rows);
}

TEST(Rollout, SamplesDoNotDependOnBatchComposition) {
    Transformer model(rollout_config(), OpContext{});
    model.init_weights(5);
    const auto prompts = test::prompts_of({4, 6, 3, 8}, 9, 40);
    RolloutSettings s;
    s.group_size = 2;
    s.max_new_tokens = 6;
    s.sampling.seed = 3;
    const RolloutResult all = generate_rollouts(model, prompts, {10, 11, 12, 13}, {}, s);
    // Context 12 decoded alone, and contexts 13 and 11 in another order.
    const RolloutResult one = generate_rollouts(model, {prompts[2]}, {12}, {}, s);
    const RolloutResult two = generate_rollouts(model, {prompts[3], prompts[1]}, {13, 11}, {}, s);
    for (int g = 0; g < 2; ++g) {
        EXPECT_EQ(one.responses[g], all.responses[4 + g]);
        EXPECT_EQ(two.responses[g], all.responses[6 + g]);
        EXPECT_EQ(two.responses[2 + g], all.responses[2 + g]);
    }
}

// The same rollouts over a bf16 and an fp32 cache. The sampler's uniforms depend only on
// (seed, step, sequence, position), so both runs draw the same token until bf16 rounding
// moves a CDF edge past a uniform; along that common prefix of each response the
// log-probs must agree to bf16 accuracy. Everything runs on the CPU and is deterministic
// (same bits for any thread count), so the comparison cannot flake; it fails if the bf16
// path reads the wrong values (log-probs far off, responses diverge early) or is not
// bf16 at all (bit-identical log-probs).
TEST(Rollout, Bf16CacheStaysCloseToFp32) {
    Transformer model(rollout_config(), OpContext{});
    model.init_weights(4);
    std::vector<float> params(size_t(model.layout().total()));
    copy_to_host(params.data(), model.params().flat);
    // Far from uniform (mean -log p ~2.8 against ln 40 = 3.7), yet not the exploding
    // activations of larger factors, where bf16's relative error on K/V becomes whole nats.
    for (float& p : params) p *= 3.0f;
    copy_from_host(model.params().flat, params.data());

    const auto prompts = test::prompts_of({5, 9, 2, 12}, 3, 40);
    RolloutSettings s;
    s.group_size = 4;
    s.max_new_tokens = 10;
    s.sampling.temperature = 0.7f;
    s.sampling.seed = 17;
    s.kv_dtype = KvDType::f32;
    const RolloutResult full = generate_rollouts(model, prompts, {0, 1, 2, 3}, {}, s);
    s.kv_dtype = KvDType::bf16;
    const RolloutResult half = generate_rollouts(model, prompts, {0, 1, 2, 3}, {}, s);

    EXPECT_EQ(full.kv_dtype, DType::f32);
    EXPECT_EQ(half.kv_dtype, DType::bf16);
    EXPECT_EQ(half.kv_cache_bytes * 2, full.kv_cache_bytes);
    int64_t compared = 0, total = 0;
    double max_diff = 0;
    for (size_t slot = 0; slot < full.responses.size(); ++slot) {
        const auto &a = full.responses[slot], &b = half.responses[slot];
        total += int64_t(a.size());
        for (size_t j = 0; j < std::min(a.size(), b.size()) && a[j] == b[j]; ++j, ++compared)
            max_diff = std::max(max_diff, double(std::fabs(full.sampler_logprobs[slot][j] -
                                                           half.sampler_logprobs[slot][j])));
    }
    // Measured on this model: 0.019 nats at most, 147 of 160 tokens before divergence.
    EXPECT_LT(max_diff, 0.05) << "log-probs of the same tokens differ beyond bf16 rounding";
    EXPECT_GT(max_diff, 0.0) << "a bf16 cache gave bit-identical log-probs: was it bf16?";
    EXPECT_GE(double(compared), 0.8 * double(total)) << compared << " of " << total << " tokens before divergence";
}

TEST(Rollout, KvBudgetErrorNamesTheKnobs) {
    Transformer model(rollout_config(), OpContext{});
    model.init_weights(1);
    RolloutSettings s;
    s.kv_budget_bytes = 1024;
    try {
        generate_rollouts(model, test::prompts_of({5}, 1, 40), {0}, {}, s);
        FAIL() << "expected an error";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("--kv-budget-mb"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("--rollouts"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace rpt
