// Log-softmax over the vocabulary, fused with the quantities RL needs, plus the two
// small per-row scans the pipeline uses (top-k entropy, argmax).
//
// Forward streams each row once in chunks of kChunk logits with an online softmax:
// it keeps the running max m, s = sum exp(z - m) and t = sum exp(z - m) z, rescaling
// s and t by exp(m_old - m_new) when a chunk raises the max. Then
//   lse = m + log s,  logprob = z[target] - lse,  entropy = lse - t / s
// (entropy = -sum p log p = lse - E_p[z]). No probability row is ever stored, which is
// what makes a 150k-token vocabulary affordable. s and t are summed in double.
// Backward recomputes p = exp(z - lse) and overwrites the logits with
//   dlogits = dlogprob * inv_temperature * (onehot(target) - p).
// Threads over rows throughout; each row is one thread's, in a fixed order.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/cpu_ops.h"

namespace rpt::cpu {
namespace {

constexpr int64_t kChunk = 2048;       // logits per online-softmax step
constexpr int kInsertionTopkMax = 64;  // above this k, select with nth_element instead

}  // namespace

void logsoftmax_forward(float* logprob, float* entropy, float* lse, const float* logits, const int32_t* targets,
                        int64_t N, int64_t V, float inv_temperature) {
    constexpr float kNegInf = -std::numeric_limits<float>::infinity();
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
        const float* z = logits + n * V;
        float m = kNegInf;
        double s = 0.0, t = 0.0;
        for (int64_t c0 = 0; c0 < V; c0 += kChunk) {
            const int64_t len = std::min(kChunk, V - c0);
            float chunk_max = kNegInf;
            for (int64_t v = 0; v < len; ++v) chunk_max = std::max(chunk_max, z[c0 + v] * inv_temperature);
            if (chunk_max > m) {
                const double rescale = std::exp(static_cast<double>(m) - chunk_max);  // 0 on the first chunk
                s *= rescale;
                t *= rescale;
                m = chunk_max;
            }
            for (int64_t v = 0; v < len; ++v) {
                const float zv = z[c0 + v] * inv_temperature;
                const double e = std::exp(zv - m);
                s += e;
                t += e * zv;
            }
        }
        const double row_lse = m + std::log(s);
        lse[n] = static_cast<float>(row_lse);
        if (entropy) entropy[n] = static_cast<float>(row_lse - t / s);
        const int32_t target = targets[n];
        logprob[n] = target < 0 ? 0.0f : static_cast<float>(z[target] * inv_temperature - row_lse);
    }
}

void logsoftmax_backward(float* logits, const float* dlogprob, const float* lse, const int32_t* targets, int64_t N,
                         int64_t V, float inv_temperature) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
        float* z = logits + n * V;
        const int32_t target = targets[n];
        if (target < 0 || dlogprob[n] == 0.0f) {
            std::fill_n(z, V, 0.0f);
            continue;
        }
        const float g = dlogprob[n] * inv_temperature, row_lse = lse[n];
        for (int64_t v = 0; v < V; ++v) z[v] = -g * std::exp(z[v] * inv_temperature - row_lse);
        z[target] += g;
    }
}

void topk_entropy(float* entropy, const float* logits, int64_t N, int64_t V, int k) {
#pragma omp parallel
    {
        std::vector<float> top(static_cast<size_t>(k <= kInsertionTopkMax ? k : V));
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; ++n) {
            const float* z = logits + n * V;
            if (k <= kInsertionTopkMax) {
                // Keep the k largest in descending order; most logits fail the first compare.
                int count = 0;
                for (int64_t v = 0; v < V; ++v) {
                    const float x = z[v];
                    if (count == k && x <= top[k - 1]) continue;
                    int pos = count < k ? count++ : k - 1;
                    while (pos > 0 && top[pos - 1] < x) {
                        top[pos] = top[pos - 1];
                        --pos;
                    }
                    top[pos] = x;
                }
            } else {
                std::copy_n(z, V, top.begin());
                std::nth_element(top.begin(), top.begin() + (k - 1), top.end(), std::greater<float>());
            }
            const double zmax = *std::max_element(top.begin(), top.begin() + k);
            double s = 0.0, t = 0.0;
            for (int i = 0; i < k; ++i) {
                const double d = top[i] - zmax;
                const double e = std::exp(d);
                s += e;
                t += e * d;
            }
            entropy[n] = static_cast<float>(std::log(s) - t / s);
        }
    }
}

void argmax(int32_t* out, const float* logits, int64_t N, int64_t V) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
        const float* z = logits + n * V;
        int64_t best = 0;
        for (int64_t v = 1; v < V; ++v)
            if (z[v] > z[best]) best = v;  // strict: the lowest index wins ties
        out[n] = static_cast<int32_t>(best);
    }
}

}  // namespace rpt::cpu
