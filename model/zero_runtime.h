// ZeRO's communication (DESIGN §6): the per-bucket reduce-scatter of gradients into this
// rank's shard and the per-bucket all-gather of parameters from the ranks' shards, run
// inline or on a CommWorker thread, behind the Transformer's hooks (model/zero_hooks.h).
//
// Levels (ZeroSettings::level):
//   1  moments sharded; the model keeps a full (P) gradient buffer, micro-batches
//      accumulate into it, and the optimizer reduce-scatters every bucket of it after
//      the step's last backward, then all-gathers the parameters after the update.
//   2  + gradients: the model holds no gradient buffer. The backward writes each bucket
//      into a slot lent here (GradientSlotSizes: the embedding's, which a tied head
//      writes first and the embedding last, or an untied head first and the embedding
//      again at the end; two rotating slots of the largest layer for the layers, so that
//      with `overlap` one is reduced on the worker thread while the next layer writes
//      the other), and every backward
//      reduce-scatters each bucket as soon as its layer is done, ADDING it to the fp32
//      shard (zeroed by zero_gradients). Per rank: P/N + the slots, not P.
//   3  + parameters: the update leaves them sharded; the next forward all-gathers them
//      bucket by bucket, issuing the next bucket's gather ahead (prefetch, with overlap).
// Summation order: levels 2-3 sum over ranks first, then over micro-batches (ZeRO-0/1:
// micro-batches first), so with more than one micro-batch per rank they equal ZeRO-1
// within fp32 rounding, not bit for bit (one micro-batch per rank: bit for bit, since
// 0 + x = x). Every backward is a round of collectives, so all ranks must run the same
// number per step: a trainer whose ranks may differ (GRPO) calls agree_backward_rounds
// before the first backward, and finish_reduction makes up the difference with rounds
// of zero slots in the same bucket order (a rank without micro-batches runs them all).
// What stays full size in this version: under ZeRO-3 the parameter buffer (each bucket
// is gathered into its own place and stays there until the next update). `rpt plan`
// models exactly these bytes. A model that calls Transformer::shard_parameters keeps only
// its shard plus three gather slots instead (shard_parameters below), and its
// whole-model readers (checkpoint writes, rollouts, evaluation) gather one temporary
// full copy per rollout batch. That path is opt-in, not yet `--zero 3`'s: the CLI and
// trainers do not call it, loading weights into a sharded model is not served, and
// `rpt plan` does not count it.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "comm/comm.h"
#include "kernels/buffer.h"
#include "kernels/ops.h"
#include "model/comm_worker.h"
#include "model/zero_parameter_slots.h"
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

    // ---- gradients (GradientSink) ----------------------------------------------------
    bool lends_slots() const override { return settings_.level >= 2; }
    GradientSlot gradient_slot(int bucket) override;
    void bucket_done(int bucket) override;
    void backward_done() override;
    void zero_gradients() override;
    // The shard and the slots (at level 1 the shard alone, beside the model's buffer).
    size_t gradient_bytes() const override { return grad_shard_.bytes() + slot_buffer_.bytes(); }
    // ZeRO-2/3 on several ranks: agrees with the other ranks on the most backwards any of
    // them runs this step (collective: every rank calls it, before its first backward).
    // No-op at level 1 or on one rank.
    void agree_backward_rounds(int local_backwards);
    // Makes gradient_shard() this step's reduced gradient. Level 1: reduces every bucket
    // of the model's `grads` (P) now. Levels 2-3 (`grads` unused): the rounds this rank
    // still owes the others (agree_backward_rounds), reducing zeros.
    void finish_reduction(const Tensor& grads);

    // ---- parameters -----------------------------------------------------------------
    void acquire(int bucket, const Tensor& params, const Tensor& working) override;
    void acquire_all(const Tensor& params, const Tensor& working) override;
    bool resident() const override;
    // After the update wrote this rank's slices: levels 1-2 all-gather every bucket now;
    // level 3 marks them stale for the next acquire (sharded: invalidates the slots).
    void parameters_updated(const Tensor& params, const Tensor& working);

    // ---- sharded parameters (ZeRO-3, opt-in: Transformer::shard_parameters) -------------
    // From now on the model keeps only `shard` (shard_size fp32, its slices in shard
    // layout; not owned, stays in place): the forward and backward read every bucket from
    // the gather slots (model/zero_parameter_slots.h, bf16 twins when `bf16`), the
    // optimizer updates the shard (AdamW::step), and nothing is ever gathered in place.
    // Level 3 only (std::logic_error otherwise).
    void shard_parameters(const Tensor& shard, bool bf16);
    bool sharded() const override { return slots_ != nullptr; }
    BucketWeights acquire_slot(int bucket, int prefetch) override;
    size_t parameter_slot_bytes() const override;
    // (shard_size) fp32: the model's shard, which AdamW::step updates (empty unless sharded).
    Tensor parameter_shard() const { return slots_ ? slots_->shard() : Tensor{}; }
    // How many times the shard changed (parameters_updated): a full copy gathered at
    // another generation is stale.
    int64_t parameter_generation() const { return generation_; }
    // full (P) fp32 = every rank's shard: the whole-model readers' temporary copy
    // (Transformer::gather_parameters on a sharded model). Collective.
    void gather_all_into(const Tensor& full);

private:
    enum class State { resident, stale, in_flight };
    void reduce_bucket(int bucket, const Tensor& grads);  // level 1: from the model's buffer
    void reduce_slot(int bucket);                         // levels 2-3: added to the shard
    void gather_bucket(int bucket, const Tensor& params, const Tensor& working);
    void issue_gather(int bucket, const Tensor& params, const Tensor& working);
    int ranks() const { return shards_.ranks(); }
    // The padded slot bucket b is written into (levels 2-3), and its rotation index
    // (kSharedSlots: the embedding's slot).
    Tensor slot_of(int bucket) const;
    int rotation_of(int bucket) const;

    static constexpr int kSharedSlots = 2;
    OpContext ctx_;
    Comm* comm_ = nullptr;
    ZeroSettings settings_;
    ZeroShards shards_;
    Buffer grad_shard_;  // (shard_size) fp32
    Tensor grad_shard_view_;
    Buffer staging_;     // (max padded bucket) fp32: buckets whose size N does not divide
    // Levels 2-3: the slots of GradientSlotSizes in one allocation.
    Buffer slot_buffer_;
    Tensor embedding_slot_;                 // (GradientSlotSizes::embedding)
    Tensor shared_slots_[kSharedSlots];     // (GradientSlotSizes::layer) each
    Tensor landing_;                        // (largest slice), several ranks only
    int64_t slot_tickets_[kSharedSlots + 1] = {};  // the worker ticket of each slot's last reduction
    int rounds_done_ = 0;    // backwards reduced since the last finish_reduction
    int rounds_agreed_ = -1;  // the most of any rank this step, -1 if not agreed (all equal)
    std::vector<State> state_;      // per bucket (ZeRO-3)
    std::vector<int64_t> tickets_;  // per bucket: the worker ticket of its gather in flight
    int64_t generation_ = 0;
    std::unique_ptr<ParameterSlots> slots_;  // sharded ZeRO-3 only; its gathers run on worker_
    std::unique_ptr<CommWorker> worker_;  // last: destroyed (drained) first
};

}  // namespace rpt
