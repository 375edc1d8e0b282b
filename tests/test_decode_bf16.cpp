// A bf16 model's decode step on the CPU (the emulation of the GPU recipe): it reads the
// bf16 working weights on bf16 rows and attends over the KV cache, so its next-token
// logits must match a bf16 batch forward over the same tokens within a bf16 tolerance
// (the two round at the same points; only attention's fp32 summation order differs, and
// a rounding flipped by it propagates), and match the fp32 decode within a looser bound
// (the bf16 weights and rows themselves). Plus: the cache's rows follow the precision, a
// mismatch throws, and the rollout engine runs a bf16 model.
//
// Tolerances (relative L2 over all logits of a run, rpt::test::rel_error), measured on
// this file's shapes (printed by the test) and set with a margin:
//   bf16 decode vs bf16 forward   kSameRecipe 2e-3   measured 2.1e-4 (one rounding flipped
//                                                    by attention's order, propagated; 1.6e-7
//                                                    with the weights scaled by 8 instead of 4)
//   bf16 decode vs fp32 decode    kVsFp32 1e-1       measured 3.4e-2, no more than the bf16
//                                                    forward's own distance to fp32 (3.4e-2)
//                                                    plus a quarter, and above kBf16Shows
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/rng.h"
#include "model/kv_cache.h"
#include "model/transformer.h"
#include "rl/rollout.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

constexpr float kWeightScale = 4.0f;
constexpr double kSameRecipe = 2e-3;
constexpr double kVsFp32 = 1e-1;
constexpr double kBf16Shows = 1e-4;  // bf16 decode must differ from fp32: the bf16 weights were read

ModelConfig decode_config() {
    test::TinyShape s;
    s.vocab = 48;
    s.hidden = 64;  // head_dim 16
    s.layers = 3;
    s.heads = 4;
    s.kv_heads = 2;
    s.ffn = 96;
    s.context = 64;
    return test::tiny_config(s);
}

// The same weights in either precision: a fixed init, scaled up so the next-token
// distribution is far from uniform and the logits' rounding matters.
void init_model(Transformer& model) {
    model.init_weights(21);
    std::vector<float> params(size_t(model.layout().total()));
    copy_to_host(params.data(), model.params().flat);
    for (float& p : params) p *= kWeightScale;
    copy_from_host(model.params().flat, params.data());
    model.refresh_working();
}

int32_t token_at(uint64_t seed, uint64_t i, uint64_t t, int vocab) {
    return int32_t(hash_keys(seed, i, t) % uint64_t(vocab));
}

// B contexts of G slots: context b's prefix (prefilled), then slot s's own R tokens
// (decoded one step at a time, teacher-forced).
struct Problem {
    int B = 2, G = 2, R = 6;
    std::vector<std::vector<int32_t>> prefixes;  // (B) of different lengths
    std::vector<std::vector<int32_t>> suffixes;  // (S) of R tokens each
    int S() const { return B * G; }
};

Problem make_problem(int vocab) {
    Problem p;
    const int lengths[] = {9, 14};
    for (int b = 0; b < p.B; ++b) {
        std::vector<int32_t> prefix;
        for (int t = 0; t < lengths[b]; ++t) prefix.push_back(token_at(1, uint64_t(b), uint64_t(t), vocab));
        p.prefixes.push_back(prefix);
    }
    for (int s = 0; s < p.S(); ++s) {
        std::vector<int32_t> suffix;
        for (int t = 0; t < p.R; ++t) suffix.push_back(token_at(2, uint64_t(s), uint64_t(t), vocab));
        p.suffixes.push_back(suffix);
    }
    return p;
}

// Logits (R, S, V) of decode step r for slot s, from one batch forward over every slot's
// whole sequence (prefix + suffix, right-padded: causal attention never sees the pad).
std::vector<float> forward_logits(Transformer& model, const Problem& p) {
    const int V = model.config().vocab_size;
    int T = 0;
    for (int s = 0; s < p.S(); ++s) T = std::max(T, int(p.prefixes[size_t(s / p.G)].size()) + p.R);
    std::vector<int32_t> tokens(size_t(p.S()) * T, 0), targets(size_t(p.S()) * T, -1);
    for (int s = 0; s < p.S(); ++s) {
        const auto& prefix = p.prefixes[size_t(s / p.G)];
        std::copy(prefix.begin(), prefix.end(), tokens.begin() + int64_t(s) * T);
        std::copy(p.suffixes[size_t(s)].begin(), p.suffixes[size_t(s)].end(),
                  tokens.begin() + int64_t(s) * T + int64_t(prefix.size()));
    }
    model.forward(tokens.data(), targets.data(), p.S(), T);
    const Tensor& logits = model.activations().logits;
    if (logits.dim(0) < int64_t(p.S()) * T) throw std::logic_error("logits were computed in chunks");
    std::vector<float> all(size_t(p.S()) * T * V);
    copy_to_host(all.data(), logits.rows(0, int64_t(p.S()) * T));
    std::vector<float> out(size_t(p.R) * p.S() * V);
    for (int r = 0; r < p.R; ++r)
        for (int s = 0; s < p.S(); ++s) {
            const int64_t t = int64_t(p.prefixes[size_t(s / p.G)].size()) + r;  // suffix token r's position
            std::copy_n(all.begin() + (int64_t(s) * T + t) * V, V, out.begin() + (int64_t(r) * p.S() + s) * V);
        }
    return out;
}

// The same logits from prefill + R decode steps over a cache of `kv` dtype. Rows are fed
// in reverse slot order, so row a is not slot a.
std::vector<float> decode_logits(Transformer& model, const Problem& p, KvDType kv) {
    const int V = model.config().vocab_size, S = p.S();
    int longest = 0;
    for (const auto& prefix : p.prefixes) longest = std::max(longest, int(prefix.size()));
    const KvCacheShape shape{p.B, p.G, longest, p.R, kv, model.precision()};
    KvCache cache(model.config(), model.context(), shape, size_t(1) << 26);
    model.prefill(cache, p.prefixes);
    std::vector<float> out(size_t(p.R) * S * V), step(size_t(S) * V);
    std::vector<int32_t> inputs(size_t(KvCache::kStepInputs) * S, 0);
    auto row = [&](KvCache::StepInput which) { return inputs.data() + size_t(which) * size_t(S); };
    using In = KvCache::StepInput;
    for (int r = 0; r < p.R; ++r) {
        for (int a = 0; a < S; ++a) {
            const int s = S - 1 - a;
            row(In::tokens)[a] = p.suffixes[size_t(s)][size_t(r)];
            row(In::positions)[a] = int32_t(p.prefixes[size_t(s / p.G)].size()) + r;
            row(In::slots)[a] = s;
            row(In::suffix_index)[a] = r;
            row(In::suffix_len)[a] = r + 1;
        }
        copy_from_host(cache.step_inputs, inputs.data());
        model.decode_step(cache, S);
        copy_to_host(step.data(), cache.logits.rows(0, S));
        for (int a = 0; a < S; ++a)
            std::copy_n(step.begin() + int64_t(a) * V, V, out.begin() + (int64_t(r) * S + (S - 1 - a)) * V);
    }
    return out;
}

TEST(DecodeBf16, CacheRowsFollowThePrecision) {
    const ModelConfig c = decode_config();
    KvCacheShape shape{2, 2, 8, 4, KvDType::f32, Precision::bf16};
    KvCache cache(c, OpContext{}, shape, size_t(1) << 24);
    for (const Tensor* t : {&cache.hidden_a, &cache.hidden_b, &cache.ln1, &cache.ln2, &cache.q, &cache.attn, &cache.k,
                            &cache.v, &cache.mid, &cache.gate, &cache.up, &cache.act})
        EXPECT_EQ(t->dtype, DType::bf16) << t->describe();
    for (const Tensor* t : {&cache.rstd1, &cache.rstd2, &cache.lnf, &cache.logits})
        EXPECT_EQ(t->dtype, DType::f32) << t->describe();
    EXPECT_EQ(cache.prefix_k[0].dtype, DType::f32);  // the K/V dtype is its own setting
    EXPECT_NE(cache.lnf.data, cache.ln1.data);

    // fp32 rows: the final norm shares ln1's memory, so the layout (and `rpt plan`'s
    // count) is what it was before bf16 rows existed.
    shape.precision = Precision::f32;
    KvCache f32_cache(c, OpContext{}, shape, size_t(1) << 24);
    EXPECT_EQ(f32_cache.q.dtype, DType::f32);
    EXPECT_EQ(f32_cache.lnf.data, f32_cache.ln1.data);
    // bf16 rows halve the scratch, more than the separate fp32 lnf costs.
    EXPECT_LT(KvCache::total_bytes(c, {2, 2, 8, 4, KvDType::f32, Precision::bf16}, DeviceKind::cpu),
              KvCache::total_bytes(c, shape, DeviceKind::cpu));
}

TEST(DecodeBf16, PrecisionMismatchThrows) {
    Transformer model(decode_config(), OpContext{}, Precision::bf16);
    init_model(model);
    KvCacheShape shape{1, 1, 4, 2, KvDType::bf16, Precision::f32};
    KvCache cache(model.config(), model.context(), shape, size_t(1) << 24);
    model.prefill(cache, {{1, 2, 3}});
    try {
        model.decode_step(cache, 1);
        ADD_FAILURE() << "expected std::invalid_argument";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("KvCacheShape::precision"), std::string::npos) << e.what();
    }
}

TEST(DecodeBf16, LogitsMatchTheBf16ForwardAndStayNearFp32) {
    const Problem p = make_problem(decode_config().vocab_size);
    Transformer fp32(decode_config(), OpContext{}, Precision::f32);
    Transformer bf16(decode_config(), OpContext{}, Precision::bf16);
    init_model(fp32);
    init_model(bf16);

    const std::vector<float> fp32_forward = forward_logits(fp32, p);
    const std::vector<float> fp32_decode = decode_logits(fp32, p, KvDType::f32);
    const std::vector<float> bf16_forward = forward_logits(bf16, p);
    const std::vector<float> bf16_decode = decode_logits(bf16, p, KvDType::bf16);
    const std::vector<float> bf16_decode_f32_kv = decode_logits(bf16, p, KvDType::f32);

    const double fp32_same = test::rel_error(fp32_decode, fp32_forward);
    const double same = test::rel_error(bf16_decode, bf16_forward);
    const double vs_fp32 = test::rel_error(bf16_decode, fp32_decode);
    const double forward_vs_fp32 = test::rel_error(bf16_forward, fp32_forward);
    std::printf("decode vs forward: fp32 %.2e, bf16 %.2e; bf16 vs fp32: decode %.2e, forward %.2e\n", fp32_same,
                same, vs_fp32, forward_vs_fp32);
    EXPECT_LT(fp32_same, 1e-5);  // the fp32 path: only summation order differs
    EXPECT_LT(same, kSameRecipe);
    EXPECT_LT(vs_fp32, kVsFp32);
    EXPECT_LT(vs_fp32, 1.25 * forward_vs_fp32 + kSameRecipe);  // decoding adds nothing to the recipe's error
    EXPECT_GT(vs_fp32, kBf16Shows);
    // bf16 rows appended to an fp32 cache are widened exactly, and prefill's bf16 K/V
    // too: the fp32 cache holds the very values of the bf16 one, and attention reads them
    // with the same fp32 arithmetic.
    EXPECT_TRUE(test::bitwise_equal(bf16_decode_f32_kv, bf16_decode));
}

// The rollout engine on a bf16 model: the cache it builds has bf16 rows (decode_step
// would throw otherwise), and greedy decoding picks, at every step, a token whose bf16
// forward logit is within the tolerance of that position's best.
TEST(DecodeBf16, GreedyRolloutsRunInBf16) {
    Transformer model(decode_config(), OpContext{}, Precision::bf16);
    init_model(model);
    const int V = model.config().vocab_size;
    std::vector<std::vector<int32_t>> prompts;
    for (int b = 0; b < 2; ++b) {
        std::vector<int32_t> prompt;
        for (int t = 0; t < 6 + 3 * b; ++t) prompt.push_back(token_at(5, uint64_t(b), uint64_t(t), V));
        prompts.push_back(prompt);
    }
    RolloutSettings s;
    s.group_size = 2;
    s.max_new_tokens = 5;
    s.kv_dtype = KvDType::bf16;
    s.sampling.greedy = true;
    const RolloutResult r = generate_rollouts(model, prompts, {0, 1}, {}, s);
    ASSERT_EQ(r.responses.size(), 4u);
    EXPECT_EQ(r.kv_dtype, DType::bf16);
    for (size_t slot = 0; slot < r.responses.size(); ++slot) {
        const auto& prompt = prompts[slot / 2];
        const auto& resp = r.responses[slot];
        ASSERT_EQ(resp.size(), 5u);
        std::vector<int32_t> tokens(prompt);
        tokens.insert(tokens.end(), resp.begin(), resp.end() - 1);
        const std::vector<int32_t> targets(tokens.size(), -1);
        const int T = int(tokens.size());
        model.forward(tokens.data(), targets.data(), 1, T);
        std::vector<float> logits(size_t(T) * V);
        copy_to_host(logits.data(), model.activations().logits.rows(0, T));
        for (size_t i = 0; i < resp.size(); ++i) {
            const float* row = logits.data() + (prompt.size() - 1 + i) * size_t(V);
            const float best = *std::max_element(row, row + V);
            const float spread = best - *std::min_element(row, row + V);
            EXPECT_GE(row[resp[i]], best - 0.02f * spread) << "slot " << slot << " token " << i;
        }
    }
}

}  // namespace
}  // namespace rpt
