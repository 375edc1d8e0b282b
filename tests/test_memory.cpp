// What the model holds in memory: a model that only runs forward (generation, scoring,
// evaluation, the frozen KL reference, a loaded checkpoint) allocates no gradients and
// no backward scratch; training allocates both on its first step. Large host buffers
// come zeroed from the kernel. Layer recomputation keeps the gradients bit for bit.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "model/checkpoint.h"
#include "model/transformer.h"
#include "rl/grpo.h"
#include "rl/rollout.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

using testing::TempDir;

ModelConfig memory_config() { return test::tiny_config(test::odd_shape()); }

void expect_no_training_memory(const Transformer& model, const char* after) {
    EXPECT_FALSE(model.has_gradients()) << after;
    EXPECT_EQ(model.gradient_bytes(), 0u) << after;
    EXPECT_TRUE(model.grads().flat.empty()) << after;
    EXPECT_EQ(model.backward_scratch_bytes(), 0u) << after;
    EXPECT_FALSE(model.activations().has_backward_scratch) << after;
}

TEST(InferenceMemory, ForwardScoringAndRolloutsAllocateNoGradients) {
    Transformer model(memory_config(), OpContext{});
    model.init_weights(1);
    expect_no_training_memory(model, "after construction");
    const std::vector<int32_t> tokens(2 * 8, 5), targets(2 * 8, 6);
    HeadRequest request;
    request.entropy = true;
    request.topk_entropy = 4;
    request.argmax = true;
    model.forward(tokens.data(), targets.data(), 2, 8, request);
    expect_no_training_memory(model, "after a scoring forward");
    RolloutSettings settings;
    settings.group_size = 2;
    settings.max_new_tokens = 4;
    generate_rollouts(model, {{1, 2, 3}, {4, 5}}, {0, 1}, {}, settings);
    expect_no_training_memory(model, "after rollouts");
    EXPECT_GT(model.activation_bytes(), 0u);
}

TEST(InferenceMemory, LoadedCheckpointHoldsNoGradients) {
    Transformer trained(memory_config(), OpContext{});
    trained.init_weights(2);
    trained.zero_grad();
    TempDir tmp;
    save_checkpoint(tmp.file("ck"), trained, Tokenizer::load("tests/fixtures/hf_tokenizer/tokenizer.json"), nullptr,
                    nullptr);
    Transformer loaded(read_checkpoint_config(tmp.file("ck")), OpContext{});
    load_checkpoint_weights(tmp.file("ck"), loaded);
    expect_no_training_memory(loaded, "after loading");
}

TEST(InferenceMemory, TrainingAllocatesGradientsOnItsFirstStep) {
    Transformer model(memory_config(), OpContext{});
    model.init_weights(3);
    model.zero_grad();
    EXPECT_TRUE(model.has_gradients());
    EXPECT_EQ(model.gradient_bytes(), size_t(model.layout().total()) * sizeof(float));
    const std::vector<int32_t> tokens(2 * 8, 5), targets(2 * 8, 6);
    model.forward(tokens.data(), targets.data(), 2, 8);
    const std::vector<float> dlogprob(2 * 8, -1.0f / 16);
    model.backward(dlogprob.data());
    EXPECT_GT(model.backward_scratch_bytes(), 0u);
    EXPECT_TRUE(model.activations().has_backward_scratch);
}

TEST(InferenceMemory, TheFrozenReferenceOfAGrpoUpdateHoldsNoGradients) {
    const ModelConfig c = memory_config();
    Transformer policy(c, OpContext{}), reference(c, OpContext{});
    policy.init_weights(4);
    reference.init_weights(4);
    AdamW optimizer(policy.layout(), OpContext{});
    RolloutResult rollouts;
    rollouts.contexts = 1;
    rollouts.group_size = 2;
    rollouts.responses = {{7, 8}, {9}};
    GrpoSettings settings;
    settings.loss.kl_beta = 0.1f;
    grpo_update(policy, optimizer, &reference, {{1, 2, 3}}, rollouts, {1.0f, 0.0f}, settings, 0.0f, AdamWConfig{});
    EXPECT_TRUE(policy.has_gradients());
    expect_no_training_memory(reference, "after the update");
}

// Gradients of one forward/backward of the tiny preset's shape (two rows of 24 tokens).
std::vector<float> tiny_gradients(Recompute recompute, Precision precision, size_t* activation_bytes) {
    Transformer model(model_preset("tiny"), OpContext{}, precision);
    model.set_recompute(recompute);
    model.init_weights(5);
    const int B = 2, T = 24, V = model.config().vocab_size;
    const std::vector<int32_t> tokens = test::random_ints(size_t(B) * T, 6, 0, V - 1);
    const std::vector<int32_t> targets = test::random_ints(size_t(B) * T, 7, 0, V - 1);
    const std::vector<float> dlogprob = test::random_floats(size_t(B) * T, 8, -0.1f, 0.1f);
    model.zero_grad();
    for (int pass = 0; pass < 2; ++pass) {  // twice: accumulation sees the recomputed layers too
        model.forward(tokens.data(), targets.data(), B, T);
        model.backward(dlogprob.data());
    }
    *activation_bytes = model.activation_bytes();
    std::vector<float> grads(size_t(model.layout().total()));
    copy_to_host(grads.data(), model.grads().flat);
    return grads;
}

TEST(Recompute, LayerRecomputationGivesBitIdenticalGradients) {
    for (Precision precision : {Precision::f32, Precision::bf16}) {
        size_t saved_all = 0, saved_inputs = 0;
        const std::vector<float> reference = tiny_gradients(Recompute::none, precision, &saved_all);
        const std::vector<float> recomputed = tiny_gradients(Recompute::layer, precision, &saved_inputs);
        ASSERT_EQ(reference.size(), recomputed.size());
        EXPECT_EQ(std::memcmp(reference.data(), recomputed.data(), reference.size() * sizeof(float)), 0)
            << precision_name(precision);
        // Four layers' activations become four inputs and one shared set.
        EXPECT_LT(double(saved_inputs), 0.6 * double(saved_all)) << precision_name(precision);
    }
}

TEST(Recompute, RolloutsAreUnchanged) {
    std::vector<std::vector<int32_t>> responses[2];
    for (Recompute recompute : {Recompute::none, Recompute::layer}) {
        Transformer model(memory_config(), OpContext{});
        model.set_recompute(recompute);
        model.init_weights(9);
        RolloutSettings settings;
        settings.group_size = 2;
        settings.max_new_tokens = 6;
        responses[int(recompute)] = generate_rollouts(model, {{1, 2, 3, 4}, {5, 6}}, {0, 1}, {}, settings).responses;
    }
    EXPECT_EQ(responses[0], responses[1]);
}

TEST(HostBuffer, LargeBuffersAreZeroAndMove) {
    // 2 MiB and more: an anonymous mapping (kernels/buffer.h), zero without a memset.
    Buffer big(DeviceKind::cpu, (size_t(3) << 20) + 5, "test");
    const float* f = static_cast<const float*>(big.data());
    for (size_t i = 0; i < big.bytes() / sizeof(float); i += 997) ASSERT_EQ(f[i], 0.0f) << i;
    static_cast<char*>(big.data())[big.bytes() - 1] = 7;  // the last byte is writable
    Buffer moved = std::move(big);
    EXPECT_EQ(big.bytes(), 0u);
    EXPECT_EQ(static_cast<const char*>(moved.data())[moved.bytes() - 1], 7);
    moved = Buffer(DeviceKind::cpu, 64, "small");
    EXPECT_EQ(static_cast<const char*>(moved.data())[63], 0);
}

}  // namespace
}  // namespace rpt
