// Token sampling on the GPU: temperature, top-k, top-p (nucleus) and a counter-based
// uniform per row, by the same sort-free algorithm as the CPU twin
// (kernels/cpu/rl_sampling.cpp), so both backends draw the same tokens up to float
// rounding.
//
// One block per row of V logits, z = logits / T, e_v = exp(z_v - max z):
//   1. max, then the full softmax mass (for the returned log-prob);
//   2. top-k: bisection on the ordered-float key t of the threshold, each step a block
//      count of tokens with key(z) >= t (at most 32 steps; exact; ties kept together);
//   3. top-p: bisection on t >= tau_k for the largest threshold whose kept mass is still
//      >= p * (top-k mass);
//   4. inverse CDF in vocabulary order: tiles of blockDim tokens, a block prefix scan of
//      the kept e_v carried across tiles, and the first token whose running mass exceeds
//      u * (kept mass) wins; the scan stops at the tile where that happens.
// Why it is fast: no sort, no [A x V] scratch, every pass is a coalesced read of one row
// (L2-resident after the first), and the common RPT setting (top-p = 1, no top-k) costs
// three passes. Ties between threads are resolved by the lowest vocabulary index, so
// the draw is deterministic whatever the scheduling.
#include <cfloat>
#include <climits>
#include <cstdint>
#include <stdexcept>

#include "kernels/cpu/rl_ops_cpu.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/rl_ops_cuda.h"

namespace rpt::cuda {
namespace {

using rl_detail::bisect_threshold;
using rl_detail::ordered_key;

constexpr int kSampleThreads = 512;
constexpr int kSampleWarps = kSampleThreads / kWarpSize;

struct SampleArgs {
    int32_t* tokens;
    float* logprob;
    const float* logits;
    const int32_t* sequence_ids;
    const int32_t* positions;
    int64_t V;
    float inv_temperature;
    float top_p;
    int top_k;
    uint64_t seed, step;
};

// Lowest index among the block's `candidate` (INT64_MAX for none); every thread gets it.
__device__ int64_t block_min_index(int64_t candidate, int64_t* scratch) {
    if (threadIdx.x == 0) *scratch = INT64_MAX;
    __syncthreads();
    if (candidate != INT64_MAX) atomicMin(reinterpret_cast<unsigned long long*>(scratch),
                                          static_cast<unsigned long long>(candidate));
    __syncthreads();
    const int64_t result = *scratch;
    __syncthreads();
    return result;
}

// Inclusive prefix sum over the block in thread order; `total` gets the block's sum.
template <typename T>
__device__ T block_inclusive_scan(T x, T* warp_totals, T& total) {
    const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
#pragma unroll
    for (int offset = 1; offset < kWarpSize; offset *= 2) {
        const T y = __shfl_up_sync(kFullMask, x, offset);
        if (lane >= offset) x += y;
    }
    if (lane == kWarpSize - 1) warp_totals[warp] = x;
    __syncthreads();
    if (warp == 0) {
        T t = lane < kSampleWarps ? warp_totals[lane] : T(0);
#pragma unroll
        for (int offset = 1; offset < kWarpSize; offset *= 2) {
            const T y = __shfl_up_sync(kFullMask, t, offset);
            if (lane >= offset) t += y;
        }
        if (lane < kSampleWarps) warp_totals[lane] = t;
    }
    __syncthreads();
    if (warp > 0) x += warp_totals[warp - 1];
    total = warp_totals[kSampleWarps - 1];
    __syncthreads();
    return x;
}


// Greedy: argmax of the raw logits, lowest index on ties; log-prob 0 by convention.
__global__ void __launch_bounds__(kSampleThreads) greedy_kernel(SampleArgs p) {
    __shared__ float max_scratch[kWarpSize];
    __shared__ int64_t index_scratch;
    const float* x = p.logits + blockIdx.x * p.V;
    float best = -FLT_MAX;
    int64_t best_index = INT64_MAX;
    for (int64_t v = threadIdx.x; v < p.V; v += blockDim.x)
        if (x[v] > best || best_index == INT64_MAX) best = x[v], best_index = v;
    const float top = block_max(best, max_scratch);
    const int64_t chosen = block_min_index(best_index != INT64_MAX && best == top ? best_index : INT64_MAX,
                                           &index_scratch);
    if (threadIdx.x == 0) {
        p.tokens[blockIdx.x] = static_cast<int32_t>(chosen == INT64_MAX ? 0 : chosen);
        p.logprob[blockIdx.x] = 0.0f;
    }
}

__global__ void __launch_bounds__(kSampleThreads) sample_kernel(SampleArgs p) {
    __shared__ float scratch[kWarpSize];
    __shared__ double mass_scratch[kWarpSize];
    __shared__ int count_scratch[kWarpSize];
    __shared__ int64_t index_scratch;
    const int64_t row = blockIdx.x, V = p.V;
    const float* x = p.logits + row * V;
    auto z_at = [&](int64_t v) { return x[v] * p.inv_temperature; };

    float m = -FLT_MAX;
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) m = fmaxf(m, z_at(v));
    m = block_max(m, scratch);
    // Masses accumulate in double, as on the CPU: a top-p threshold or an inverse-CDF
    // crossing then differs between the backends only by the ~1 ulp of each expf, far
    // below one token's share of the mass even for a 150k vocabulary.
    double full = 0.0;
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) full += expf(z_at(v) - m);
    full = block_sum(full, mass_scratch);

    auto mass_above = [&](uint32_t t) {
        double mass = 0.0;
        for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {
            const float z = z_at(v);
            if (ordered_key(z) >= t) mass += expf(z - m);
        }
        return block_sum(mass, mass_scratch);
    };
    uint32_t tau = 0;  // keeps everything
    const uint32_t top = ordered_key(m);
    if (p.top_k > 0 && p.top_k < V) {
        tau = bisect_threshold(0u, top, [&](uint32_t t) {
            int count = 0;
            for (int64_t v = threadIdx.x; v < V; v += blockDim.x) count += ordered_key(z_at(v)) >= t;
            return block_sum(count, count_scratch) >= p.top_k;
        });
    }
    if (p.top_p < 1.0f) {
        const double target = static_cast<double>(p.top_p) * mass_above(tau);
        tau = bisect_threshold(tau, top, [&](uint32_t t) { return mass_above(t) >= target; });
    }
    // (tau == 0 keeps everything: the kept mass is the full mass, summed the same way.)
    const double threshold =
        static_cast<double>(rl_detail::sample_uniform(p.seed, p.step, p.sequence_ids[row], p.positions[row])) *
        (tau == 0 ? full : mass_above(tau));

    // Inverse CDF: the first kept token (e > 0) whose running mass exceeds the threshold.
    double carry = 0.0;
    int64_t chosen = INT64_MAX, last_kept = -1;
    for (int64_t base = 0; base < V; base += blockDim.x) {
        const int64_t v = base + threadIdx.x;
        double e = 0.0;
        if (v < V) {
            const float z = z_at(v);
            if (ordered_key(z) >= tau) {
                e = expf(z - m);
                last_kept = v;
            }
        }
        double tile_total;
        const double running = carry + block_inclusive_scan(e, mass_scratch, tile_total);
        chosen = block_min_index(e > 0.0 && running > threshold ? v : INT64_MAX, &index_scratch);
        if (chosen != INT64_MAX) break;  // block-uniform
        carry += tile_total;
    }
    if (chosen == INT64_MAX) {
        // Rounding left the threshold at the very end: take the last kept token.
        // (The largest index, as the smallest distance from the end of the row.)
        const int64_t from_end = block_min_index(last_kept >= 0 ? V - 1 - last_kept : INT64_MAX, &index_scratch);
        chosen = from_end == INT64_MAX ? 0 : V - 1 - from_end;
    }
    if (threadIdx.x == 0) {
        p.tokens[row] = static_cast<int32_t>(chosen);
        p.logprob[row] = static_cast<float>(static_cast<double>(z_at(chosen) - m) - log(full));
    }
}

}  // namespace

void sample_tokens(void* stream, int32_t* tokens, float* logprob, const float* logits, const int32_t* sequence_ids,
                   const int32_t* positions, int64_t A, int64_t V, const ops::SamplingSettings& s) {
    const bool greedy = s.greedy || s.temperature <= 0.0f;
    SampleArgs p{tokens,   logprob,  logits,   sequence_ids, positions, V, greedy ? 1.0f : 1.0f / s.temperature,
                 s.top_p, s.top_k, s.seed, s.step};
    if (A > INT32_MAX) throw std::invalid_argument("sample_tokens: too many rows");
    if (greedy) greedy_kernel<<<static_cast<unsigned>(A), kSampleThreads, 0, as_stream(stream)>>>(p);
    else sample_kernel<<<static_cast<unsigned>(A), kSampleThreads, 0, as_stream(stream)>>>(p);
    RPT_CUDA_LAUNCH_CHECK();
}

}  // namespace rpt::cuda
