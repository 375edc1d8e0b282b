// Shared helpers for the unit tests: seeded random data, relative errors, NaN poison,
// central finite differences, bitwise comparison, and the small model configurations
// the model, RL and comm tests build.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "model/config.h"

namespace rpt::test {

// Uniform floats in [lo, hi), seeded: the same data on every run.
// RPT_TEST_SMALL=1: the GPU tests shrink their shapes (compute-sanitizer runs them
// 10-100x slower; tools/gpu-check.sh sets it for memcheck and racecheck).
inline bool small_mode() {
    const char* e = std::getenv("RPT_TEST_SMALL");
    return e && *e && std::strcmp(e, "0") != 0;
}

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

// Uniform floats bounded away from zero: |x| in [0.1, 1) with a random sign.
inline std::vector<float> random_nonzero(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> mag(0.1f, 1.0f);
    std::bernoulli_distribution sign(0.5);
    std::vector<float> v(n);
    for (float& x : v) x = sign(rng) ? mag(rng) : -mag(rng);
    return v;
}

inline std::vector<int32_t> random_ints(size_t n, uint32_t seed, int32_t lo, int32_t hi_inclusive) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int32_t> dist(lo, hi_inclusive);
    std::vector<int32_t> v(n);
    for (int32_t& x : v) x = dist(rng);
    return v;
}

// Filled with NaN so that an op which leaves an element unwritten fails the check.
inline std::vector<float> poisoned(size_t n) { return std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()); }

inline std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// ||out - ref|| / ||ref|| (NaN anywhere in out gives NaN, which fails any `<` check).
template <class A, class B>
double rel_error(const std::vector<A>& out, const std::vector<B>& ref) {
    if (out.size() != ref.size()) return std::numeric_limits<double>::infinity();
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < out.size(); ++i) {
        const double d = static_cast<double>(out[i]) - static_cast<double>(ref[i]);
        num += d * d;
        den += static_cast<double>(ref[i]) * static_cast<double>(ref[i]);
    }
    return std::sqrt(num / (den > 0.0 ? den : 1.0));
}

// Element-wise bitwise equality (NaN-safe): for determinism checks.
inline bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Central differences dL/dx_i of a scalar function of x, in double.
inline std::vector<double> numeric_grad(std::vector<double> x, const std::function<double(const std::vector<double>&)>& loss,
                                        double step = 1e-6) {
    std::vector<double> grad(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
        const double keep = x[i];
        x[i] = keep + step;
        const double up = loss(x);
        x[i] = keep - step;
        const double down = loss(x);
        x[i] = keep;
        grad[i] = (up - down) / (2.0 * step);
    }
    return grad;
}

// sum_i w_i * y_i: the random linear functional that gradient checks differentiate.
template <class W, class Y>
double dot(const std::vector<W>& w, const std::vector<Y>& y) {
    double s = 0.0;
    for (size_t i = 0; i < w.size(); ++i) s += static_cast<double>(w[i]) * static_cast<double>(y[i]);
    return s;
}

// The shape of a test model, each dimension named (head_dim is hidden / heads). A test
// sets the fields its checks depend on and keeps the others.
struct TinyShape {
    int vocab = 32;    // V
    int hidden = 32;   // C
    int layers = 2;    // L
    int heads = 4;     // H
    int kv_heads = 2;  // KVH
    int ffn = 64;      // F
    int context = 64;  // T_max, max_position_embeddings
};

// The small odd-sized model of the GRPO and memory tests: a vocabulary and widths that
// are not powers of two, so no kernel's tiling hides an edge case.
inline TinyShape odd_shape() {
    TinyShape s;
    s.vocab = 37;
    s.hidden = 24;
    s.ffn = 40;
    s.context = 32;
    return s;
}

// A Qwen2 configuration of that shape, every other field at its default (RoPE theta
// 10000, RMSNorm eps 1e-6, untied embeddings, no special token ids).
inline ModelConfig tiny_config(const TinyShape& s = {}) {
    ModelConfig c;
    c.vocab_size = s.vocab;
    c.hidden_size = s.hidden;
    c.num_layers = s.layers;
    c.num_heads = s.heads;
    c.num_kv_heads = s.kv_heads;
    c.head_dim = s.hidden / s.heads;
    c.intermediate_size = s.ffn;
    c.max_position_embeddings = s.context;
    return c;
}

}  // namespace rpt::test
