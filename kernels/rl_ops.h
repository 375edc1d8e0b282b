// The op API of the RPT engine: batched decoding over a shared-prefix KV cache,
// sampling, the prefix-matching reward and GRPO. Like kernels/ops.h, each op validates
// shapes and runs the CUDA kernel or the CPU twin (kernels/cpu/) by ctx.device.
//
// Rollout layout. B contexts, G rollouts each, S = B * G sequence slots; slot s belongs
// to group (context) s / G. The context's KV (the "prefix") is computed once and shared
// by its G slots without copying; each slot appends its own generated KV (the "suffix").
// Decoding works on A <= S active rows at a time; `slots` (A) maps each row to its slot,
// so finished sequences drop out of the batch and stop costing compute.
#pragma once

#include <cstdint>

#include "kernels/ops.h"

namespace rpt {
namespace ops {

// ---- KV cache ----------------------------------------------------------------------
// Dtypes: the cache (suffix; prefix_k ... below) is f32 or bf16 (model/kv_cache.h); the
// step's rows (kv; q and out) are f32 or bf16, the model's precision. Any combination:
// a bf16 cache is written rounded to nearest even and read widened to fp32; attention
// computes in fp32 (statistics and accumulators) and rounds a bf16 out once at the store
// (the CPU twin: fp32 on the widened rows, the emulation of kernels/ops.h).
//
// The suffix is paged (kernels/paged_kv.h): a pool (N, Tb, KVH, D) of blocks of Tb
// tokens and a block table (S, max_blocks) i32 naming each slot's blocks in token order,
// so token i of slot s is pool row table[s, i / Tb] * Tb + i % Tb and a slot holds up to
// max_blocks * Tb tokens. An empty block_table means the contiguous layout: the pool is
// (S, Tmax, KVH, D), slot s owning block s whole. Both layouts give the same bits for the
// same tokens (the keys are read in the same order); the contiguous one is the tests'
// reference. Only the blocks a row's tokens reach are read; table entries past them are
// ignored (-1 by convention).
//
// suffix[slot slots[a], token index[a]] = kv (A, KVH, D).
void kv_cache_append(const OpContext& ctx, Tensor suffix, Tensor kv, Tensor slots, Tensor index,
                     Tensor block_table = Tensor{});

// One decoding step of attention for A active rows. Row a (slot s = slots[a], group
// g = s / group_size) attends to prefix keys 0 .. prefix_len[g]-1 of its group and to
// suffix keys 0 .. suffix_len[a]-1 of its own slot (the current token's KV already
// appended), all with scale 1/sqrt(D) and GQA head mapping h -> h / (H / KVH).
//   out (A, H, D), q (A, H, D), one dtype
//   prefix_k, prefix_v (B, Tp, KVH, D), prefix_len (B) i32
//   suffix_k, suffix_v: pools (N, Tb, KVH, D) with block_table (S, max_blocks) i32, or
//     (S, Tmax, KVH, D) with block_table empty; suffix_len (A) i32, slots (A) i32
void decode_attention(const OpContext& ctx, Tensor out, Tensor q, Tensor prefix_k, Tensor prefix_v, Tensor prefix_len,
                      Tensor suffix_k, Tensor suffix_v, Tensor suffix_len, Tensor slots, int group_size,
                      Tensor block_table = Tensor{});

// ---- sampling ----------------------------------------------------------------------
struct SamplingSettings {
    float temperature = 1.0f;  // <= 0 or greedy: argmax
    float top_p = 1.0f;        // nucleus mass kept, in (0, 1]
    int top_k = 0;             // 0: no limit
    bool greedy = false;
    uint64_t seed = 0;
    uint64_t step = 0;         // the training step, part of the RNG key
};
// Draws one token per row of logits (A, V). Row a's uniform comes from the
// counter-based RNG keyed by (seed, step, sequence_ids[a], positions[a]) only, so a
// sample does not depend on batch composition, row order or rank count. Among kept
// tokens (top-k, then top-p over the temperature softmax, ties kept together) the
// draw is by inverse CDF in vocabulary order.
//   tokens (A) i32 out, logprob (A) out: log-prob of the drawn token under the
//   temperature softmax over the FULL vocabulary (the behaviour policy's log-prob
//   without truncation; 0 for greedy).
//   sequence_ids (A) i32, positions (A) i32
void sample_tokens(const OpContext& ctx, Tensor tokens, Tensor logprob, Tensor logits, Tensor sequence_ids,
                   Tensor positions, const SamplingSettings& s);

// ---- prefix-matching reward (DESIGN §1, paper eq. 3) --------------------------------
// Where the prediction is in a response's bytes: after the last `think_close` (if
// given; no think_close -> no prediction), the text inside the last `answer_open` ...
// `answer_close` pair. When `brace_matched` is set (the \boxed{...} template),
// answer_close is ignored and the prediction ends at the brace that closes the `{`
// ending answer_open, counting nested braces; an unclosed answer is no prediction.
// Responses up to this many bytes are decoded in GPU shared memory (an opt-in size both
// sm_80 and sm_90 grant); longer ones need RewardInputs::scratch on the GPU.
constexpr int kMaxSharedResponseBytes = 128 * 1024;

// What a located prediction y earns (the paper's eq. 3, and its Appendix A variants).
// Let b0 = L_gt[0], the byte length of the true next token x_t, and "first token right"
// mean |y| >= b0 and y[0:b0] == g[0:b0] (bytes, so the prediction is never re-tokenised).
//   prefix:            1 iff y is a prefix of g ending on a boundary in L_gt, else 0;
//   first_token:       1 iff the first token is right (what follows it is ignored), else 0;
//   dense:             1 iff the first token is right, else P(y[0]): exp of
//                      token_logprobs[s, i] at the response token i holding y's first
//                      byte, capped at kDenseBelowOne so that 1 always means right
//                      (no prediction, or an empty one: 0);
//   conditional_dense: dense in groups where some response's first token is right;
//                      0 for every response of a group where none is.
enum class RewardKind : uint8_t { prefix, first_token, dense, conditional_dense };
constexpr float kDenseBelowOne = 1.0f - 1.0f / 16777216.0f;  // 1 - 2^-24, the float below 1

struct RewardFormat {
    const char* think_close = "</think>";
    const char* answer_open = "<answer>";
    const char* answer_close = "</answer>";
    bool brace_matched = false;
    // The decode buffer per response: a response that decodes to more bytes is judged on
    // its first max_response_bytes only, so callers size it to hold every response whole
    // (rl/response_bytes.h). Above kMaxSharedResponseBytes the GPU needs
    // RewardInputs::scratch.
    int max_response_bytes = 4096;
    RewardKind kind = RewardKind::prefix;
};
// For each slot s (group g = s / group_size):
//   y = prediction bytes of response_tokens[s, 0:response_len[s]], detokenised with the
//       byte table (token_offsets (V+1) i32, token_bytes (nbytes) u8);
//   truth bytes g_bytes = truth_bytes[g, 0:truth_len[g]] (the document from position t);
//   boundaries L_gt = truth_boundaries[g, 0:boundary_count[g]], the cumulative byte
//       lengths of the document's own tokens from t on;
//   reward[s] = 1 iff |y| > 0, y == g_bytes[0:|y|] and |y| is in L_gt; else 0 (for
//       format.kind == prefix; the other kinds above RewardFormat).
//   prediction_len[s] (i32) = |y|, or -1 when there is no prediction (format failure).
// Shapes: rewards (S) f32, prediction_len (S) i32, and the inputs below.
struct RewardInputs {
    Tensor response_tokens;   // (S, R) i32
    Tensor response_len;      // (S) i32
    Tensor token_offsets;     // (V + 1) i32  the byte table: token v is token_bytes[offsets[v], offsets[v + 1])
    Tensor token_bytes;       // (nbytes) u8
    Tensor truth_bytes;       // (B, Lmax) u8
    Tensor truth_len;         // (B) i32
    Tensor truth_boundaries;  // (B, Kmax) i32
    Tensor boundary_count;    // (B) i32
    // (S, max_response_bytes) u8 device memory the GPU kernel decodes into when
    // max_response_bytes exceeds what shared memory holds; may be empty otherwise (and is
    // never needed on the CPU).
    Tensor scratch;
    // (S, R) f32: the log-prob the sampler gave each response token (the dense kinds'
    // P(y[0])); may be empty for prefix and first_token.
    Tensor token_logprobs;
};
void prefix_reward(const OpContext& ctx, Tensor rewards, Tensor prediction_len, const RewardInputs& in,
                   int group_size, const RewardFormat& format);

// ---- GRPO --------------------------------------------------------------------------
// advantages (S) from rewards (S), groups of group_size consecutive slots:
//   A_i = (r_i - mean(r)) / (std(r) + eps), std unbiased (n - 1); without
//   scale_by_std (Dr. GRPO): A_i = r_i - mean(r). A group of one has A = 0.
void grpo_advantages(const OpContext& ctx, Tensor advantages, Tensor rewards, int group_size, float eps,
                     bool scale_by_std);

enum class LossAggregation : uint8_t {
    token_mean,               // sum over all tokens / number of tokens in the whole batch
    seq_mean_token_mean,      // mean over sequences of each sequence's token mean
    constant_normalizer,      // Dr. GRPO: sum / (num_sequences * max_response_tokens)
};

struct PolicyLossSettings {
    float clip_low = 0.2f;   // ratio floor 1 - clip_low
    float clip_high = 0.2f;  // ratio ceiling 1 + clip_high
    float kl_beta = 0.0f;    // weight of the k3 KL to the reference policy (0: off)
    LossAggregation aggregation = LossAggregation::token_mean;
    // Totals over the whole optimizer step (all micro-batches and ranks), so that
    // summing coefficients across micro-batches gives the full-batch mean:
    int64_t total_tokens = 1;      // token_mean
    int64_t total_sequences = 1;   // seq_mean_token_mean and constant_normalizer
    int64_t max_response_tokens = 1;  // constant_normalizer
};
// Per token (S, R) with mask (S, R) f32 in {0, 1} marking response tokens:
//   rho = exp(logp - logp_old), l = -min(rho A, clip(rho, 1-cl, 1+ch) A) + beta k3,
//   k3 = exp(logp_ref - logp) - (logp_ref - logp) - 1.
// Outputs:
//   coef (S, R) = w * dl/dlogp, the dL/dlogprob the model's backward consumes, where w
//                 is the aggregation weight of the token (0 where mask is 0);
//   token_loss (S, R) = w * l (sums to the step's loss);
//   clipped (S, R) = 1 where the clipped branch is active (no gradient), else 0;
//   kl (S, R) = k3 where masked in (0 when kl_beta is 0 and logp_ref is empty).
// advantages (S); logp_ref may be empty when kl_beta == 0.
void policy_loss(const OpContext& ctx, Tensor coef, Tensor token_loss, Tensor clipped, Tensor kl, Tensor logp,
                 Tensor logp_old, Tensor logp_ref, Tensor advantages, Tensor mask, const PolicyLossSettings& s);

// The update's per-response view of the model's per-token arrays (rl/grpo.cpp), so the
// log-probs go into policy_loss and its coefficients into the backward without leaving
// the device. Token j of response m sits at per_token[index[m, j]] of a micro-batch's
// N = rows * T tokens, or nowhere (-1) past the response's end. Entries >= 0 are
// distinct (one batch token per response token) and below N; the caller builds the map
// on the host and checks it, since a device op cannot report a bad entry.
//   gather_tokens:  out (M, R) f32 = per_token[index], 0 where index is -1
//   scatter_tokens: per_token[index] = values (M, R) where index >= 0; the rest untouched
//   per_token (N) f32, index (M, R) i32
void gather_tokens(const OpContext& ctx, Tensor out, Tensor per_token, Tensor index);
void scatter_tokens(const OpContext& ctx, Tensor per_token, Tensor values, Tensor index);

}  // namespace ops
}  // namespace rpt
