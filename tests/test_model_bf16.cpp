// The model in bf16 precision on the CPU (the emulation of the GPU recipe): which
// tensors are bf16 and which stay fp32, the working copy always equal to the rounded
// masters (after init, after every AdamW step, after a load), the forward and gradients
// close to fp32 at bf16 tolerance, and the tiny preset trained 200 steps tracking the
// fp32 loss curve.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "kernels/bf16.h"
#include "model/bpe_trainer.h"
#include "model/checkpoint.h"
#include "rl/ntp_trainer.h"
#include "rl/special_tokens.h"
#include "rl/synth_corpus.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

using rpt::testing::TempDir;

struct Fixture {
    std::vector<std::string> docs = synth_corpus(5, 300);
    Tokenizer tokenizer = train_bpe(docs, model_preset("tiny").vocab_size, default_special_tokens());
    TokenizedCorpus corpus = tokenize_corpus(docs, tokenizer, *tokenizer.token_id(kEndOfText), 5, 0.1);
};

const Fixture& fixture() {
    static const Fixture f;  // tokenizer training is the slow part
    return f;
}

ModelConfig tiny_preset_config() {
    ModelConfig c = model_preset("tiny");
    c.eos_token_id = *fixture().tokenizer.token_id(kEndOfText);
    return c;
}

std::vector<float> host_f32(const Tensor& t) {
    std::vector<float> v(size_t(t.numel()));
    copy_to_host(v.data(), t);
    return v;
}

std::vector<uint16_t> host_bf16(const Tensor& t) {
    std::vector<uint16_t> v(size_t(t.numel()));
    copy_to_host(v.data(), t);
    return v;
}

// The working copy holds exactly the masters rounded to nearest even.
void expect_working_is_rounded_masters(const Transformer& model, const char* when) {
    const std::vector<float> masters = host_f32(model.params().flat);
    const std::vector<uint16_t> working = host_bf16(model.working_params());
    ASSERT_EQ(working.size(), masters.size()) << when;
    size_t mismatches = 0;
    for (size_t i = 0; i < masters.size(); ++i) mismatches += working[i] != f32_to_bf16(masters[i]);
    EXPECT_EQ(mismatches, 0u) << when;
}

NtpOptions options(int64_t steps) {
    NtpOptions o;
    o.batch_size = 4;
    o.seq_len = 64;
    o.steps = steps;
    o.warmup_steps = 10;
    o.adamw.lr = 3e-3f;
    o.adamw.weight_decay = 0.1f;
    o.quiet = true;
    return o;
}

TEST(ModelBf16, DtypesFollowTheRecipe) {
    Transformer f32_model(tiny_preset_config(), OpContext{});
    EXPECT_TRUE(f32_model.working_params().empty()) << "f32 keeps no working copy";
    Transformer model(tiny_preset_config(), OpContext{}, Precision::bf16);
    model.init_weights(3);
    const std::vector<int32_t> tokens(2 * 16, 7), targets(2 * 16, 9);
    model.forward(tokens.data(), targets.data(), 2, 16);
    const std::vector<float> dlogprob(2 * 16, -1.0f / 32);
    model.backward(dlogprob.data());  // carves the gradients and the backward scratch
    const Activations& a = model.activations();
    EXPECT_EQ(model.params().flat.dtype, DType::f32);
    EXPECT_EQ(model.grads().flat.dtype, DType::f32);
    EXPECT_EQ(model.working_params().dtype, DType::bf16);
    for (const Tensor* t : {&a.layers[0].input, &a.layers[0].q, &a.layers[0].attn, &a.layers[0].act, &a.residual,
                            &a.dresidual, &a.dq, &a.dact})
        EXPECT_EQ(t->dtype, DType::bf16) << t->describe();
    for (const Tensor* t : {&a.layers[0].ln1_rstd, &a.layers[0].attn_lse, &a.lnf, &a.lnf_rstd, &a.logits, &a.lse,
                            &a.logprob, &a.dlnf, &a.dlogprob})
        EXPECT_EQ(t->dtype, DType::f32) << t->describe();
}

TEST(ModelBf16, WorkingCopyFollowsInitStepsAndLoads) {
    const Fixture& f = fixture();
    Transformer model(tiny_preset_config(), OpContext{}, Precision::bf16);
    model.init_weights(4);
    expect_working_is_rounded_masters(model, "after init");
    AdamW opt(model.layout(), OpContext{});
    const NtpOptions o = options(3);
    for (int64_t step = 1; step <= o.steps; ++step) ntp_train_step(model, opt, f.corpus.train_stream, o, step);
    expect_working_is_rounded_masters(model, "after AdamW steps");

    TempDir tmp;
    save_checkpoint(tmp.file("ck"), model, f.tokenizer, &opt, nullptr);
    Transformer loaded(read_checkpoint_config(tmp.file("ck")), OpContext{}, Precision::bf16);
    load_checkpoint_weights(tmp.file("ck"), loaded);
    EXPECT_EQ(host_f32(loaded.params().flat), host_f32(model.params().flat)) << "checkpoints hold the fp32 masters";
    expect_working_is_rounded_masters(loaded, "after load");
}

// One forward and backward of the same weights in both precisions.
TEST(ModelBf16, ForwardAndGradientsCloseToFp32) {
    const Fixture& f = fixture();
    Transformer a(tiny_preset_config(), OpContext{}), b(tiny_preset_config(), OpContext{}, Precision::bf16);
    a.init_weights(5);
    b.init_weights(5);
    const int B = 3, T = 37;  // T not a power of two
    const std::vector<int32_t>& s = f.corpus.train_stream;
    const std::vector<int32_t> tokens(s.begin(), s.begin() + B * T), targets(s.begin() + 1, s.begin() + 1 + B * T);
    const std::vector<float> dlogprob(size_t(B) * T, -1.0f / float(B * T));
    for (Transformer* m : {&a, &b}) {
        m->zero_grad();
        m->forward(tokens.data(), targets.data(), B, T, HeadRequest{true});
        m->backward(dlogprob.data());
    }
    // Measured (this config, seed 5): log-prob rel. error 2.4e-4, entropy 3.0e-6 (the head
    // is fp32: only its input differs), gradient 6.7e-3 (the gradient passes through ~20
    // bf16 stores per layer); the bounds keep a margin of 3-4.
    const double lp = test::rel_error(b.logprobs(), a.logprobs());
    const double ent = test::rel_error(b.entropies(), a.entropies());
    const double grad = test::rel_error(host_f32(b.grads().flat), host_f32(a.grads().flat));
    std::printf("bf16 vs fp32: logprob %.2e, entropy %.2e, gradient %.2e (relative)\n", lp, ent, grad);
    EXPECT_LT(lp, 1e-3);
    EXPECT_LT(ent, 1e-5);
    EXPECT_LT(grad, 2.5e-2);
}

// The largest |b - a| / a over the curves' trailing means of `window` steps (the loss
// curve as plotted: single steps of a small batch are noisy in both precisions alike).
double max_relative_gap(const std::vector<double>& a, const std::vector<double>& b, size_t window, size_t* at) {
    double worst = 0.0, sum_a = 0.0, sum_b = 0.0;
    for (size_t i = 0; i < a.size(); ++i) {
        sum_a += a[i], sum_b += b[i];
        if (i >= window) sum_a -= a[i - window], sum_b -= b[i - window];
        if (i + 1 < window) continue;
        const double gap = std::fabs(sum_b - sum_a) / sum_a;
        if (gap > worst) worst = gap, *at = i + 1;
    }
    return worst;
}

// The acceptance test of the recipe: 200 steps of the tiny preset, the same batches in
// both precisions; the bf16 loss curve within kCurveTolerance of fp32's.
TEST(ModelBf16, TinyTracksTheFp32LossCurveFor200Steps) {
    // Measured (this test, deterministic): max relative gap 0.030 of the 10-step means
    // (step 114), 0.070 step by step (step 105); with B 4 x T 64, 0.061 step by step.
    // The bound keeps a margin of 2 on the measured 0.030.
    constexpr double kCurveTolerance = 0.06;
    constexpr size_t kWindow = 10;
    const Fixture& f = fixture();
    NtpOptions o = options(200);
    o.batch_size = 2;  // 64 tokens a step: 200 steps of two models in minutes on a loaded CPU
    o.seq_len = 32;
    Transformer a(tiny_preset_config(), OpContext{}), b(tiny_preset_config(), OpContext{}, Precision::bf16);
    a.init_weights(6);
    b.init_weights(6);
    AdamW opt_a(a.layout(), OpContext{}), opt_b(b.layout(), OpContext{});
    std::vector<double> curve_a, curve_b;
    for (int64_t step = 1; step <= o.steps; ++step) {
        curve_a.push_back(ntp_train_step(a, opt_a, f.corpus.train_stream, o, step).loss);
        curve_b.push_back(ntp_train_step(b, opt_b, f.corpus.train_stream, o, step).loss);
        if (step % 25 == 0)
            std::printf("step %3lld: loss fp32 %.4f, bf16 %.4f\n", (long long)step, curve_a.back(), curve_b.back());
    }
    size_t at_raw = 0, at_smooth = 0;
    const double raw = max_relative_gap(curve_a, curve_b, 1, &at_raw);
    const double smooth = max_relative_gap(curve_a, curve_b, kWindow, &at_smooth);
    std::printf("loss curves: max relative gap %.4f (step %zu) of the %zu-step means, %.4f (step %zu) step by step; "
                "fp32 %.3f -> %.3f, bf16 -> %.3f\n",
                smooth, at_smooth, kWindow, raw, at_raw, curve_a.front(), curve_a.back(), curve_b.back());
    EXPECT_LT(curve_a.back(), 0.8 * curve_a.front()) << "the fp32 run must learn for the comparison to mean anything";
    EXPECT_LT(smooth, kCurveTolerance);
}

}  // namespace
}  // namespace rpt
