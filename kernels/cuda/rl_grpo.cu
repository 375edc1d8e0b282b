// GRPO on the GPU: group-normalised advantages and the clipped policy-gradient loss with
// its per-token dL/dlogp coefficients (DESIGN §1.4). CPU twin: kernels/cpu/rl_grpo.cpp;
// the per-token formulas are the shared rl_detail::token_loss.
//
// Advantages: one thread per group of G rewards (G is small; double accumulation in a
// fixed order, exactly as on the CPU). Policy loss: one block per sequence row; the
// block first counts the row's response tokens (needed by seq-mean-token-mean), then
// each thread handles tokens r = tid, tid + blockDim, ... Both are tiny, bandwidth-bound
// elementwise passes: one coalesced read of each input, one write of each output.
// Token maps (gather_tokens, scatter_tokens): one thread per (response, token) entry, a
// 1-D grid; the per-response side is read or written coalesced, the per-token side at
// the mapped index (consecutive tokens of a response are consecutive in the batch, so
// those accesses are mostly coalesced too). Distinct targets: no atomics.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cpu/rl_ops_cpu.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/rl_ops_cuda.h"

namespace rpt::cuda {
namespace {

constexpr int kGroupThreads = 128;
constexpr int kLossThreads = 256;
constexpr int kTokenMapThreads = 256;

__global__ void gather_tokens_kernel(float* out, const float* per_token, const int32_t* index, int64_t n) {
    const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i < n) out[i] = index[i] >= 0 ? per_token[index[i]] : 0.0f;
}

__global__ void scatter_tokens_kernel(float* per_token, const float* values, const int32_t* index, int64_t n) {
    const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i < n && index[i] >= 0) per_token[index[i]] = values[i];
}

unsigned token_map_blocks(int64_t n, const char* op) {
    const int64_t blocks = (n + kTokenMapThreads - 1) / kTokenMapThreads;
    if (blocks > INT32_MAX) throw std::invalid_argument(std::string(op) + ": too many entries");
    return static_cast<unsigned>(blocks);
}

__global__ void grpo_advantages_kernel(float* advantages, const float* rewards, int64_t groups, int64_t G, float eps,
                                       bool scale_by_std) {
    const int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (g >= groups) return;
    rl_detail::group_advantages(advantages + g * G, rewards + g * G, G, eps, scale_by_std);
}

struct LossArgs {
    float *coef, *token_loss, *clipped, *kl;
    const float *logp, *logp_old, *logp_ref, *advantages, *mask;
    int64_t R;
    ops::PolicyLossSettings s;
};

__global__ void __launch_bounds__(kLossThreads) policy_loss_kernel(LossArgs p) {
    __shared__ float scratch[kWarpSize];
    const int64_t base = blockIdx.x * p.R;
    float tokens = 0.0f;  // exact: a count far below 2^24
    for (int64_t r = threadIdx.x; r < p.R; r += blockDim.x) tokens += p.mask[base + r] != 0.0f ? 1.0f : 0.0f;
    tokens = block_sum(tokens, scratch);
    const float w = rl_detail::aggregation_weight(p.s.aggregation, tokens, p.s.total_tokens, p.s.total_sequences,
                                                  p.s.max_response_tokens);
    const float adv = p.advantages[blockIdx.x];
    for (int64_t r = threadIdx.x; r < p.R; r += blockDim.x) {
        const int64_t i = base + r;
        if (p.mask[i] == 0.0f) {
            p.coef[i] = p.token_loss[i] = 0.0f;
            if (p.clipped) p.clipped[i] = 0.0f;
            if (p.kl) p.kl[i] = 0.0f;
            continue;
        }
        const rl_detail::TokenLoss t =
            rl_detail::token_loss(p.logp[i], p.logp_old[i], p.logp_ref ? p.logp_ref[i] : 0.0f, p.logp_ref != nullptr,
                                  adv, p.s.clip_low, p.s.clip_high, p.s.kl_beta);
        p.coef[i] = w * t.dloss;
        p.token_loss[i] = w * t.loss;
        if (p.clipped) p.clipped[i] = t.clipped;
        if (p.kl) p.kl[i] = t.kl;
    }
}

}  // namespace

void grpo_advantages(void* stream, float* advantages, const float* rewards, int64_t S, int64_t group_size, float eps,
                     bool scale_by_std) {
    const int64_t groups = S / group_size;
    grpo_advantages_kernel<<<static_cast<unsigned>(ceil_div<int64_t>(groups, kGroupThreads)), kGroupThreads, 0,
                             as_stream(stream)>>>(advantages, rewards, groups, group_size, eps, scale_by_std);
    RPT_CUDA_LAUNCH_CHECK();
}

void policy_loss(void* stream, float* coef, float* token_loss, float* clipped, float* kl, const float* logp,
                 const float* logp_old, const float* logp_ref, const float* advantages, const float* mask, int64_t S,
                 int64_t R, const ops::PolicyLossSettings& s) {
    if (S > INT32_MAX) throw std::invalid_argument("policy_loss: too many sequences");
    const LossArgs p{coef, token_loss, clipped, kl, logp, logp_old, logp_ref, advantages, mask, R, s};
    policy_loss_kernel<<<static_cast<unsigned>(S), kLossThreads, 0, as_stream(stream)>>>(p);
    RPT_CUDA_LAUNCH_CHECK();
}

void gather_tokens(void* stream, float* out, const float* per_token, const int32_t* index, int64_t n) {
    gather_tokens_kernel<<<token_map_blocks(n, "gather_tokens"), kTokenMapThreads, 0, as_stream(stream)>>>(out, per_token, index,
                                                                                                n);
    RPT_CUDA_LAUNCH_CHECK();
}

void scatter_tokens(void* stream, float* per_token, const float* values, const int32_t* index, int64_t n) {
    scatter_tokens_kernel<<<token_map_blocks(n, "scatter_tokens"), kTokenMapThreads, 0, as_stream(stream)>>>(per_token, values,
                                                                                                  index, n);
    RPT_CUDA_LAUNCH_CHECK();
}

}  // namespace rpt::cuda
