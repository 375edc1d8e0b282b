// AdamW (PyTorch semantics) and the sum of squares behind the global gradient norm.
//
// adamw_update, per element, with t = step and bias corrections computed once in double:
//   g = grad_scale * grad;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p *= 1 - lr wd;  p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// (the same operation order as torch.optim.AdamW's single-tensor path). With a working
// copy, working = bf16(p) is written in the same pass (round to nearest even), so the
// bf16 weights never need a separate conversion sweep.
//
// sum_squares (and sum) add x^2 (x) in double over fixed chunks of kChunk elements; the
// chunk sums are then added serially in chunk order. Threads only decide who computes which chunk, so
// the result is the same bits for any thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/bf16.h"
#include "kernels/cpu/cpu_ops.h"

namespace rpt::cpu {
namespace {

constexpr int64_t kChunk = 4096;
constexpr int kDoubleLanes = 8;  // one AVX-512 register of doubles

}  // namespace

void adamw_update(float* params, const float* grads, float* m, float* v, int64_t n, const ops::AdamWSettings& s) {
    adamw_update(params, grads, m, v, nullptr, n, s);
}

void adamw_update(float* params, const float* grads, float* m, float* v, uint16_t* working, int64_t n,
                  const ops::AdamWSettings& s) {
    const double t = static_cast<double>(s.step);
    const float step_size = static_cast<float>(s.lr / (1.0 - std::pow(static_cast<double>(s.beta1), t)));
    const float bias_correction2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(static_cast<double>(s.beta2), t)));
    const float decay = 1.0f - s.lr * s.weight_decay;
    const float b1 = s.beta1, b2 = s.beta2, scale = s.grad_scale, eps = s.eps;
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        const float g = scale * grads[i];
        const float mi = b1 * m[i] + (1.0f - b1) * g;
        const float vi = b2 * v[i] + (1.0f - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        const float denom = std::sqrt(vi) / bias_correction2_sqrt + eps;
        const float p = params[i] * decay - step_size * mi / denom;
        params[i] = p;
        if (working) working[i] = f32_to_bf16(p);
    }
}

namespace {

// The fixed-order double sum of f(x[i]): chunks of kChunk summed in kDoubleLanes lanes,
// then the chunk sums in chunk order.
template <typename Term>
double fixed_order_sum(const float* x, int64_t n, Term term) {
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    std::vector<double> partial(static_cast<size_t>(chunks));
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
        const float* p = x + c * kChunk;
        const int64_t len = std::min(kChunk, n - c * kChunk);
        double acc[kDoubleLanes] = {};
        int64_t i = 0;
        for (; i + kDoubleLanes <= len; i += kDoubleLanes)
            for (int l = 0; l < kDoubleLanes; ++l) acc[l] += term(static_cast<double>(p[i + l]));
        for (int l = 0; i + l < len; ++l) acc[l] += term(static_cast<double>(p[i + l]));
        double sum = 0.0;
        for (int l = 0; l < kDoubleLanes; ++l) sum += acc[l];
        partial[c] = sum;
    }
    double total = 0.0;
    for (double p : partial) total += p;
    return total;
}

}  // namespace

double sum_squares(const float* x, int64_t n) {
    return fixed_order_sum(x, n, [](double v) { return v * v; });
}

double sum(const float* x, int64_t n) {
    return fixed_order_sum(x, n, [](double v) { return v; });
}

}  // namespace rpt::cpu
