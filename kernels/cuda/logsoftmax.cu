// Row-wise ops over the vocabulary: fused log-softmax (log-prob of the target, log-sum-exp,
// entropy) and its in-place backward, top-k entropy, argmax.
//
// All of them give one block to one row of V logits and stream it once (twice for
// backward's read-modify-write): the work is memory-bound, so the goal is a single
// coalesced pass with all statistics kept in registers. No [N x V] probability tensor
// is ever written.
//
// The logits may be fp32 or bf16 (the bf16 path's LM-head chunks): every kernel is
// templated on the logits' storage type (storage.cuh), reads 16 bytes per access (4
// floats or 8 bf16) when the rows allow, and computes everything in fp32: log-probs,
// entropy and lse are fp32 outputs whatever the logits' type; the backward's gradient is
// computed in fp32 and rounded once into the logits it overwrites.
#include <cstdint>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_mixed_ops.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/mixed_checks.cuh"
#include "kernels/cuda/storage.cuh"

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
template <typename T, typename Visit>
__device__ __forceinline__ void for_each_scaled(const T* row, int64_t V, float inv_temperature, bool vectorized,
                                                Visit&& visit) {
    constexpr int W = kVecWidth<T>;
    if (vectorized) {
        for (int64_t p = threadIdx.x; p < V / W; p += blockDim.x) {
            float x[W];
            load_chunk<W>(row, p, x);
#pragma unroll
            for (int l = 0; l < W; ++l) visit(x[l] * inv_temperature);
        }
    } else {
        for (int64_t v = threadIdx.x; v < V; v += blockDim.x) visit(to_f32(row[v]) * inv_temperature);
    }
}

// Every row starts 16-byte aligned and holds whole chunks.
template <typename T>
bool rows_vectorizable(const T* logits, int64_t V) {
    return V % kVecWidth<T> == 0 && chunk_aligned<kVecWidth<T>>(logits);
}

// One block per row: a single pass accumulates SoftmaxStats per thread, one block merge,
// then thread 0 writes lse, logprob (reading the one target logit) and entropy.
template <typename T>
__global__ void __launch_bounds__(kRowThreads)
    logsoftmax_forward_kernel(float* logprob, float* entropy, float* lse, const T* logits, const int32_t* targets,
                              int64_t V, float inv_temperature, bool vectorized) {
    const int64_t row = blockIdx.x;
    const T* z = logits + row * V;
    SoftmaxStats st;
    for_each_scaled(z, V, inv_temperature, vectorized, [&](float x) { st.add(x); });
    st = block_merge(st);
    if (threadIdx.x != 0) return;
    const float log_s = logf(st.s);
    const float row_lse = st.m + log_s;
    lse[row] = row_lse;
    const int32_t target = targets[row];
    logprob[row] = (target >= 0 && target < V) ? to_f32(z[target]) * inv_temperature - row_lse : 0.0f;
    if (entropy) entropy[row] = log_s - st.t / st.s;
}

// dlogits[v] = dlogprob * inv_temperature * (onehot(target)_v - exp(z_v - lse)), in place.
// One block per row; rows that carry no gradient are zeroed without reading them.
template <typename T>
__global__ void __launch_bounds__(kRowThreads)
    logsoftmax_backward_kernel(T* logits, const float* dlogprob, const float* lse, const int32_t* targets, int64_t V,
                               float inv_temperature, bool vectorized) {
    constexpr int W = kVecWidth<T>;
    const int64_t row = blockIdx.x;
    T* z = logits + row * V;
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
        for (int64_t p = threadIdx.x; p < V / W; p += blockDim.x) {
            float x[W] = {};
            if (active) load_chunk<W>(z, p, x);
#pragma unroll
            for (int l = 0; l < W; ++l) x[l] = grad(x[l], W * p + l);
            store_chunk<W>(z, p, x);
        }
    } else {
        for (int64_t v = threadIdx.x; v < V; v += blockDim.x)
            z[v] = from_f32<T>(grad(active ? to_f32(z[v]) : 0.0f, v));
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
template <typename T>
__global__ void __launch_bounds__(kRowThreads) argmax_kernel(int32_t* out, const T* logits, int64_t V) {
    const int64_t row = blockIdx.x;
    const T* z = logits + row * V;
    // Start from a real element so an all -inf row still answers index 0, like the CPU.
    ArgMax best{-INFINITY, INT64_MAX};
    if (threadIdx.x < V) best = {to_f32(z[threadIdx.x]), static_cast<int64_t>(threadIdx.x)};
    for (int64_t v = threadIdx.x + blockDim.x; v < V; v += blockDim.x) {
        const float x = to_f32(z[v]);
        if (x > best.value) best = {x, v};
    }
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
template <typename T>
__global__ void __launch_bounds__(kTopkThreads)
    topk_entropy_kernel(float* entropy, const T* logits, int64_t V, int k) {
    __shared__ float lists[kMaxTopK][kTopkThreads];
    __shared__ float top[kMaxTopK];
    const int tid = threadIdx.x;
    const T* z = logits + int64_t(blockIdx.x) * V;

    for (int j = 0; j < k; ++j) lists[j][tid] = -INFINITY;
    float kth = -INFINITY;  // == lists[k - 1][tid]
    for (int64_t v = tid; v < V; v += kTopkThreads) {
        const float x = to_f32(z[v]);
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

template <typename T>
void launch_logsoftmax_forward(cudaStream_t s, float* logprob, float* entropy, float* lse, const T* logits,
                               const int32_t* targets, int64_t N, int64_t V, float inv_temperature) {
    if (N <= 0 || V <= 0) return;
    logsoftmax_forward_kernel<<<static_cast<unsigned>(N), kRowThreads, 0, s>>>(
        logprob, entropy, lse, logits, targets, V, inv_temperature, rows_vectorizable(logits, V));
    RPT_CUDA_LAUNCH_CHECK();
}

template <typename T>
void launch_logsoftmax_backward(cudaStream_t s, T* logits, const float* dlogprob, const float* lse,
                                const int32_t* targets, int64_t N, int64_t V, float inv_temperature) {
    if (N <= 0 || V <= 0) return;
    logsoftmax_backward_kernel<<<static_cast<unsigned>(N), kRowThreads, 0, s>>>(
        logits, dlogprob, lse, targets, V, inv_temperature, rows_vectorizable(logits, V));
    RPT_CUDA_LAUNCH_CHECK();
}

template <typename T>
void launch_topk_entropy(cudaStream_t s, float* entropy, const T* logits, int64_t N, int64_t V, int k) {
    if (N <= 0 || V <= 0) return;
    if (k < 1 || k > kMaxTopK || k > V)
        throw std::invalid_argument("topk_entropy (CUDA): k = " + std::to_string(k) + " must be in [1, " +
                                    std::to_string(kMaxTopK) + "] and at most V");
    topk_entropy_kernel<<<static_cast<unsigned>(N), kTopkThreads, 0, s>>>(entropy, logits, V, k);
    RPT_CUDA_LAUNCH_CHECK();
}

template <typename T>
void launch_argmax(cudaStream_t s, int32_t* out, const T* logits, int64_t N, int64_t V) {
    if (N <= 0 || V <= 0) return;
    argmax_kernel<<<static_cast<unsigned>(N), kRowThreads, 0, s>>>(out, logits, V);
    RPT_CUDA_LAUNCH_CHECK();
}

}  // namespace

void logsoftmax_forward(void* stream, float* logprob, float* entropy, float* lse, const float* logits,
                        const int32_t* targets, int64_t N, int64_t V, float inv_temperature) {
    launch_logsoftmax_forward(as_stream(stream), logprob, entropy, lse, logits, targets, N, V, inv_temperature);
}

void logsoftmax_backward(void* stream, float* logits, const float* dlogprob, const float* lse, const int32_t* targets,
                         int64_t N, int64_t V, float inv_temperature) {
    launch_logsoftmax_backward(as_stream(stream), logits, dlogprob, lse, targets, N, V, inv_temperature);
}

void topk_entropy(void* stream, float* entropy, const float* logits, int64_t N, int64_t V, int k) {
    launch_topk_entropy(as_stream(stream), entropy, logits, N, V, k);
}

void argmax(void* stream, int32_t* out, const float* logits, int64_t N, int64_t V) {
    launch_argmax(as_stream(stream), out, logits, N, V);
}

namespace mixed {

// logits (N, V) bf16 -> logprob, entropy (optional), lse (N) f32
void logsoftmax_forward(void* stream, Tensor logprob, Tensor entropy, Tensor lse, Tensor logits, Tensor targets,
                        float inv_temperature) {
    const char* op = "logsoftmax_forward";
    require_dtype(op, logits, DType::bf16, "logits");
    require_dtype(op, logprob, DType::f32, "logprob");
    require_dtype(op, lse, DType::f32, "lse");
    if (!entropy.empty()) require_dtype(op, entropy, DType::f32, "entropy");
    const int64_t V = logits.dim(-1), N = V > 0 ? logits.numel() / V : 0;
    launch_logsoftmax_forward(as_stream(stream), as_f32(logprob), opt_f32(entropy), as_f32(lse), as_bf16(logits),
                              as_i32(targets), N, V, inv_temperature);
}

// logits (N, V) bf16 overwritten with dL/dlogits; dlogprob, lse (N) f32
void logsoftmax_backward(void* stream, Tensor logits, Tensor dlogprob, Tensor lse, Tensor targets,
                         float inv_temperature) {
    const char* op = "logsoftmax_backward";
    require_dtype(op, logits, DType::bf16, "logits");
    require_dtype(op, dlogprob, DType::f32, "dlogprob");
    require_dtype(op, lse, DType::f32, "lse");
    const int64_t V = logits.dim(-1), N = V > 0 ? logits.numel() / V : 0;
    launch_logsoftmax_backward(as_stream(stream), as_bf16(logits), as_f32(dlogprob), as_f32(lse), as_i32(targets), N,
                               V, inv_temperature);
}

void topk_entropy(void* stream, Tensor entropy, Tensor logits, int k) {
    require_dtype("topk_entropy", logits, DType::bf16, "logits");
    require_dtype("topk_entropy", entropy, DType::f32, "entropy");
    const int64_t V = logits.dim(-1), N = V > 0 ? logits.numel() / V : 0;
    launch_topk_entropy(as_stream(stream), as_f32(entropy), as_bf16(logits), N, V, k);
}

void argmax(void* stream, Tensor out, Tensor logits) {
    require_dtype("argmax", logits, DType::bf16, "logits");
    require_dtype("argmax", out, DType::i32, "out");
    const int64_t V = logits.dim(-1), N = V > 0 ? logits.numel() / V : 0;
    launch_argmax(as_stream(stream), static_cast<int32_t*>(out.data), as_bf16(logits), N, V);
}

}  // namespace mixed

}  // namespace rpt::cuda
