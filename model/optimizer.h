// AdamW over the flat parameter buffer, with global-norm gradient clipping and the
// warmup + cosine learning-rate schedule. Moments live on the model's device; weight
// decay applies to matrices only (ParameterEntry::weight_decay).
//
// Data parallelism (DESIGN §6): given a Comm of N ranks, step() first averages the
// gradients over the ranks (sum, then x 1/N, so the loss is the global mean when every
// rank normalised its loss by its own equal share; AdamWConfig::sum_gradients when each
// normalised by the global count), then clips by the global norm and updates.
// ZeRO (`zero.level` 1-3, model/zero_runtime.h) shards the moments by the buckets of
// model/zero_shards.h: each rank updates the slices it owns of every bucket from its
// reduce-scattered gradient shard; ZeRO-2 reduces during every backward into that shard
// (the model then holds no gradient buffer), ZeRO-3 leaves the parameters sharded until
// the next forward gathers them. Parameters are fp32 throughout, so they are their own master
// weights; a bf16 model's working copy (Transformer::working_params) is passed to
// step(), which writes it in the same AdamW pass (the other ranks' slices by a rounding
// copy after the gather: the same bits).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "comm/comm.h"
#include "kernels/buffer.h"
#include "kernels/ops.h"
#include "model/parameters.h"
#include "model/zero_runtime.h"
#include "model/zero_shards.h"

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
    // picks the ZeRO level over its ranks (and whether its collectives overlap).
    AdamW(const ParameterLayout& layout, OpContext ctx, Comm* comm = nullptr, ZeroSettings zero = {});

    // One update of `params` with `grads` (P; unused and may be empty under ZeRO-2/3,
    // whose gradients are the runtime's shard) at learning rate `lr`; returns the global
    // gradient norm before clipping (after averaging over ranks). Increments
    // steps_taken(). Collective over the comm's ranks. `grads` is left averaged (without
    // ZeRO) or unspecified (with ZeRO). A non-finite norm throws naming the step, or
    // with config.skip_nonfinite returns it without touching parameters or moments.
    // `working` (P, bf16, optional) receives the updated params rounded to bf16. When the
    // model sharded its parameters (ZeroRuntime::sharded) the update writes the runtime's
    // shard instead, and `params` / `working` (the model's params().flat and
    // working_params(): the shard or a gathered full copy) are not written.
    double step(const Tensor& params, const Tensor& grads, float lr, const AdamWConfig& config,
                const Tensor& working = {});

    // The same update of parameters held in shard layout (model/zero_parameters.h):
    // `params_shard` (shard_size) fp32 and `working_shard` (shard_size, bf16, optional)
    // are this rank's slices, updated in place; nothing is gathered. ZeRO only (a
    // logic_error without it); `grads` as in step(). Not collective beyond step()'s
    // reductions; leaves the runtime's state alone (a caller that keeps its own shard).
    double step_shard(const Tensor& params_shard, const Tensor& grads, float lr, const AdamWConfig& config,
                      const Tensor& working_shard = {});

    int64_t steps_taken() const { return steps_; }
    void set_steps_taken(int64_t steps) { steps_ = steps; }
    int64_t parameter_count() const { return layout_.total(); }  // P
    Comm* comm() const { return comm_; }
    int zero_level() const { return zero_.level; }
    bool sharded() const { return zero_.level >= 1; }
    // The ZeRO hooks for the model (Transformer::set_zero_hooks); null without ZeRO.
    ZeroRuntime* zero_runtime() const { return runtime_.get(); }
    // How the moments are laid out: this rank's slices of the buckets (one rank: the
    // flat buffer itself, without ZeRO).
    const ZeroShards& shards() const { return shards_; }
    const Tensor& m() const { return m_view_; }  // (shard_size) first moments of this rank's shard
    const Tensor& v() const { return v_view_; }  // (shard_size) second moments
    // ZeRO-2/3: every backward is a round of collectives, so a trainer whose ranks may run
    // different numbers of backwards this step says how many this rank runs, before the
    // first (collective; ZeroRuntime::agree_backward_rounds). No-op otherwise.
    void agree_backward_rounds(int local_backwards) {
        if (runtime_) runtime_->agree_backward_rounds(local_backwards);
    }

    // The full (P) moments in host memory on every rank; collective under ZeRO (an
    // all-gather), so every rank must call it. Checkpoints store these, so a run resumes
    // on any number of ranks.
    void moments_to_host(std::vector<float>& m, std::vector<float>& v) const;
    // Takes this rank's shard of full (P) host moments. Not collective.
    void load_moments(const float* m, const float* v);
    // Takes this rank's shard itself (shard_size host floats each, laid out by
    // shards(): a checkpoint streams just the owned ranges). Not collective.
    void load_moment_shard(const float* m, const float* v);

private:
    // One step's kernel settings, and where the parameters sit.
    struct UpdateSettings {
        ops::AdamWSettings adamw;
        float weight_decay = 0.0f;  // matrices only (ParameterEntry::weight_decay)
        bool shard_layout = false;  // params/working in shard layout (else flat, P)
    };
    // The step up to the update: reduces and averages the gradients into `shard_grads`
    // (shard layout), takes the global `norm`, refuses a non-finite one (nullopt with
    // skip_nonfinite), clips, and counts the step.
    std::optional<UpdateSettings> prepare_update(const Tensor& grads, float lr, const AdamWConfig& config,
                                                 Tensor& shard_grads, double& norm);
    // The AdamW kernel over one owned range, one call per tensor piece (decay differs
    // between matrices and norms/biases). `grads` and the moments are in shard layout
    // (the range's shard_offset holds its first element); the parameters as `u` says.
    void update_range(const Tensor& params, const Tensor& grads, const Tensor& working, const OwnedRange& own,
                      const UpdateSettings& u);

    const ParameterLayout& layout_;
    OpContext ctx_;
    Comm* comm_ = nullptr;
    ZeroSettings zero_;
    std::unique_ptr<ZeroRuntime> runtime_;  // levels 1-3
    ZeroShards shards_;  // the runtime's, or one rank's (the flat layout) without ZeRO
    Buffer m_;           // (shard_size) fp32
    Buffer v_;           // (shard_size) fp32
    Tensor m_view_, v_view_;
    int64_t steps_ = 0;
};

// sqrt(sum of squares) of a gradient buffer.
double global_norm(const OpContext& ctx, const Tensor& grads);

}  // namespace rpt
