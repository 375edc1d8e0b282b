// The rollout engine against the training forward pass: tokens decoded over the
// shared-prefix KV cache must carry the same log-probs as a full forward over
// prompt + response (the quantity GRPO recomputes), and sampling must not depend on
// batch composition.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/rng.h"
#include "rl/rollout.h"

namespace rpt {
namespace {

ModelConfig rollout_config() {
    ModelConfig c;
    c.vocab_size = 40;
    c.hidden_size = 32;
    c.num_layers = 2;
    c.num_heads = 4;
    c.num_kv_heads = 2;
    c.head_dim = 8;
    c.intermediate_size = 48;
    c.max_position_embeddings = 64;
    return c;
}

std::vector<std::vector<int32_t>> prompts_of(const std::vector<int>& lengths, uint64_t seed, int vocab) {
    std::vector<std::vector<int32_t>> out;
    for (size_t i = 0; i < lengths.size(); ++i) {
        std::vector<int32_t> p;
        for (int t = 0; t < lengths[i]; ++t) p.push_back(int32_t(hash_keys(seed, i, t) % uint64_t(vocab)));
        out.push_back(p);
    }
    return out;
}

TEST(Rollout, SamplerLogprobsMatchTheTrainingForward) {
    Transformer model(rollout_config(), OpContext{});
    model.init_weights(4);
    // Larger weights than the init make the distribution far from uniform.
    std::vector<float> params(size_t(model.layout().total()));
    copy_to_host(params.data(), model.params().flat);
    for (size_t i = 0; i < params.size(); ++i) params[i] *= 20.0f;
    copy_from_host(model.params().flat, params.data());

    const auto prompts = prompts_of({5, 9, 2}, 3, 40);
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
    const auto prompts = prompts_of({4, 6, 3, 8}, 9, 40);
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

TEST(Rollout, KvBudgetErrorNamesTheKnobs) {
    Transformer model(rollout_config(), OpContext{});
    model.init_weights(1);
    RolloutSettings s;
    s.kv_budget_bytes = 1024;
    try {
        generate_rollouts(model, prompts_of({5}, 1, 40), {0}, {}, s);
        FAIL() << "expected an error";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("--kv-budget-mb"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("--rollouts"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace rpt
