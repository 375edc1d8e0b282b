// CUDA kernels behind kernels/ops.h: the same raw-pointer signatures as the CPU twins
// (kernels/cpu/cpu_ops.h), on device memory, enqueued on `stream` (a cudaStream_t).
// Only compiled when the build has CUDA (RPT_WITH_CUDA).
// fp32: the reference path. The bf16 mixed-precision path is cuda_mixed_ops.h (same
// kernels where they are templated on the storage type).
#pragma once

#include <cstdint>

#include "kernels/attention_args.h"
#include "kernels/ops.h"

namespace rpt::cuda {

void fill(void* stream, float* dst, int64_t n, float value);
void add(void* stream, float* out, const float* a, const float* b, int64_t n);
void accumulate(void* stream, float* dst, const float* src, int64_t n);
void scale(void* stream, float* x, int64_t n, float factor);
void copy(void* stream, float* dst, const float* src, int64_t n);
// Conversions (bf16 as raw bits, __nv_bfloat16 in the kernels): fp32 -> bf16 rounds to
// nearest even (__float2bfloat16_rn), bf16 -> fp32 is exact.
void copy(void* stream, uint16_t* dst, const float* src, int64_t n);
void copy(void* stream, float* dst, const uint16_t* src, int64_t n);
void copy(void* stream, uint16_t* dst, const uint16_t* src, int64_t n);

void embedding_forward(void* stream, float* out, const int32_t* tokens, const float* wte, int64_t N, int64_t V, int64_t C);
void embedding_backward(void* stream, float* dwte, const float* dout, const int32_t* tokens, int64_t N, int64_t V, int64_t C);

void rmsnorm_forward(void* stream, float* out, float* rstd, const float* in, const float* weight, int64_t N, int64_t C, float eps);
void rmsnorm_backward(void* stream, float* din, float* dweight, const float* dout, const float* in, const float* weight,
                      const float* rstd, int64_t N, int64_t C);

void matmul_forward(void* stream, float* out, const float* in, const float* weight, const float* bias, int64_t N, int64_t IC,
                    int64_t OC);
void matmul_backward(void* stream, float* din, float* dweight, float* dbias, const float* dout, const float* in,
                     const float* weight, int64_t N, int64_t IC, int64_t OC);

void rope_forward(void* stream, float* x, const int32_t* positions, int64_t N, int64_t heads, int64_t D, float theta);
void rope_backward(void* stream, float* dx, const int32_t* positions, int64_t N, int64_t heads, int64_t D, float theta);

void attention_forward(void* stream, const attn::ForwardArgs& a);
void attention_backward(void* stream, const attn::BackwardArgs& a);

void swiglu_forward(void* stream, float* out, const float* gate, const float* up, int64_t n);
void swiglu_backward(void* stream, float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n);

void logsoftmax_forward(void* stream, float* logprob, float* entropy, float* lse, const float* logits, const int32_t* targets,
                        int64_t N, int64_t V, float inv_temperature);
void logsoftmax_backward(void* stream, float* logits, const float* dlogprob, const float* lse, const int32_t* targets, int64_t N,
                         int64_t V, float inv_temperature);
void topk_entropy(void* stream, float* entropy, const float* logits, int64_t N, int64_t V, int k);
void argmax(void* stream, int32_t* out, const float* logits, int64_t N, int64_t V);

void adamw_update(void* stream, float* params, const float* grads, float* m, float* v, int64_t n, const ops::AdamWSettings& s);
double sum_squares(void* stream, const float* x, int64_t n);
void sum_into(void* stream, float* out, const float* x, int64_t n);  // *out = sum of x, no host sync

}  // namespace rpt::cuda
