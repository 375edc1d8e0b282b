// The op API: every numeric op the model and the RL engine use, declared once on tensor
// views. Each call validates shapes, then runs the CUDA kernel when ctx.device is cuda
// and the CPU twin (kernels/cpu/) otherwise. Model and RL code are written once against
// this header and never see which backend ran.
//
// Conventions
//   N = rows (tokens, B*T flattened), C = channels, V = vocabulary, F = FFN width,
//   H = query heads, KVH = key/value heads, D = head dim.
//   Linear weights use the Hugging Face layout (out_features, in_features).
//   Backward ops ACCUMULATE (+=) into parameter gradients and into `din` of matmul,
//   rmsnorm and embedding (the residual stream sums several branches); the others
//   overwrite, as stated per op.
//   Empty tensors (data == nullptr) mark optional arguments.
//
// Precision (kernels/README.md, "Precision")
//   An op whose floating tensors are all f32 runs the fp32 kernels. When any of them is
//   bf16 it runs the bf16 path, and then each tensor must have the dtype its op's
//   "bf16:" line below names (the table of kernels/cuda/cuda_mixed_ops.h; anything else
//   throws naming the tensor): bf16, f32 (always, e.g. statistics and parameter
//   gradients) or "either" (f32 or bf16).
//   On the GPU the bf16 path is the tensor-core kernels of cuda_mixed_ops.h; on the CPU
//   it is emulated exactly at the stores: bf16 inputs widened (exact), the fp32 twin,
//   each bf16 output rounded once to nearest even (an accumulated bf16 output is
//   widened, summed in fp32, rounded back). Rounding inside a GPU kernel (attention's
//   probabilities fed to the tensor cores as bf16) is not emulated: it is within the
//   bf16 tolerance the tests state.
#pragma once

#include <cstdint>
#include <memory>

#include "kernels/tensor.h"

namespace rpt {

class HostSyncCounter;  // kernels/host_sync.h

// Where ops run. `stream` is a cudaStream_t on the GPU backend, unused on the CPU.
// `syncs` counts the host synchronisation points made on this context
// (kernels/host_sync.h); copies of a context share it; null: not counted.
struct OpContext {
    DeviceKind device = DeviceKind::cpu;
    void* stream = nullptr;
    std::shared_ptr<HostSyncCounter> syncs = nullptr;
};

namespace ops {

// ---- elementwise -------------------------------------------------------------------
// dst[:] = value. bf16: dst bf16 (on the GPU only values that round to +0: a memset).
void fill(const OpContext& ctx, Tensor dst, float value);
void add(const OpContext& ctx, Tensor out, Tensor a, Tensor b);      // out = a + b. bf16: all bf16
void accumulate(const OpContext& ctx, Tensor dst, Tensor src);       // dst += src. bf16: both bf16
void scale(const OpContext& ctx, Tensor x, float factor);            // x *= factor. f32 only
// dst = src, f32 or bf16 each: between different dtypes it converts (f32 -> bf16 rounds
// to nearest even, bf16 -> f32 is exact). The model's bf16 working weights are
// copy(working, masters).
void copy(const OpContext& ctx, Tensor dst, Tensor src);

// ---- embedding ---------------------------------------------------------------------
// out (N, C) = wte (V, C)[tokens (N)]. bf16: out, wte bf16.
void embedding_forward(const OpContext& ctx, Tensor out, Tensor tokens, Tensor wte);
// dwte (V, C) += dout (N, C) scattered by tokens (N). Deterministic: no atomics.
// bf16: dout bf16; dwte f32 (parameter gradients accumulate in fp32).
void embedding_backward(const OpContext& ctx, Tensor dwte, Tensor dout, Tensor tokens);

// ---- RMSNorm (Hugging Face convention: weight * x / sqrt(mean(x^2) + eps)) ----------
// out (N, C), rstd (N) saved for backward, in (N, C), weight (C).
// bf16: in, weight bf16; out either (f32 when it feeds the fp32 LM head); rstd f32.
void rmsnorm_forward(const OpContext& ctx, Tensor out, Tensor rstd, Tensor in, Tensor weight, float eps);
// The residual add fused with the next norm: residual_out (N, C) = residual_in + branch,
// then out, rstd = rmsnorm of residual_out AS STORED (rounded when bf16), so the backward,
// which reads residual_out, differentiates the function the forward computed.
// residual_out may be the same memory as residual_in or branch (each element is read
// before it is written). fp32: add then rmsnorm_forward, bit for bit (the CPU twin and
// the GPU's fp32 path are that composition). bf16: residual_out, residual_in, branch,
// weight bf16; out either; rstd f32 (one fused pass on the GPU).
void add_rmsnorm_forward(const OpContext& ctx, Tensor residual_out, Tensor out, Tensor rstd, Tensor residual_in,
                         Tensor branch, Tensor weight, float eps);
// din (N, C) +=, dweight (C) +=. bf16: din, in, weight bf16; dout either; dweight, rstd f32.
void rmsnorm_backward(const OpContext& ctx, Tensor din, Tensor dweight, Tensor dout, Tensor in, Tensor weight,
                      Tensor rstd);

// ---- matmul (a Linear layer) ---------------------------------------------------------
// out (N, OC) = in (N, IC) @ weight (OC, IC)^T + bias (OC, optional).
// bf16: in, weight bf16; out either; bias f32. Accumulation is fp32 either way.
void matmul_forward(const OpContext& ctx, Tensor out, Tensor in, Tensor weight, Tensor bias);
// din (N, IC) += dout @ weight (din optional); dweight (OC, IC) += dout^T @ in;
// dbias (OC) += column sums of dout (optional).
// bf16: din, dout, in, weight bf16; dweight, dbias f32.
void matmul_backward(const OpContext& ctx, Tensor din, Tensor dweight, Tensor dbias, Tensor dout, Tensor in,
                     Tensor weight);

// ---- RoPE, rotate-half layout ----------------------------------------------------------
// x (N, heads, D) rotated in place: pair (i, i + D/2) by angle positions[n] * theta^(-2i/D).
// bf16: x (and dx below) bf16, rotated in fp32 and rounded once.
void rope_forward(const OpContext& ctx, Tensor x, Tensor positions, float theta);
// dx (N, heads, D) rotated back in place (the transpose of the forward rotation).
void rope_backward(const OpContext& ctx, Tensor dx, Tensor positions, float theta);

// ---- causal grouped-query attention ----------------------------------------------------
// q (B, T, H, D), k and v (B, T, KVH, D) -> out (B, T, H, D), lse (B, H, T) the
// log-sum-exp of each query's scaled scores. Query head h reads KV head h / (H / KVH);
// scores are scaled by 1/sqrt(D); query t sees keys 0..t.
//
// segments (B, T) i32, optional, packs several sequences that share a prompt into one
// row (the GRPO update of a group): id 0 marks the shared prompt, seen by every later
// token; tokens with the same non-zero id are one sequence and see each other causally
// but nothing of the other sequences. Query t sees key j iff j <= t and
// (segments[j] == 0 or segments[j] == segments[t]). Ids never decrease along a row (the
// prompt first, then the sequences one after another; checked on the CPU): the kernels
// rely on it to skip whole tiles of other sequences' keys. Empty: plain causal attention.
void attention_forward(const OpContext& ctx, Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v,
                       Tensor segments = {});
// bf16 (forward and backward): q, k, v, out, dout, dq, dk, dv bf16; lse f32 (fp32
// softmax statistics; fp32 accumulators in the kernels).
// dq (B, T, H, D), dk and dv (B, T, KVH, D) overwritten.
void attention_backward(const OpContext& ctx, Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k,
                        Tensor v, Tensor out, Tensor lse, Tensor segments = {});

// ---- SwiGLU ------------------------------------------------------------------------
// out (N, F) = silu(gate) * up. bf16 (forward and backward): every tensor bf16.
void swiglu_forward(const OpContext& ctx, Tensor out, Tensor gate, Tensor up);
// dgate, dup (N, F) overwritten.
void swiglu_backward(const OpContext& ctx, Tensor dgate, Tensor dup, Tensor dout, Tensor gate, Tensor up);

// ---- fused log-softmax over the vocabulary ------------------------------------------
// For each row n of z = logits (N, V) * inv_temperature:
//   lse (N) = log sum_v exp(z_v), logprob (N) = z[targets[n]] - lse (0 where target < 0),
//   entropy (N, optional) = -sum_v p_v log p_v.
// Streams over vocabulary chunks with an online max/sum; never writes probabilities.
// bf16 (the whole family): logits bf16 (logits chunks; backward writes them as bf16);
// logprob, entropy, lse, dlogprob f32 -- log-probs and their gradients are fp32 math.
void logsoftmax_forward(const OpContext& ctx, Tensor logprob, Tensor entropy, Tensor lse, Tensor logits,
                        Tensor targets, float inv_temperature);
// Overwrites logits (N, V) with dL/dlogits given dlogprob (N) = dL/dlogprob:
//   dlogits[n, v] = dlogprob[n] * inv_temperature * (onehot(targets[n])_v - p_v).
// Rows with target < 0 or dlogprob == 0 become zero.
void logsoftmax_backward(const OpContext& ctx, Tensor logits, Tensor dlogprob, Tensor lse, Tensor targets,
                         float inv_temperature);
// entropy (N) of the softmax renormalised over each row's top-k logits (natural log):
// the proxy-model score RPT uses to choose positions.
void topk_entropy(const OpContext& ctx, Tensor entropy, Tensor logits, int k);
// out (N, i32) = argmax_v logits[n, v] (lowest index on ties)
void argmax(const OpContext& ctx, Tensor out, Tensor logits);

// ---- optimizer -----------------------------------------------------------------------
struct AdamWSettings {
    float lr = 1e-3f;
    float beta1 = 0.9f;
    float beta2 = 0.999f;
    float eps = 1e-8f;
    float weight_decay = 0.0f;
    int64_t step = 1;         // 1-based, for bias correction
    float grad_scale = 1.0f;  // multiplies grads first (gradient clipping)
};
// PyTorch AdamW: g = grad_scale * grads; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// params *= 1 - lr wd; params -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps).
// params, grads, m, v share one shape, f32 always (params are the fp32 masters).
// working (same shape, bf16, optional) is written in the same pass with the updated
// params rounded to nearest even: the bf16 weights of the bf16 forward.
void adamw_update(const OpContext& ctx, Tensor params, Tensor grads, Tensor m, Tensor v, const AdamWSettings& s,
                  Tensor working = {});
// sum of x^2 over all elements, accumulated in double in a fixed order (deterministic
// whatever the thread count); the basis of the global gradient norm. f32 only. Its
// result is read back to the host: one counted readback (kernels/host_sync.h).
double sum_squares(const OpContext& ctx, Tensor x);
// out (1) f32 = sum of x (f32, any shape), accumulated in double in the same fixed order
// as sum_squares and rounded to f32 once. Stays on the device: no host sync, so a
// training step can add up its loss per micro-batch and read it back once.
void sum_into(const OpContext& ctx, Tensor out, Tensor x);

}  // namespace ops
}  // namespace rpt
