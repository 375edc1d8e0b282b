// CPU twins of every op in kernels/ops.h: plain fp32 loops over raw pointers, OpenMP
// across rows, written for the compiler to vectorise. They are the reference the CUDA
// kernels are tested against, and the backend of the embedded demo. Shapes and
// accumulate/overwrite rules are those documented in kernels/ops.h.
//
// Determinism: every output element is produced by one thread in a fixed order, and
// reductions across rows use fixed chunking, so results do not depend on thread count.
#pragma once

#include <cstdint>

#include "kernels/attention_args.h"
#include "kernels/ops.h"

namespace rpt::cpu {

void fill(float* dst, int64_t n, float value);
void add(float* out, const float* a, const float* b, int64_t n);
void accumulate(float* dst, const float* src, int64_t n);
void scale(float* x, int64_t n, float factor);
void copy(float* dst, const float* src, int64_t n);
// Conversions (bf16 as raw bits): fp32 -> bf16 rounds to nearest even, bf16 -> fp32 is exact.
void copy(uint16_t* dst, const float* src, int64_t n);
void copy(float* dst, const uint16_t* src, int64_t n);
void copy(uint16_t* dst, const uint16_t* src, int64_t n);

void embedding_forward(float* out, const int32_t* tokens, const float* wte, int64_t N, int64_t V, int64_t C);
void embedding_backward(float* dwte, const float* dout, const int32_t* tokens, int64_t N, int64_t V, int64_t C);

void rmsnorm_forward(float* out, float* rstd, const float* in, const float* weight, int64_t N, int64_t C, float eps);
void rmsnorm_backward(float* din, float* dweight, const float* dout, const float* in, const float* weight,
                      const float* rstd, int64_t N, int64_t C);

void matmul_forward(float* out, const float* in, const float* weight, const float* bias, int64_t N, int64_t IC,
                    int64_t OC);
void matmul_backward(float* din, float* dweight, float* dbias, const float* dout, const float* in,
                     const float* weight, int64_t N, int64_t IC, int64_t OC);

void rope_forward(float* x, const int32_t* positions, int64_t N, int64_t heads, int64_t D, float theta);
void rope_backward(float* dx, const int32_t* positions, int64_t N, int64_t heads, int64_t D, float theta);

void attention_forward(const attn::ForwardArgs& a);
void attention_backward(const attn::BackwardArgs& a);

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n);
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n);

void logsoftmax_forward(float* logprob, float* entropy, float* lse, const float* logits, const int32_t* targets,
                        int64_t N, int64_t V, float inv_temperature);
void logsoftmax_backward(float* logits, const float* dlogprob, const float* lse, const int32_t* targets, int64_t N,
                         int64_t V, float inv_temperature);
void topk_entropy(float* entropy, const float* logits, int64_t N, int64_t V, int k);
void argmax(int32_t* out, const float* logits, int64_t N, int64_t V);

void adamw_update(float* params, const float* grads, float* m, float* v, int64_t n, const ops::AdamWSettings& s);
// The same update, also writing working (n, bf16 bits, nullable) = the updated params
// rounded to nearest even: the bf16 copy the bf16 forward reads.
void adamw_update(float* params, const float* grads, float* m, float* v, uint16_t* working, int64_t n,
                  const ops::AdamWSettings& s);
double sum_squares(const float* x, int64_t n);
double sum(const float* x, int64_t n);  // in sum_squares' fixed order

}  // namespace rpt::cpu
