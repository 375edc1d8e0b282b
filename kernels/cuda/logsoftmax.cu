// Row-wise ops over the vocabulary: fused log-softmax (log-prob of the target, log-sum-exp,
// entropy) and its in-place backward, top-k entropy, argmax.
//
// All of them give one block to one row of V logits and stream it once (twice for
// backward's read-modify-write): the work is memory-bound, so the goal is a single
// coalesced pass with all statistics kept in registers. No [N x V] probability tensor
// is ever written.
#include <cstdint>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_ops.h"

namespace rpt::cuda {

namespace {

constexpr int kRowThreads = 256;  // 8 warps: enough loads in flight per row on any GPU
constexpr int kTopkThreads = 128;
constexpr int kMaxTopK = 32;

// ---- online softmax statistics ---------------------------------------------------------
// Over the elements z seen so far, with running maximum m:
//   s = sum exp(z - m),  t = sum exp(z - m) * (z - m).
// Then lse = m + log s and entropy = -sum p log p = log s - t / s. Keeping t relative to
// the running max (rather than sum p*z) avoids cancelling two large numbers when the
// distribution is peaked. Merging two states rescales both to the larger max.
struct SoftmaxStats {
    float m = -INFINITY, s = 0.0f, t = 0.0f;

    __device__ void add(float z) {
        if (z == -INFINITY) return;  // masked logit: probability 0, contributes nothing
        if (z > m) {
            if (m != -INFINITY) {
                const float scale = expf(m - z);
                t = scale * (t + (m - z) * s);
                s *= scale;
            }
            m = z;
        }
        const float e = expf(z - m);
        s += e;
        t += e * (z - m);
    }

    __device__ void merge(const SoftmaxStats& o) {
        if (o.m == -INFINITY) return;
        if (m == -INFINITY) {
            *this = o;
            return;
        }
        const float mm = fmaxf(m, o.m);
        const float a = expf(m - mm), b = expf(o.m - mm);
        t = a * (t + (m - mm) * s) + b * (o.t + (o.m - mm) * o.s);
        s = a * s + b * o.s;
        m = mm;
    }
};

__device__ SoftmaxStats warp_merge(SoftmaxStats st) {
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
        SoftmaxStats o;
        o.m = __shfl_xor_sync(kFullMask, st.m, offset);
        o.s = __shfl_xor_sync(kFullMask, st.s, offset);
        o.t = __shfl_xor_sync(kFullMask, st.t, offset);
        st.merge(o);
    }
    return st;
}

// Merges the statistics of the whole block; every thread gets the result.
__device__ SoftmaxStats block_merge(SoftmaxStats st) {
    __shared__ SoftmaxStats per_warp[kRowThreads / kWarpSize];
    const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
    st = warp_merge(st);
    if (lane == 0) per_warp[warp] = st;
    __syncthreads();
    SoftmaxStats total;
    if (lane < kRowThreads / kWarpSize) total = per_warp[lane];
    total = warp_merge(total);
    __syncthreads();
    return total;
}

// Visits z = row[v] * inv_temperature for every v of the row this thread owns (strided by
// the block), with 128-bit loads when the row allows.
template <typename Visit>
__device__ __forceinline__ void for_each_scaled(const float* row, int64_t V, float inv_temperature, bool vectorized,
                                                Visit&& visit) {
    if (vectorized) {
        const float4* row4 = reinterpret_cast<const float4*>(row);
        for (int64_t p = threadIdx.x; p < V / 4; p += blockDim.x) {
            const float4 x = row4[p];
            visit(x.x * inv_temperature);
            visit(x.y * inv_temperature);
            visit(x.z * inv_temperature);
            visit(x.w * inv_temperature);
        }
    } else {
        for (int64_t v = threadIdx.x; v < V; v += blockDim.x) visit(row[v] * inv_temperature);
    }
}

bool rows_vectorizable(const float* logits, int64_t V) { return V % 4 == 0 && is_aligned16(logits); }

// One block per row: a single pass accumulates SoftmaxStats per thread, one block merge,
// then thread 0 writes lse, logprob (reading the one target logit) and entropy.
__global__ void __launch_bounds__(kRowThreads)
    logsoftmax_forward_kernel(float* logprob, float* entropy, float* lse, const float* logits, const int32_t* targets,
                              int64_t V, float inv_temperature, bool vectorized) {
    const int64_t row = blockIdx.x;
    const float* z = logits + row * V;
    SoftmaxStats st;
    for_each_scaled(z, V, inv_temperature, vectorized, [&](float x) { st.add(x); });
    st = block_merge(st);
    if (threadIdx.x != 0) return;
    const float log_s = logf(st.s);
    const float row_lse = st.m + log_s;
    lse[row] = row_lse;
    const int32_t target = targets[row];
    logprob[row] = (target >= 0 && target < V) ? z[target] * inv_temperature - row_lse : 0.0f;
    if (entropy) entropy[row] = log_s - st.t / st.s;
}

// dlogits[v] = dlogprob * inv_temperature * (onehot(target)_v - exp(z_v - lse)), in place.
// One block per row; rows that carry no gradient are zeroed without reading them.
__global__ void __launch_bounds__(kRowThreads)
    logsoftmax_backward_kernel(float* logits, const float* dlogprob, const float* lse, const int32_t* targets,
                               int64_t V, float inv_temperature, bool vectorized) {
    const int64_t row = blockIdx.x;
    float* z = logits + row * V;
    const int32_t target = targets[row];
    const float g = dlogprob[row];
    const bool active = target >= 0 && target < V && g != 0.0f;
    const float coef = g * inv_temperature;
    const float row_lse = lse[row];
    auto grad = [&](float x, int64_t v) {
        if (!active) return 0.0f;
        const float p = expf(x * inv_temperature - row_lse);
        return coef * ((v == target ? 1.0f : 0.0f) - p);
    };
    if (vectorized) {
        float4* z4 = reinterpret_cast<float4*>(z);
        for (int64_t p = threadIdx.x; p < V / 4; p += blockDim.x) {
            float4 x = active ? z4[p] : make_float4(0.f, 0.f, 0.f, 0.f);
            const int64_t v = 4 * p;
            x.x = grad(x.x, v);
            x.y = grad(x.y, v + 1);
            x.z = grad(x.z, v + 2);
            x.w = grad(x.w, v + 3);
            z4[p] = x;
        }
    } else {
        for (int64_t v = threadIdx.x; v < V; v += blockDim.x) z[v] = grad(active ? z[v] : 0.0f, v);
    }
}

// ---- argmax ------------------------------------------------------------------------------

// (value, index) with "larger value wins, lower index breaks ties": the first maximum.
struct ArgMax {
    float value;
    int64_t index;
    __device__ void merge(float v, int64_t i) {
        if (v > value || (v == value && i < index)) {
            value = v;
            index = i;
        }
    }
};

template <int kThreads>
__device__ ArgMax block_argmax(ArgMax a) {
    __shared__ ArgMax per_warp[kThreads / kWarpSize];
    const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
        a.merge(__shfl_xor_sync(kFullMask, a.value, offset), __shfl_xor_sync(kFullMask, a.index, offset));
    if (lane == 0) per_warp[warp] = a;
    __syncthreads();
    ArgMax total{-INFINITY, INT64_MAX};
    if (lane < kThreads / kWarpSize) total = per_warp[lane];
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
        total.merge(__shfl_xor_sync(kFullMask, total.value, offset), __shfl_xor_sync(kFullMask, total.index, offset));
    __syncthreads();
    return total;
}

// One block per row; each thread keeps its first maximum over a strided slice (indices
// increase, so "strictly greater" keeps the first), then a block reduction.
__global__ void __launch_bounds__(kRowThreads) argmax_kernel(int32_t* out, const float* logits, int64_t V) {
    const int64_t row = blockIdx.x;
    const float* z = logits + row * V;
    // Start from a real element so an all -inf row still answers index 0, like the CPU.
    ArgMax best{-INFINITY, INT64_MAX};
    if (threadIdx.x < V) best = {z[threadIdx.x], static_cast<int64_t>(threadIdx.x)};
    for (int64_t v = threadIdx.x + blockDim.x; v < V; v += blockDim.x)
        if (z[v] > best.value) best = {z[v], v};
    best = block_argmax<kRowThreads>(best);
    if (threadIdx.x == 0) out[row] = static_cast<int32_t>(best.index);
}

// ---- top-k entropy -----------------------------------------------------------------------

// One block per row. Phase 1: each thread keeps the k largest logits of its strided
// slice, sorted descending, in its own column of shared memory (column-major
// [slot][thread], so threads never share a bank); a register copy of the k-th value
// rejects most elements with one compare, so the pass runs at memory speed. Phase 2:
// k rounds of a block argmax over the threads' current heads merge the lists into the
// row's top k. Thread 0 then computes the entropy of the softmax over those k values.
// Ties among equal logits may pick different indices than the CPU, but the multiset of
// values, and so the entropy, is the same.
__global__ void __launch_bounds__(kTopkThreads)
    topk_entropy_kernel(float* entropy, const float* logits, int64_t V, int k) {
    __shared__ float lists[kMaxTopK][kTopkThreads];
    __shared__ float top[kMaxTopK];
    const int tid = threadIdx.x;
    const float* z = logits + int64_t(blockIdx.x) * V;

    for (int j = 0; j < k; ++j) lists[j][tid] = -INFINITY;
    float kth = -INFINITY;  // == lists[k - 1][tid]
    for (int64_t v = tid; v < V; v += kTopkThreads) {
        const float x = z[v];
        if (!(x > kth)) continue;
        int j = k - 1;
        while (j > 0 && lists[j - 1][tid] < x) {
            lists[j][tid] = lists[j - 1][tid];
            --j;
        }
        lists[j][tid] = x;
        kth = lists[k - 1][tid];
    }

    int head = 0;  // this thread's next unmerged entry
    for (int round = 0; round < k; ++round) {
        const float mine = head < k ? lists[head][tid] : -INFINITY;
        const ArgMax winner = block_argmax<kTopkThreads>({mine, tid});
        if (winner.index == tid) {
            top[round] = mine;
            ++head;
        }
    }
    __syncthreads();

    if (tid != 0) return;
    const float m = top[0];
    if (m == -INFINITY) {
        entropy[blockIdx.x] = 0.0f;
        return;
    }
    float s = 0.0f;
    for (int j = 0; j < k; ++j) s += expf(top[j] - m);
    float h = logf(s);
    for (int j = 0; j < k; ++j) {
        const float e = expf(top[j] - m);
        if (e > 0.0f) h -= (e / s) * (top[j] - m);
    }
    entropy[blockIdx.x] = h;
}

}  // namespace

void logsoftmax_forward(void* stream, float* logprob, float* entropy, float* lse, const float* logits,
                        const int32_t* targets, int64_t N, int64_t V, float inv_temperature) {
    if (N <= 0 || V <= 0) return;
    logsoftmax_forward_kernel<<<static_cast<unsigned>(N), kRowThreads, 0, as_stream(stream)>>>(
        logprob, entropy, lse, logits, targets, V, inv_temperature, rows_vectorizable(logits, V));
    RPT_CUDA_LAUNCH_CHECK();
}

void logsoftmax_backward(void* stream, float* logits, const float* dlogprob, const float* lse, const int32_t* targets,
                         int64_t N, int64_t V, float inv_temperature) {
    if (N <= 0 || V <= 0) return;
    logsoftmax_backward_kernel<<<static_cast<unsigned>(N), kRowThreads, 0, as_stream(stream)>>>(
        logits, dlogprob, lse, targets, V, inv_temperature, rows_vectorizable(logits, V));
    RPT_CUDA_LAUNCH_CHECK();
}

void topk_entropy(void* stream, float* entropy, const float* logits, int64_t N, int64_t V, int k) {
    if (N <= 0 || V <= 0) return;
    if (k < 1 || k > kMaxTopK || k > V)
        throw std::invalid_argument("topk_entropy (CUDA): k = " + std::to_string(k) + " must be in [1, " +
                                    std::to_string(kMaxTopK) + "] and at most V");
    topk_entropy_kernel<<<static_cast<unsigned>(N), kTopkThreads, 0, as_stream(stream)>>>(entropy, logits, V, k);
    RPT_CUDA_LAUNCH_CHECK();
}

void argmax(void* stream, int32_t* out, const float* logits, int64_t N, int64_t V) {
    if (N <= 0 || V <= 0) return;
    argmax_kernel<<<static_cast<unsigned>(N), kRowThreads, 0, as_stream(stream)>>>(out, logits, V);
    RPT_CUDA_LAUNCH_CHECK();
}

}  // namespace rpt::cuda
