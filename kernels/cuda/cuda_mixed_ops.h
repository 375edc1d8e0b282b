// The bf16 mixed-precision CUDA path behind kernels/ops.h. The dispatch (kernels/ops.cpp)
// calls these when an op runs on the GPU and one of its floating tensors is bf16; the
// fp32 kernels (kernels/cuda/cuda_ops.h) stay the reference path.
//
// Arguments are the op's own tensor views (device memory) without the context, so each
// kernel family picks its kernel from the dtypes it is given. A family accepts exactly the
// dtype combinations of the precision recipe below and throws, naming the op and the
// tensor, on any other. The CPU twin of every combination is the bf16 emulation in
// kernels/ops.cpp: widen bf16 inputs (exact), compute as the fp32 twin does, round every
// bf16 output once at the store (round to nearest even); an accumulated (+=) bf16 output
// is widened, summed in fp32 and rounded back.
//
// The precision recipe (kernels/README.md, "Precision", says why):
//   weights          fp32 master + AdamW moments; a bf16 working copy written by adamw
//   activations      bf16 (residual stream, norms' outputs, q/k/v, attention output,
//                    SwiGLU in/out, activation gradients)
//   statistics       fp32 always: rstd, attention lse, log-softmax lse/logprob/entropy
//   accumulation     fp32 in every matmul, attention product and reduction
//   parameter grads  fp32 (dweight, dbias, dwte accumulate in fp32)
//   LM head / logits fp32 or bf16 logits chunks; log-probs, entropy and their gradients
//                    computed in fp32 (the RL log-probs stay fp32 end to end)
//
// Only compiled when the build has CUDA (RPT_WITH_CUDA).
#pragma once

#include "kernels/ops.h"

namespace rpt::cuda::mixed {

// ---- elementwise: out, a, b (or dst, src) all bf16 -----------------------------------
void add(void* stream, Tensor out, Tensor a, Tensor b);
void accumulate(void* stream, Tensor dst, Tensor src);

// ---- embedding: wte bf16 -> out bf16; dout bf16 -> dwte f32 (+=) ----------------------
void embedding_forward(void* stream, Tensor out, Tensor tokens, Tensor wte);
void embedding_backward(void* stream, Tensor dwte, Tensor dout, Tensor tokens);

// ---- RMSNorm: in, weight bf16; out bf16 or f32; rstd f32 ------------------------------
void rmsnorm_forward(void* stream, Tensor out, Tensor rstd, Tensor in, Tensor weight, float eps);
// residual_out (N, C) bf16 = residual_in + branch (both bf16), then out = rmsnorm of
// residual_out as stored (rounded), so that the backward, which reads residual_out,
// differentiates exactly the function the forward computed. One pass over the row.
void add_rmsnorm_forward(void* stream, Tensor residual_out, Tensor out, Tensor rstd, Tensor residual_in, Tensor branch,
                         Tensor weight, float eps);
// dout bf16 or f32, in and weight bf16, rstd f32 -> din bf16 (+=), dweight f32 (+=)
void rmsnorm_backward(void* stream, Tensor din, Tensor dweight, Tensor dout, Tensor in, Tensor weight, Tensor rstd);

// ---- matmul: in, weight bf16 (bias f32, optional); out bf16 or f32 --------------------
void matmul_forward(void* stream, Tensor out, Tensor in, Tensor weight, Tensor bias);
// dout, in, weight bf16 -> din bf16 (+=, optional), dweight f32 (+=), dbias f32 (+=)
void matmul_backward(void* stream, Tensor din, Tensor dweight, Tensor dbias, Tensor dout, Tensor in, Tensor weight);

// ---- RoPE: x (or dx) bf16, rotated in place in fp32 and rounded once -----------------
void rope_forward(void* stream, Tensor x, Tensor positions, float theta);
void rope_backward(void* stream, Tensor dx, Tensor positions, float theta);

// ---- attention (tensor cores): q, k, v, out, dout, dq, dk, dv bf16; lse f32 -----------
void attention_forward(void* stream, Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor segments);
void attention_backward(void* stream, Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v,
                        Tensor out, Tensor lse, Tensor segments);

// ---- SwiGLU: every tensor bf16 ---------------------------------------------------------
void swiglu_forward(void* stream, Tensor out, Tensor gate, Tensor up);
void swiglu_backward(void* stream, Tensor dgate, Tensor dup, Tensor dout, Tensor gate, Tensor up);

// ---- log-softmax family: logits bf16 chunks; logprob, entropy, lse, dlogprob f32 -------
void logsoftmax_forward(void* stream, Tensor logprob, Tensor entropy, Tensor lse, Tensor logits, Tensor targets,
                        float inv_temperature);
void logsoftmax_backward(void* stream, Tensor logits, Tensor dlogprob, Tensor lse, Tensor targets, float inv_temperature);
void topk_entropy(void* stream, Tensor entropy, Tensor logits, int k);
void argmax(void* stream, Tensor out, Tensor logits);

// ---- AdamW: params, grads, m, v f32 as in the fp32 path; working (same shape) bf16 is
// written with the updated params rounded to nearest even, in the same pass ----------
void adamw_update(void* stream, Tensor params, Tensor grads, Tensor m, Tensor v, Tensor working,
                  const ops::AdamWSettings& s);

}  // namespace rpt::cuda::mixed
