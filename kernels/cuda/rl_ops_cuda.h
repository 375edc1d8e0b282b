// CUDA kernels behind kernels/rl_ops.h: the raw-pointer signatures of the CPU twins
// (kernels/cpu/rl_ops_cpu.h; decoding takes tensor views), on device memory, enqueued
// on `stream` (a cudaStream_t).
// Only compiled when the build has CUDA (RPT_WITH_CUDA).
//
// Index values (slots, positions, token ids, lengths) are on the device, so they cannot
// be validated on the host: the kernels clamp lengths to the tensor extents and skip rows
// whose slot or position lies outside the cache (leaving their outputs unwritten),
// where the CPU twins throw.
#pragma once

#include <cstdint>

#include "kernels/paged_kv.h"
#include "kernels/rl_ops.h"

namespace rpt::rl_detail {
struct RewardArgs;  // kernels/cpu/rl_ops_cpu.h
}  // namespace rpt::rl_detail

namespace rpt::cuda {

// Decoding takes the op's own tensor views (shapes and dtypes checked by
// kernels/rl_ops.cpp). The cache (suffix, prefix_k ...) is f32 or bf16 (--kv-dtype), the
// step's rows (kv; q and out) f32 or bf16 (the model's precision), in any combination: a
// bf16 cache is written rounded to nearest even and read widened to fp32; bf16 rows are
// widened on load and the attention output rounded once at its store. The suffix is a
// pool addressed by `pool` (kernels/paged_kv.h; its table a device pointer, or null: the
// contiguous layout), as kernels/rl_ops.cpp derives it from the op's tensors.
void kv_cache_append(void* stream, Tensor suffix, Tensor kv, Tensor slots, Tensor index,
                     const paged_kv::Layout& pool);

// The tensors of one decode-attention call (kernels/rl_ops.h, ops::decode_attention).
struct DecodeTensors {
    Tensor out, q;                // (A, H, D), one dtype
    Tensor prefix_k, prefix_v;    // (B, Tp, KVH, D)
    Tensor prefix_len;            // (B) i32
    Tensor suffix_k, suffix_v;    // pools (N, Tb, KVH, D), or (S, Tmax, KVH, D); the prefix's dtype
    Tensor suffix_len, slots;     // (A) i32
    paged_kv::Layout pool;        // how suffix_k/v are addressed (table on the device, or null)
    int group_size = 1;
};
void decode_attention(void* stream, const DecodeTensors& t);

void sample_tokens(void* stream, int32_t* tokens, float* logprob, const float* logits, const int32_t* sequence_ids,
                   const int32_t* positions, int64_t A, int64_t V, const ops::SamplingSettings& s);

void prefix_reward(void* stream, const rl_detail::RewardArgs& p);

void grpo_advantages(void* stream, float* advantages, const float* rewards, int64_t S, int64_t group_size, float eps,
                     bool scale_by_std);

void policy_loss(void* stream, float* coef, float* token_loss, float* clipped, float* kl, const float* logp,
                 const float* logp_old, const float* logp_ref, const float* advantages, const float* mask, int64_t S,
                 int64_t R, const ops::PolicyLossSettings& s);

void gather_tokens(void* stream, float* out, const float* per_token, const int32_t* index, int64_t n);
void scatter_tokens(void* stream, float* per_token, const float* values, const int32_t* index, int64_t n);

}  // namespace rpt::cuda
