// CUDA kernels behind kernels/rl_ops.h: the same raw-pointer signatures as the CPU twins
// (kernels/cpu/rl_ops_cpu.h), on device memory, enqueued on `stream` (a cudaStream_t).
// Only compiled when the build has CUDA (RPT_WITH_CUDA).
//
// Index values (slots, positions, token ids, lengths) are on the device, so they cannot
// be validated on the host: the kernels clamp lengths to the tensor extents and skip rows
// whose slot or position lies outside the cache (leaving their outputs unwritten),
// where the CPU twins throw.
#pragma once

#include <cstdint>

#include "kernels/rl_ops.h"

namespace rpt::rl_detail {
struct RewardArgs;  // kernels/cpu/rl_ops_cpu.h
}  // namespace rpt::rl_detail

namespace rpt::cuda {

// The uint16_t overloads work on a bf16 cache (bf16 bits; the kernels read them as
// __nv_bfloat16): append rounds to nearest even, attention widens to fp32.
void kv_cache_append(void* stream, float* suffix, const float* kv, const int32_t* slots, const int32_t* index,
                     int64_t A, int64_t S, int64_t Tmax, int64_t KVH, int64_t D);
void kv_cache_append(void* stream, uint16_t* suffix, const float* kv, const int32_t* slots, const int32_t* index,
                     int64_t A, int64_t S, int64_t Tmax, int64_t KVH, int64_t D);

void decode_attention(void* stream, float* out, const float* q, const float* prefix_k, const float* prefix_v,
                      const int32_t* prefix_len, const float* suffix_k, const float* suffix_v,
                      const int32_t* suffix_len, const int32_t* slots, int64_t A, int64_t B, int64_t Tp, int64_t S,
                      int64_t Tmax, int64_t H, int64_t KVH, int64_t D, int64_t group_size);
void decode_attention(void* stream, float* out, const float* q, const uint16_t* prefix_k, const uint16_t* prefix_v,
                      const int32_t* prefix_len, const uint16_t* suffix_k, const uint16_t* suffix_v,
                      const int32_t* suffix_len, const int32_t* slots, int64_t A, int64_t B, int64_t Tp, int64_t S,
                      int64_t Tmax, int64_t H, int64_t KVH, int64_t D, int64_t group_size);

void sample_tokens(void* stream, int32_t* tokens, float* logprob, const float* logits, const int32_t* sequence_ids,
                   const int32_t* positions, int64_t A, int64_t V, const ops::SamplingSettings& s);

void prefix_reward(void* stream, const rl_detail::RewardArgs& p);

void grpo_advantages(void* stream, float* advantages, const float* rewards, int64_t S, int64_t group_size, float eps,
                     bool scale_by_std);

void policy_loss(void* stream, float* coef, float* token_loss, float* clipped, float* kl, const float* logp,
                 const float* logp_old, const float* logp_ref, const float* advantages, const float* mask, int64_t S,
                 int64_t R, const ops::PolicyLossSettings& s);

}  // namespace rpt::cuda
