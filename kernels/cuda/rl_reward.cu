// The prefix-matching reward on the GPU (DESIGN §1.3, paper eq. 3); the CPU twin is
// kernels/cpu/rl_reward.cpp and both use the marker/brace/match rules of
// kernels/cpu/rl_ops_cpu.h.
//
// One block per slot:
//   1. detokenise into shared memory (at most max_response_bytes; responses longer than
//      kMaxSharedResponseBytes go to the slot's row of the global scratch instead, which
//      the block's __syncthreads makes visible just the same): tiles of blockDim
//      tokens, a block prefix scan of their byte lengths gives each thread where its
//      token's bytes go, carried across tiles; stops once the buffer is full;
//   2. find the markers: every thread tests the start positions it owns, and a block
//      max (last think_close, last answer_open) or min (first answer_close) of the
//      matching positions picks the occurrence; a \boxed{ answer's closing brace is
//      found by one thread walking the brace depth (a short, inherently serial scan);
//   3. compare the prediction with the truth bytes and look its length up among the
//      truth's token boundaries, both in parallel with __syncthreads_or (the first-token
//      kinds compare the true next token's bytes only);
//   4. dense kinds, wrong prediction: find the response token holding the prediction's
//      first byte with the same tiled scan as step 1, and read its sampler log-prob.
// conditional_dense then runs a second, tiny kernel: one thread per group zeroes the
// groups with no right response.
// Why it is fast: the response is read from global memory once, and all searching runs
// out of shared memory; slots are independent blocks.
#include <climits>
#include <cstdint>
#include <stdexcept>

#include "kernels/cpu/rl_ops_cpu.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/rl_ops_cuda.h"

namespace rpt::cuda {
namespace {

using rl_detail::marker_at;
using rl_detail::RewardMarkers;

constexpr int kRewardThreads = 256;
constexpr int kRewardWarps = kRewardThreads / kWarpSize;
// Dynamic shared memory beyond this needs an explicit opt-in on the kernel.
constexpr int kDefaultSharedBytes = 48 * 1024;

using rl_detail::RewardArgs;

// Inclusive prefix sum of ints over the block; `total` gets the block's sum.
__device__ int block_inclusive_scan(int x, int* warp_totals, int& total) {
    const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
#pragma unroll
    for (int offset = 1; offset < kWarpSize; offset *= 2) {
        const int y = __shfl_up_sync(kFullMask, x, offset);
        if (lane >= offset) x += y;
    }
    if (lane == kWarpSize - 1) warp_totals[warp] = x;
    __syncthreads();
    if (warp == 0) {
        int t = lane < kRewardWarps ? warp_totals[lane] : 0;
#pragma unroll
        for (int offset = 1; offset < kWarpSize; offset *= 2) {
            const int y = __shfl_up_sync(kFullMask, t, offset);
            if (lane >= offset) t += y;
        }
        if (lane < kRewardWarps) warp_totals[lane] = t;
    }
    __syncthreads();
    if (warp > 0) x += warp_totals[warp - 1];
    total = warp_totals[kRewardWarps - 1];
    __syncthreads();
    return x;
}

// Block-wide max / min of an int (order-independent, hence deterministic).
__device__ int block_max_int(int v, int* slot) {
    if (threadIdx.x == 0) *slot = INT_MIN;
    __syncthreads();
    atomicMax(slot, v);
    __syncthreads();
    const int r = *slot;
    __syncthreads();
    return r;
}

__device__ int block_min_int(int v, int* slot) {
    if (threadIdx.x == 0) *slot = INT_MAX;
    __syncthreads();
    atomicMin(slot, v);
    __syncthreads();
    const int r = *slot;
    __syncthreads();
    return r;
}

// The last (or first) start position >= from of `marker` in y[0, n), or -1.
__device__ int find_marker(const uint8_t* y, int n, int from, const char* marker, int len, bool last, int* slot) {
    int found = last ? -1 : INT_MAX;
    for (int pos = from + threadIdx.x; pos + len <= n; pos += blockDim.x)
        if (marker_at(y, n, pos, marker, len)) found = last ? max(found, pos) : min(found, pos);
    if (last) return block_max_int(found, slot);
    const int first = block_min_int(found, slot);
    return first == INT_MAX ? -1 : first;
}

// The index of the response token whose bytes hold byte `at` (the walk of step 1), or
// -1. Every thread of the block calls it.
__device__ int64_t token_holding_byte(const RewardArgs& p, const int32_t* tokens, int64_t count, int at,
                                      int* warp_totals, int* slot) {
    int carry = 0;
    int found = INT_MAX;
    for (int64_t base = 0; base < count && carry <= at; base += blockDim.x) {
        const int64_t i = base + threadIdx.x;
        int len = 0;
        if (i < count) {
            const int32_t t = tokens[i];
            if (t >= 0 && t < p.V) len = max(p.token_offsets[t + 1] - p.token_offsets[t], 0);
        }
        int tile_total;
        const int pos = carry + block_inclusive_scan(len, warp_totals, tile_total) - len;
        if (len > 0 && pos <= at && at < pos + len) found = int(i);
        carry += tile_total;
    }
    const int first = block_min_int(found, slot);
    return first == INT_MAX ? -1 : first;
}

__global__ void __launch_bounds__(kRewardThreads) prefix_reward_kernel(RewardArgs p) {
    extern __shared__ uint8_t shared_bytes[];
    __shared__ int warp_totals[kRewardWarps];
    __shared__ int slot;
    __shared__ int brace_end;
    const RewardMarkers& mk = p.markers;
    const int64_t s = blockIdx.x, g = s / p.group_size;
    const int max_bytes = mk.max_response_bytes;
    uint8_t* const y = p.scratch ? p.scratch + s * max_bytes : shared_bytes;

    // 1. detokenise
    const int64_t count = min(max(int64_t(p.response_len[s]), int64_t(0)), p.R);
    const int32_t* tokens = p.response_tokens + s * p.R;
    int carry = 0;
    for (int64_t base = 0; base < count && carry < max_bytes; base += blockDim.x) {
        const int64_t i = base + threadIdx.x;
        int begin = 0, len = 0;
        if (i < count) {
            const int32_t t = tokens[i];
            if (t >= 0 && t < p.V) {
                begin = p.token_offsets[t];
                len = max(p.token_offsets[t + 1] - begin, 0);
            }
        }
        int tile_total;
        const int pos = carry + block_inclusive_scan(len, warp_totals, tile_total) - len;
        for (int b = 0; b < len && pos + b < max_bytes; ++b) y[pos + b] = p.token_bytes[begin + b];
        carry += tile_total;
    }
    const int n = min(carry, max_bytes);
    __syncthreads();

    // 2. locate the prediction [begin, end)
    int from = 0;
    if (mk.think_len > 0) {
        const int think = find_marker(y, n, 0, mk.think_close, mk.think_len, true, &slot);
        from = think < 0 ? -1 : think + mk.think_len;
    }
    int begin = -1, end = -1;
    if (from >= 0) {
        const int open = find_marker(y, n, from, mk.answer_open, mk.open_len, true, &slot);
        if (open >= 0) {
            begin = open + mk.open_len;
            if (mk.brace_matched) {
                if (threadIdx.x == 0) brace_end = rl_detail::matching_brace(y, n, begin);
                __syncthreads();
                end = brace_end;
            } else {
                end = find_marker(y, n, begin, mk.answer_close, mk.close_len, false, &slot);
            }
        }
    }
    if (begin < 0 || end < 0) {
        if (threadIdx.x == 0) {
            p.prediction_len[s] = -1;
            p.rewards[s] = 0.0f;
        }
        return;
    }

    // 3. prefix match on a token boundary
    const int len = end - begin;
    const int truth_len = int(min(max(int64_t(p.truth_len[g]), int64_t(0)), p.Lmax));
    const int bcount = int(min(max(int64_t(p.boundary_count[g]), int64_t(0)), p.Kmax));
    const uint8_t* truth = p.truth_bytes + g * p.Lmax;
    const int32_t* bounds = p.truth_boundaries + g * p.Kmax;
    const bool whole = mk.kind == ops::RewardKind::prefix;
    // prefix: all of y against the truth, then |y| among the boundaries; the first-token
    // kinds: the true next token's b0 bytes against y.
    const int b0 = bcount > 0 ? bounds[0] : 0;
    const int compared = whole ? len : b0;
    bool ok = whole ? len > 0 && len <= truth_len : b0 > 0 && b0 <= truth_len && len >= b0;
    if (ok) {
        bool mismatch = false;
        for (int i = threadIdx.x; i < compared; i += blockDim.x) mismatch |= y[begin + i] != truth[i];
        ok = !__syncthreads_or(mismatch);
    }
    if (ok && whole) {
        bool boundary = false;
        for (int k = threadIdx.x; k < bcount; k += blockDim.x) boundary |= bounds[k] == len;
        ok = __syncthreads_or(boundary);
    }
    float reward = ok ? 1.0f : 0.0f;
    if (!ok && len > 0 && rl_detail::is_dense(mk.kind)) {
        const int64_t i = token_holding_byte(p, tokens, count, begin, warp_totals, &slot);
        if (i >= 0) reward = rl_detail::dense_wrong_reward(p.token_logprobs[s * p.R + i]);
    }
    if (threadIdx.x == 0) {
        p.prediction_len[s] = len;
        p.rewards[s] = reward;
    }
}

// conditional_dense: one thread per group of group_size rewards.
__global__ void condition_groups_kernel(float* rewards, int64_t groups, int64_t group_size) {
    const int64_t g = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (g < groups) rl_detail::condition_group(rewards + g * group_size, group_size);
}

}  // namespace

void prefix_reward(void* stream, const RewardArgs& p) {
    const int64_t S = p.S;
    if (S > INT32_MAX) throw std::invalid_argument("prefix_reward: too many slots");
    const int smem = p.scratch ? 0 : p.markers.max_response_bytes;
    if (smem > kDefaultSharedBytes)
        RPT_CUDA_CHECK(cudaFuncSetAttribute(prefix_reward_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    prefix_reward_kernel<<<static_cast<unsigned>(S), kRewardThreads, smem, as_stream(stream)>>>(p);
    RPT_CUDA_LAUNCH_CHECK();
    if (p.markers.kind == ops::RewardKind::conditional_dense) {
        const int64_t groups = S / p.group_size;
        const unsigned blocks = static_cast<unsigned>((groups + kRewardThreads - 1) / kRewardThreads);
        condition_groups_kernel<<<blocks, kRewardThreads, 0, as_stream(stream)>>>(p.rewards, groups, p.group_size);
        RPT_CUDA_LAUNCH_CHECK();
    }
}

}  // namespace rpt::cuda
