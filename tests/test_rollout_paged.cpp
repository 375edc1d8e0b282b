// Rollouts over the paged KV cache (model/kv_cache.h): the same tokens and the same
// log-prob bits as over the contiguous cache, whatever the block size; and on `tiny`
// with 1k-token responses, the blocks in use follow the tokens actually generated
// (finished rollouts give theirs back) instead of every slot at max_new_tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "kernels/rng.h"
#include "rl/rollout.h"
#include "tests/rollout_test_util.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

bool same_rollouts(const RolloutResult& a, const RolloutResult& b) {
    if (a.responses != b.responses) return false;
    for (size_t s = 0; s < a.sampler_logprobs.size(); ++s)
        if (std::memcmp(a.sampler_logprobs[s].data(), b.sampler_logprobs[s].data(),
                        a.sampler_logprobs[s].size() * sizeof(float)) != 0)
            return false;
    return true;
}

TEST(RolloutPaged, MatchesTheContiguousCacheBitwise) {
    test::TinyShape shape;
    shape.vocab = 40;
    shape.ffn = 48;
    Transformer model(test::tiny_config(shape), OpContext{});
    model.init_weights(4);
    const auto prompts = test::prompts_of({5, 9, 2}, 3, 40);
    RolloutSettings s;
    s.group_size = 3;
    s.max_new_tokens = 23;
    s.sampling.temperature = 0.9f;
    s.sampling.seed = 5;
    const std::vector<int32_t> stop = {0, 1};  // some rollouts stop early
    for (KvDType dtype : {KvDType::f32, KvDType::bf16}) {
        s.kv_dtype = dtype;
        s.kv_block_tokens = 0;
        const RolloutResult contiguous = generate_rollouts(model, prompts, {0, 1, 2}, stop, s);
        int64_t shortest = s.max_new_tokens;
        for (const auto& r : contiguous.responses) shortest = std::min<int64_t>(shortest, int64_t(r.size()));
        ASSERT_LT(shortest, s.max_new_tokens) << "no rollout stopped early: pick another seed";
        for (int block : {1, 5, 16}) {
            s.kv_block_tokens = block;
            const RolloutResult paged = generate_rollouts(model, prompts, {0, 1, 2}, stop, s);
            EXPECT_TRUE(same_rollouts(paged, contiguous)) << "blocks of " << block << ", " << kv_dtype_name(dtype);
            EXPECT_LT(paged.kv_peak_bytes, contiguous.kv_peak_bytes) << block;
        }
    }
}

// The blocks slots hold at the step where they hold the most, from the response
// lengths alone: at step t every slot with more than t tokens holds ceil((t + 1) / Tb).
int64_t expected_peak_blocks(const RolloutResult& r, int Tb) {
    int64_t peak = 0;
    size_t longest = 0;
    for (const auto& resp : r.responses) longest = std::max(longest, resp.size());
    for (size_t t = 0; t < longest; ++t) {
        int64_t held = 0;
        for (const auto& resp : r.responses)
            if (resp.size() > t) held += int64_t(t) / Tb + 1;
        peak = std::max(peak, held);
    }
    return peak;
}

TEST(RolloutPaged, LongResponsesKvFollowsTheGeneratedTokens) {
    ModelConfig config = model_preset("tiny");
    config.max_position_embeddings = 2048;
    Transformer model(config, OpContext{});
    model.init_weights(7);
    const auto prompts = test::prompts_of({8, 6}, 9, config.vocab_size);
    RolloutSettings s;
    s.group_size = 3;
    s.max_new_tokens = 1024;
    s.sampling.seed = 2;  // near-uniform draws over 512 tokens: one stop id ends a response every ~512
    s.kv_block_tokens = 16;
    const RolloutResult r = generate_rollouts(model, prompts, {0, 1}, /*stop_ids=*/{3}, s);

    size_t longest = 0, shortest = size_t(s.max_new_tokens);
    for (const auto& resp : r.responses) {
        longest = std::max(longest, resp.size());
        shortest = std::min(shortest, resp.size());
    }
    ASSERT_EQ(longest, size_t(s.max_new_tokens)) << "no 1k-token response: pick another seed";
    ASSERT_LT(shortest, size_t(s.max_new_tokens) / 2) << "no early finish: pick another seed";
    const int64_t all_blocks = int64_t(r.responses.size()) * (s.max_new_tokens / s.kv_block_tokens);
    EXPECT_EQ(r.kv_peak_blocks, expected_peak_blocks(r, s.kv_block_tokens));
    EXPECT_LT(r.kv_peak_blocks, all_blocks * 3 / 4);
    // The pool allocated follows too: under twice the blocks in use (it doubles), well
    // below every slot at max length.
    // Keys and values of 16 tokens in every layer, f32 (a multiple of the carve alignment).
    const size_t block_bytes = size_t(s.kv_block_tokens) * size_t(config.kv_dim()) * 2 * size_t(config.num_layers) *
                               sizeof(float);
    const KvCacheShape shape{2, 3, 7, s.max_new_tokens, s.kv_dtype, model.precision(), s.kv_block_tokens};
    const size_t first = KvCache::min_kv_bytes(config, shape, DeviceKind::cpu);  // prefix + one block per slot
    const size_t prefix = first - 6 * block_bytes;
    EXPECT_LE(r.kv_peak_bytes, prefix + size_t(2 * r.kv_peak_blocks) * block_bytes);
    EXPECT_EQ(r.kv_cache_bytes, prefix + size_t(all_blocks) * block_bytes);
    std::printf("1k-token rollouts, %d slots: %lld tokens generated, peak %lld of %lld blocks, KV %.2f of %.2f MiB\n",
                int(r.responses.size()), (long long)r.generated_tokens, (long long)r.kv_peak_blocks,
                (long long)all_blocks, double(r.kv_peak_bytes) / 1048576.0, double(r.kv_cache_bytes) / 1048576.0);
}

}  // namespace
}  // namespace rpt
