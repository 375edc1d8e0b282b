// The transformer as a whole: config validation, parameter layout, forward shapes, and
// a gradient check of every parameter tensor against central finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/rng.h"
#include "model/config.h"
#include "model/transformer.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

ModelConfig micro_config(bool tied) {
    test::TinyShape s;
    s.vocab = 13;
    s.hidden = 12;
    s.heads = 3;
    s.kv_heads = 1;
    s.ffn = 10;
    s.context = 8;
    ModelConfig c = test::tiny_config(s);
    c.rope_theta = 100.0f;
    c.tie_word_embeddings = tied;
    return c;
}

TEST(ModelConfig, PresetsHaveTheAnchorShapes) {
    const ModelConfig tiny = model_preset("tiny");
    EXPECT_EQ(tiny.vocab_size, 512);
    EXPECT_EQ(tiny.hidden_size, 128);
    EXPECT_EQ(tiny.num_layers, 4);
    EXPECT_EQ(tiny.num_kv_heads, 2);
    EXPECT_NEAR(double(tiny.num_parameters()), 0.92e6, 0.02e6);
    const ModelConfig small = model_preset("small");
    EXPECT_EQ(small.intermediate_size, 1536);
    EXPECT_NEAR(double(small.num_parameters()), 32.5e6, 0.5e6);
    // The 124M class: GPT-2 small's shape in the Qwen2 architecture (GQA 3:1, tied).
    const ModelConfig base = model_preset("qwen2-124m");
    EXPECT_EQ(base.num_layers, 12);
    EXPECT_EQ(base.hidden_size, 768);
    EXPECT_EQ(base.num_heads, 12);
    EXPECT_EQ(base.num_kv_heads, 4);
    EXPECT_EQ(base.head_dim, 64);
    EXPECT_EQ(base.vocab_size, 50304);
    EXPECT_EQ(base.max_position_embeddings, 1024);
    EXPECT_TRUE(base.tie_word_embeddings);
    EXPECT_NEAR(double(base.num_parameters()), 121.2e6, 0.5e6);
    EXPECT_EQ(model_preset_names(), (std::vector<std::string>{"tiny", "small", "qwen2-124m"}));
    try {
        model_preset("huge");
        FAIL() << "expected an error";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("tiny, small, qwen2-124m"), std::string::npos) << e.what();
    }
}

TEST(ModelConfig, ValidationNamesTheField) {
    ModelConfig c = micro_config(false);
    c.num_kv_heads = 2;  // does not divide 3 heads
    try {
        c.validate();
        FAIL() << "expected an error";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("num_key_value_heads"), std::string::npos) << e.what();
    }
    c = micro_config(false);
    c.hidden_size = 0;
    EXPECT_THROW(c.validate(), std::invalid_argument);
}

TEST(ModelConfig, HuggingFaceJsonRoundTrip) {
    const ModelConfig c = micro_config(true);
    const ModelConfig back = ModelConfig::from_hf_json(c.to_hf_json(), "test");
    EXPECT_EQ(back.to_hf_json(), c.to_hf_json());
    nlohmann::json j = c.to_hf_json();
    j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
    EXPECT_THROW(ModelConfig::from_hf_json(j, "cfg.json"), std::invalid_argument);
    j = c.to_hf_json();
    j.erase("hidden_size");
    try {
        ModelConfig::from_hf_json(j, "cfg.json");
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("cfg.json"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("hidden_size"), std::string::npos);
    }
}

TEST(ModelParameters, LayoutCoversTheBufferInHuggingFaceOrder) {
    const ModelConfig c = micro_config(false);
    const ParameterLayout layout(c);
    EXPECT_EQ(layout.total(), c.num_parameters());
    int64_t next = 0;
    for (const ParameterEntry& e : layout.entries()) {
        EXPECT_EQ(e.offset, next) << e.name;
        next += e.numel;
    }
    EXPECT_EQ(layout.entries().front().name, "model.embed_tokens.weight");
    EXPECT_EQ(layout.entries().back().name, "lm_head.weight");
    EXPECT_EQ(ParameterLayout(micro_config(true)).entries().back().name, "model.norm.weight");
}

TEST(ModelParameters, InitIsDeterministicBySeed) {
    const ParameterLayout layout(micro_config(false));
    std::vector<float> a(size_t(layout.total())), b(a.size()), c(a.size());
    init_parameters(layout, a.data(), 7);
    init_parameters(layout, b.data(), 7);
    init_parameters(layout, c.data(), 8);
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);
}

// L = sum_n coef[n] * logprob[n]; returns L in double.
double loss_of(Transformer& model, const std::vector<int32_t>& tokens, const std::vector<int32_t>& targets, int B,
               int T, const std::vector<float>& coef, float inv_temperature) {
    model.forward(tokens.data(), targets.data(), B, T, {}, inv_temperature);
    const std::vector<float> lp = model.logprobs();
    double L = 0;
    for (size_t i = 0; i < lp.size(); ++i) L += double(coef[i]) * lp[i];
    return L;
}

void check_model_gradients(bool tied, float inv_temperature) {
    const ModelConfig c = micro_config(tied);
    Transformer model(c, OpContext{});
    model.init_weights(3);
    // Larger weights than the 0.02 init make every path matter in the check.
    std::vector<float> params(size_t(model.layout().total()));
    copy_to_host(params.data(), model.params().flat);
    for (size_t i = 0; i < params.size(); ++i) params[i] += 0.3f * normal_at(11, i);
    copy_from_host(model.params().flat, params.data());

    const int B = 2, T = 7;
    std::vector<int32_t> tokens(B * T), targets(B * T);
    std::vector<float> coef(B * T);
    SplitMix rng{5};
    for (int i = 0; i < B * T; ++i) {
        tokens[i] = int32_t(rng.below(c.vocab_size));
        targets[i] = (i % 5 == 4) ? -1 : int32_t(rng.below(c.vocab_size));
        coef[i] = rng.uniform() - 0.5f;
    }
    model.zero_grad();
    loss_of(model, tokens, targets, B, T, coef, inv_temperature);
    model.backward(coef.data(), inv_temperature);
    std::vector<float> grads(params.size());
    copy_to_host(grads.data(), model.grads().flat);

    constexpr float kStep = 1e-2f;
    constexpr int kProbesPerTensor = 4;
    for (const ParameterEntry& e : model.layout().entries()) {
        for (int p = 0; p < kProbesPerTensor; ++p) {
            const size_t i = size_t(e.offset) + size_t(hash_keys(17, e.offset, p) % uint64_t(e.numel));
            const float saved = params[i];
            params[i] = saved + kStep;
            copy_from_host(model.params().flat, params.data());
            const double up = loss_of(model, tokens, targets, B, T, coef, inv_temperature);
            params[i] = saved - kStep;
            copy_from_host(model.params().flat, params.data());
            const double down = loss_of(model, tokens, targets, B, T, coef, inv_temperature);
            params[i] = saved;
            const double numeric = (up - down) / (2.0 * kStep);
            EXPECT_NEAR(grads[i], numeric, 2e-3 + 2e-2 * std::fabs(numeric)) << e.name << " element " << i - e.offset;
        }
    }
    copy_from_host(model.params().flat, params.data());
}

TEST(ModelGradients, EveryTensorMatchesFiniteDifferences) { check_model_gradients(false, 1.0f); }
TEST(ModelGradients, TiedEmbeddingsAndTemperature) { check_model_gradients(true, 1.0f / 0.8f); }

TEST(ModelForward, LogprobsAreNormalisedAndIgnoreMissingTargets) {
    const ModelConfig c = micro_config(false);
    Transformer model(c, OpContext{});
    model.init_weights(1);
    const int B = 1, T = 4;
    std::vector<int32_t> tokens = {1, 2, 3, 4};
    double total = 0;
    for (int v = 0; v < c.vocab_size; ++v) {
        std::vector<int32_t> targets = {v, v, -1, v};
        model.forward(tokens.data(), targets.data(), B, T);
        const std::vector<float> lp = model.logprobs();
        EXPECT_EQ(lp[2], 0.0f);
        total += std::exp(double(lp[0]));
    }
    EXPECT_NEAR(total, 1.0, 1e-5);
    std::vector<int32_t> bad = {1, 2, 99, 4}, targets = {1, 1, 1, 1};
    EXPECT_THROW(model.forward(bad.data(), targets.data(), B, T), std::invalid_argument);
    std::vector<int32_t> long_tokens(9, 1), long_targets(9, 1);
    EXPECT_THROW(model.forward(long_tokens.data(), long_targets.data(), 1, 9), std::invalid_argument);
}

TEST(ModelForward, CausalPrefixOutputsDoNotDependOnLaterTokens) {
    const ModelConfig c = micro_config(false);
    Transformer model(c, OpContext{});
    model.init_weights(2);
    std::vector<int32_t> a = {1, 2, 3, 4, 5, 6}, b = {1, 2, 3, 9, 9, 9}, targets = {2, 3, 4, 5, 6, 7};
    model.forward(a.data(), targets.data(), 1, 6);
    const std::vector<float> la = model.logprobs();
    model.forward(b.data(), targets.data(), 1, 6);
    const std::vector<float> lb = model.logprobs();
    for (int t = 0; t < 3; ++t) EXPECT_EQ(la[t], lb[t]) << t;
    EXPECT_NE(la[4], lb[4]);
}

// A prompt and three continuations, once as three padded rows and once packed into one
// row (the prompt computed once, kernels/ops.h segments, positions restarting after the
// prompt): every target's log-prob and every parameter gradient must agree. The packed
// row (10 tokens) is longer than the model's context (8); its positions are not.
TEST(ModelForward, PackedSharedPromptEqualsSeparateRows) {
    const ModelConfig c = micro_config(false);
    const std::vector<int32_t> prompt = {1, 2, 3, 4, 5};
    const std::vector<std::vector<int32_t>> responses = {{6, 7, 8}, {9}, {10, 11}};
    const std::vector<float> coefs = {0.3f, -0.7f, 0.2f, 1.1f, -0.4f, 0.9f};  // one per response token
    const int P = int(prompt.size());

    // Separate rows: prompt + response[0 .. r-2], targets from position P-1 on.
    const int Ts = P + 2, Bs = 3;
    std::vector<int32_t> tok_s(size_t(Bs) * Ts, 0), tgt_s(size_t(Bs) * Ts, -1);
    std::vector<float> dlp_s(tok_s.size(), 0.0f);
    // Packed row: prompt[0 .. P-2] shared, then per response [prompt[P-1], response[0 .. r-2]].
    std::vector<int32_t> tok_p(prompt.begin(), prompt.end() - 1), tgt_p(size_t(P - 1), -1), seg_p(size_t(P - 1), 0),
        pos_p;
    for (int t = 0; t < P - 1; ++t) pos_p.push_back(t);
    std::vector<float> dlp_p(size_t(P - 1), 0.0f);
    std::vector<std::pair<int, int>> where;  // (separate index, packed index) of each target
    size_t k = 0;
    for (int i = 0; i < Bs; ++i) {
        const auto& r = responses[size_t(i)];
        std::copy(prompt.begin(), prompt.end(), tok_s.begin() + int64_t(i) * Ts);
        for (size_t j = 0; j < r.size(); ++j, ++k) {
            const int sep = i * Ts + P - 1 + int(j), pk = int(tok_p.size());
            if (j + 1 < r.size()) tok_s[size_t(sep + 1)] = r[j];
            tgt_s[size_t(sep)] = r[j];
            dlp_s[size_t(sep)] = coefs[k];
            tok_p.push_back(j == 0 ? prompt.back() : r[j - 1]);
            tgt_p.push_back(r[j]);
            seg_p.push_back(i + 1);
            pos_p.push_back(P - 1 + int(j));
            dlp_p.push_back(coefs[k]);
            where.emplace_back(sep, pk);
        }
    }
    const int Tp = int(tok_p.size());
    ASSERT_GT(Tp, c.max_position_embeddings);

    Transformer separate(c, OpContext{}), packed(c, OpContext{});
    separate.init_weights(5);
    packed.init_weights(5);
    separate.zero_grad();
    packed.zero_grad();
    separate.forward(tok_s.data(), tgt_s.data(), Bs, Ts, {}, 1.25f);
    packed.forward(tok_p.data(), tgt_p.data(), 1, Tp, {}, 1.25f, PackedLayout{pos_p.data(), seg_p.data()});
    const std::vector<float> ls = separate.logprobs(), lp = packed.logprobs();
    for (const auto& [sep, pk] : where) EXPECT_NEAR(ls[size_t(sep)], lp[size_t(pk)], 1e-5) << sep << " " << pk;
    separate.backward(dlp_s.data(), 1.25f);
    packed.backward(dlp_p.data(), 1.25f);
    std::vector<float> gs(size_t(separate.layout().total())), gp(gs.size());
    copy_to_host(gs.data(), separate.grads().flat);
    copy_to_host(gp.data(), packed.grads().flat);
    double diff = 0, norm = 0;
    for (size_t i = 0; i < gs.size(); ++i) {
        diff += (double(gs[i]) - gp[i]) * (double(gs[i]) - gp[i]);
        norm += double(gs[i]) * gs[i];
    }
    EXPECT_GT(norm, 0.0);
    EXPECT_LT(std::sqrt(diff / norm), 1e-5);

    // Without the packing the same row is a different computation: the check can fail.
    packed.forward(tok_p.data(), tgt_p.data(), 1, Tp, {}, 1.25f, PackedLayout{pos_p.data(), nullptr});
    EXPECT_GT(std::fabs(packed.logprobs()[size_t(where.back().second)] - ls[size_t(where.back().first)]), 1e-4);
    // A position past the context is refused, naming it.
    pos_p.back() = c.max_position_embeddings;
    EXPECT_THROW(packed.forward(tok_p.data(), tgt_p.data(), 1, Tp, {}, 1.0f, PackedLayout{pos_p.data(), seg_p.data()}),
                 std::invalid_argument);
    // And an unpacked row that long is refused too.
    EXPECT_THROW(packed.forward(tok_p.data(), tgt_p.data(), 1, Tp), std::invalid_argument);
}

}  // namespace
}  // namespace rpt
