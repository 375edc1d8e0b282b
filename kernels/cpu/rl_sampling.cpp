// Token sampling, CPU twin: temperature, top-k, top-p (nucleus) and a counter-based
// uniform per row, with the same sort-free algorithm as kernels/cuda/rl_sampling.cu so
// both backends draw the same tokens up to float rounding.
//
// Per row, with z = logits / T and e_v = exp(z_v - max z):
//   1. top-k: the threshold key tau_k = the k-th largest z, found by bisection on the
//      ordered-float key of z (count of tokens >= t is monotone in t; <= 32 halvings).
//      Ties with the k-th value are kept together.
//   2. top-p: the largest tau_p >= tau_k whose kept mass sum_{z >= tau_p} e_v is still
//      >= p * (mass kept by top-k): the smallest high-probability set reaching p.
//   3. inverse CDF in vocabulary order over the kept tokens, with the row's uniform u
//      keyed by (seed, step, sequence id, position): the first token whose running mass
//      exceeds u * (kept mass).
// No sort and no per-row allocation beyond two V-float scratch rows per thread; rows
// are independent, so OpenMP takes them in parallel.
#include <algorithm>
#include <cmath>

#include "kernels/cpu/cpu_common.h"
#include "kernels/cpu/rl_ops_cpu.h"

namespace rpt::cpu {
namespace {

using rl_detail::bisect_threshold;
using rl_detail::ordered_key;


int32_t argmax_row(const float* x, int64_t V) {
    int64_t best = 0;
    for (int64_t v = 1; v < V; ++v)
        if (x[v] > x[best]) best = v;
    return static_cast<int32_t>(best);
}

}  // namespace

void sample_tokens(int32_t* tokens, float* logprob, const float* logits, const int32_t* sequence_ids,
                   const int32_t* positions, int64_t A, int64_t V, const ops::SamplingSettings& s) {
    const bool greedy = s.greedy || s.temperature <= 0.0f;
    const float inv_temperature = greedy ? 1.0f : 1.0f / s.temperature;
#pragma omp parallel
    {
        float* z = greedy ? nullptr : detail::thread_scratch(detail::ScratchSlot::row, 2 * V);
        float* e = greedy ? nullptr : z + V;
#pragma omp for schedule(static)
        for (int64_t a = 0; a < A; ++a) {
            const float* x = logits + a * V;
            if (greedy) {
                tokens[a] = argmax_row(x, V);
                logprob[a] = 0.0f;
                continue;
            }
            float m = -INFINITY;
            for (int64_t v = 0; v < V; ++v) {
                z[v] = x[v] * inv_temperature;
                m = std::max(m, z[v]);
            }
            // Masses in double (as on the GPU): see kernels/cuda/rl_sampling.cu.
            double full_mass = 0.0;
            for (int64_t v = 0; v < V; ++v) {
                e[v] = std::exp(z[v] - m);
                full_mass += e[v];
            }
            // Kept tokens: key(z) >= tau. tau = 0 keeps everything.
            uint32_t tau = 0;
            const uint32_t top = ordered_key(m);
            if (s.top_k > 0 && s.top_k < V) {
                tau = bisect_threshold(0u, top, [&](uint32_t t) {
                    int64_t count = 0;
                    for (int64_t v = 0; v < V; ++v) count += ordered_key(z[v]) >= t;
                    return count >= s.top_k;
                });
            }
            auto mass_above = [&](uint32_t t) {
                double mass = 0.0;
                for (int64_t v = 0; v < V; ++v)
                    if (ordered_key(z[v]) >= t) mass += e[v];
                return mass;
            };
            if (s.top_p < 1.0f) {
                const double target = static_cast<double>(s.top_p) * mass_above(tau);
                tau = bisect_threshold(tau, top, [&](uint32_t t) { return mass_above(t) >= target; });
            }
            const double threshold = static_cast<double>(rl_detail::sample_uniform(s.seed, s.step, sequence_ids[a],
                                                                                   positions[a])) *
                                     mass_above(tau);
            int64_t chosen = -1, last_kept = 0;
            double running = 0.0;
            for (int64_t v = 0; v < V; ++v) {
                if (ordered_key(z[v]) < tau) continue;
                last_kept = v;
                running += e[v];
                if (running > threshold) {
                    chosen = v;
                    break;
                }
            }
            if (chosen < 0) chosen = last_kept;  // rounding left u * mass at the very end
            tokens[a] = static_cast<int32_t>(chosen);
            logprob[a] = static_cast<float>(static_cast<double>(z[chosen] - m) - std::log(full_mass));
        }
    }
}

}  // namespace rpt::cpu
