// AdamW over the flat parameter buffer, with global-norm gradient clipping and the
// warmup + cosine learning-rate schedule. Moments live on the model's device; weight
// decay applies to matrices only (ParameterEntry::weight_decay).
//
// Data parallelism (DESIGN §6): given a Comm of N ranks, step() first averages the
// gradients over the ranks (sum, then x 1/N, so the loss is the global mean when every
// rank normalised its loss by its own equal share; AdamWConfig::sum_gradients when each
// normalised by the global count), then clips by the global norm and updates.
// With ZeRO-1 (`zero`), each rank keeps the moments of one contiguous shard of the flat
// buffer only: gradients are reduce-scattered, each rank updates its shard, and the
// parameters are all-gathered. Parameters are fp32 throughout, so they are their own
// master weights; a bf16 model's working copy (Transformer::working_params) is passed to
// step(), which writes it in the same AdamW pass (after the all-gather under ZeRO, by a
// rounding copy: the same bits). Shards are ceil(P / N) elements (the buffer is padded
// to N shards).
#pragma once

#include <cstdint>
#include <vector>

#include "comm/comm.h"
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
    // A NaN/inf gradient norm skips the update (step() returns the norm, steps_taken()
    // does not advance) instead of throwing.
    bool skip_nonfinite = false;
    // Across ranks, sum the gradients instead of averaging them: for losses each rank
    // already normalised by a global count (e.g. GRPO's tokens over all ranks).
    bool sum_gradients = false;
};

// Linear warmup to `peak` over `warmup` steps, then cosine decay to `peak * min_ratio`
// at `total` steps. `step` is 1-based.
float cosine_lr(int64_t step, int64_t warmup, int64_t total, float peak, float min_ratio);

class AdamW {
public:
    // `comm` (not owned, may be null = one process) must outlive the optimizer; `zero`
    // shards the moments over its ranks.
    AdamW(const ParameterLayout& layout, OpContext ctx, Comm* comm = nullptr, bool zero = false);

    // One update of `params` with `grads` at learning rate `lr`; returns the global
    // gradient norm before clipping (after averaging over ranks). Increments
    // steps_taken(). Collective over the comm's ranks. `grads` is left averaged (without
    // ZeRO) or unspecified (with ZeRO). A non-finite norm throws naming the step, or
    // with config.skip_nonfinite returns it without touching parameters or moments.
    // `working` (P, bf16, optional) receives the updated params rounded to bf16.
    double step(const Tensor& params, const Tensor& grads, float lr, const AdamWConfig& config,
                const Tensor& working = {});

    int64_t steps_taken() const { return steps_; }
    void set_steps_taken(int64_t steps) { steps_ = steps; }
    int64_t parameter_count() const { return layout_.total(); }  // P
    Comm* comm() const { return comm_; }
    bool sharded() const { return zero_; }
    // This rank's shard [begin, end) of the flat buffer (everything without ZeRO).
    int64_t shard_begin() const { return shard_begin_; }
    int64_t shard_end() const { return shard_end_; }
    const Tensor& m() const { return m_view_; }  // first moments of this rank's shard
    const Tensor& v() const { return v_view_; }  // second moments of this rank's shard

    // The full (P) moments in host memory on every rank; collective under ZeRO (an
    // all-gather), so every rank must call it. Checkpoints store these, so a run resumes
    // on any number of ranks.
    void moments_to_host(std::vector<float>& m, std::vector<float>& v) const;
    // Takes this rank's shard of full (P) host moments. Not collective.
    void load_moments(const float* m, const float* v);

private:
    // The AdamW kernel over [begin, end) of the flat buffer, one call per tensor piece
    // (decay differs between matrices and norms/biases). `grad_base` holds the gradient
    // of element `grad_origin`, the moments that of element shard_begin_.
    void update_range(const Tensor& params, const Tensor& grads, const Tensor& working, int64_t grad_origin,
                      ops::AdamWSettings s, float weight_decay);

    const ParameterLayout& layout_;
    OpContext ctx_;
    Comm* comm_ = nullptr;
    bool zero_ = false;
    int64_t shard_begin_ = 0, shard_end_ = 0;
    int64_t shard_size_ = 0;  // ceil(P / N) under ZeRO: the padded shard every rank exchanges
    Buffer m_;
    Buffer v_;
    Buffer grad_shard_;  // ZeRO: this rank's reduce-scattered gradient (shard_size_)
    Buffer padded_;      // ZeRO with P % N != 0: the flat buffer padded to N * shard_size_
    Tensor m_view_, v_view_;
    int64_t steps_ = 0;
};

// sqrt(sum of squares) of a gradient buffer.
double global_norm(const OpContext& ctx, const Tensor& grads);

}  // namespace rpt
