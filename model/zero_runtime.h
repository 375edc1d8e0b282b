// ZeRO's communication (DESIGN §6): the per-bucket reduce-scatter of gradients into this
// rank's shard and the per-bucket all-gather of parameters from the ranks' shards, run
// inline or on a CommWorker thread, behind the Transformer's hooks (model/zero_hooks.h).
//
// Levels (ZeroSettings::level):
//   1  moments sharded; the optimizer reduce-scatters every bucket after the backward
//      and all-gathers the parameters after the update.
//   2  + gradients: the backward reduce-scatters each bucket as soon as the layer is done
//      (on the worker thread with `overlap`), into the gradient shard.
//   3  + parameters: the update leaves them sharded; the next forward all-gathers them
//      bucket by bucket, issuing the next bucket's gather ahead (prefetch, with overlap).
// What stays full size in this version: the gradient buffer (P fp32: micro-batches
// accumulate into it locally; the reduction runs in the step's last backward, so every
// level reduces the same sums in the same order and ZeRO-2/3 equal ZeRO-1 bit for bit),
// and under ZeRO-3 the parameter buffer (each bucket is gathered into its own place and
// stays there until the next update). `rpt plan` models exactly these bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "comm/comm.h"
#include "kernels/buffer.h"
#include "kernels/ops.h"
#include "model/comm_worker.h"
#include "model/zero_hooks.h"
#include "model/zero_shards.h"

namespace rpt {

struct ZeroSettings {
    // Implicit from a level (and `true` = ZeRO-1, what the flag meant before levels).
    ZeroSettings(int level_ = 0, bool overlap_ = false) : level(level_), overlap(overlap_) {}
    int level = 0;         // 0 (plain data parallelism) .. 3
    bool overlap = false;  // run the bucket collectives on a communication thread
};

class ZeroRuntime final : public ParameterSource, public GradientSink {
public:
    // `comm` may be null (one process); not owned.
    ZeroRuntime(const ParameterLayout& layout, OpContext ctx, Comm* comm, ZeroSettings settings);
    ~ZeroRuntime() override;

    const ZeroShards& shards() const { return shards_; }
    int level() const { return settings_.level; }
    bool overlapped() const { return worker_ != nullptr; }
    // (shard_size) fp32: this rank's reduce-scattered gradient, padding zero.
    const Tensor& gradient_shard() const { return grad_shard_view_; }

    // ---- gradients ------------------------------------------------------------------
    // ZeRO-2/3: the next backward reduces its buckets as it finishes them (the trainer
    // arms the step's last micro-batch); no-op at level 1.
    void arm_reduction() { armed_ = settings_.level >= 2; }
    void bucket_done(int bucket, const Tensor& grads) override;
    void backward_done() override;
    // Makes gradient_shard() this step's reduced gradient: reduces every bucket inline
    // unless an armed backward already did (a rank without micro-batches still joins the
    // others' collectives here, in the same bucket order).
    void finish_reduction(const Tensor& grads);

    // ---- parameters -----------------------------------------------------------------
    void acquire(int bucket, const Tensor& params, const Tensor& working) override;
    void acquire_all(const Tensor& params, const Tensor& working) override;
    bool resident() const override;
    // After the update wrote this rank's slices: levels 1-2 all-gather every bucket now;
    // level 3 marks them stale for the next acquire.
    void parameters_updated(const Tensor& params, const Tensor& working);

private:
    enum class State { resident, stale, in_flight };
    void reduce_bucket(int bucket, const Tensor& grads);
    void gather_bucket(int bucket, const Tensor& params, const Tensor& working);
    void issue_gather(int bucket, const Tensor& params, const Tensor& working);
    int ranks() const { return shards_.ranks(); }

    OpContext ctx_;
    Comm* comm_ = nullptr;
    ZeroSettings settings_;
    ZeroShards shards_;
    Buffer grad_shard_;  // (shard_size) fp32
    Tensor grad_shard_view_;
    Buffer staging_;     // (max padded bucket) fp32: buckets whose size N does not divide
    bool armed_ = false, reduced_ = false;
    std::vector<State> state_;      // per bucket (ZeRO-3)
    std::vector<int64_t> tickets_;  // per bucket: the worker ticket of its gather in flight
    std::unique_ptr<CommWorker> worker_;  // last: destroyed (drained) first
};

}  // namespace rpt
