// AdamW over the flat parameter buffer, with global-norm gradient clipping and the
// warmup + cosine learning-rate schedule. Moments live on the model's device in one
// buffer each; weight decay applies to matrices only (ParameterEntry::weight_decay).
#pragma once

#include <cstdint>

#include "kernels/buffer.h"
#include "kernels/ops.h"
#include "model/parameters.h"

namespace rpt {

struct AdamWConfig {
    float lr = 1e-3f;  // peak learning rate
    float beta1 = 0.9f;
    float beta2 = 0.999f;
    float eps = 1e-8f;
    float weight_decay = 0.0f;
    float max_grad_norm = 1.0f;  // <= 0 disables clipping
};

// Linear warmup to `peak` over `warmup` steps, then cosine decay to `peak * min_ratio`
// at `total` steps. `step` is 1-based.
float cosine_lr(int64_t step, int64_t warmup, int64_t total, float peak, float min_ratio);

class AdamW {
public:
    AdamW(const ParameterLayout& layout, OpContext ctx);

    // One update of `params` with `grads` at learning rate `lr`; returns the global
    // gradient norm before clipping. Increments step().
    double step(const Tensor& params, const Tensor& grads, float lr, const AdamWConfig& config);

    int64_t steps_taken() const { return steps_; }
    void set_steps_taken(int64_t steps) { steps_ = steps; }
    const Tensor& m() const { return m_view_; }  // (P) first moments
    const Tensor& v() const { return v_view_; }  // (P) second moments

private:
    const ParameterLayout& layout_;
    OpContext ctx_;
    Buffer m_;
    Buffer v_;
    Tensor m_view_, v_view_;
    int64_t steps_ = 0;
};

// sqrt(sum of squares) of a gradient buffer.
double global_norm(const OpContext& ctx, const Tensor& grads);

}  // namespace rpt
