// The FLOP model (model/flops.h) against a count by hand for a small config: every
// matmul of one token written out, then attention over a known number of pairs.
#include <gtest/gtest.h>

#include "model/flops.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

// L = 2, C = 8, H = 2, KVH = 1, D = 4, F = 16, V = 10, tied embeddings.
ModelConfig hand_config() {
    test::TinyShape s;
    s.vocab = 10;
    s.hidden = 8;
    s.heads = 2;
    s.kv_heads = 1;
    s.ffn = 16;
    s.context = 16;
    ModelConfig c = test::tiny_config(s);
    c.tie_word_embeddings = true;
    return c;
}

// Multiply-adds of one token, layer by layer: q (8 x 8), k and v (4 x 8 each) with their
// biases (8 + 4 + 4), o (8 x 8), gate and up (16 x 8 each), down (8 x 16), two RMSNorm
// weights (8 each); then the final norm (8) and the lm_head (10 x 8, counted when tied).
constexpr double kMacsPerLayer = 64 + 32 + 32 + 16 + 64 + 128 + 128 + 128 + 16;  // 608
constexpr double kMacsPerToken = 2 * kMacsPerLayer + 8 + 80;                    // 1304

TEST(Flops, MatmulsMatchAHandCount) {
    const ModelConfig c = hand_config();
    EXPECT_EQ(double(c.num_matmul_parameters()), kMacsPerToken);
    EXPECT_EQ(forward_flops(c, 1.0, 0.0), 2.0 * kMacsPerToken);  // a multiply and an add each
    EXPECT_EQ(forward_flops(c, 5.0, 0.0), 5.0 * 2.0 * kMacsPerToken);
}

TEST(Flops, AttentionMatchesAHandCount) {
    const ModelConfig c = hand_config();
    // One (query, key) pair costs q . k and p . v over H * D = 8 channels, 2 FLOPs per
    // channel each, in each of the 2 layers: 2 * 2 * 8 * 2 = 64.
    EXPECT_EQ(forward_flops(c, 0.0, 1.0), 64.0);
    // A causal row of 4 tokens: 1 + 2 + 3 + 4 = 10 pairs.
    EXPECT_EQ(forward_flops(c, 4.0, 10.0), 4.0 * 2.0 * kMacsPerToken + 10.0 * 64.0);
}

TEST(Flops, PerTokenAndTrainingFollowTheConventions) {
    const ModelConfig c = hand_config();
    // PaLM convention: one token at context T is charged T pairs.
    EXPECT_EQ(forward_flops_per_token(c, 12.0), 2.0 * kMacsPerToken + 12.0 * 64.0);
    // The backward costs twice the forward.
    EXPECT_EQ(training_flops(c, 3.0, 7.0), 3.0 * forward_flops(c, 3.0, 7.0));
    EXPECT_EQ(training_flops_per_token(c, 12.0), 3.0 * forward_flops_per_token(c, 12.0));
    // The formula NTP's metrics used before the model was written once: 6 N + 12 L C T.
    EXPECT_EQ(training_flops_per_token(c, 12.0), 6.0 * kMacsPerToken + 12.0 * 2 * 8 * 12.0);
}

}  // namespace
}  // namespace rpt
