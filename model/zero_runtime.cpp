// Per-bucket ZeRO collectives, inline or on the communication thread (zero_runtime.h).
#include "model/zero_runtime.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include <fmt/format.h>

#include "model/zero_parameters.h"

namespace rpt {

ZeroRuntime::ZeroRuntime(const ParameterLayout& layout, OpContext ctx, Comm* comm, ZeroSettings settings)
    : ctx_(ctx),
      comm_(comm),
      settings_(settings),
      shards_(layout, comm ? comm->size() : 1, comm ? comm->rank() : 0),
      grad_shard_(ctx.device, size_t(shards_.shard_size()) * sizeof(float), "ZeRO gradient shard"),
      grad_shard_view_(grad_shard_.view(DType::f32, 0, {shards_.shard_size()})),
      state_(size_t(shards_.bucket_count()), State::resident),
      tickets_(size_t(shards_.bucket_count()), 0) {
    if (settings.level < 1 || settings.level > 3)
        throw std::invalid_argument(fmt::format("ZeRO level {} (the runtime serves levels 1, 2 and 3)", settings.level));
    bool padded = false;
    for (const ZeroBucket& k : shards_.buckets()) padded |= k.padded != k.size();
    if (padded)
        staging_ = Buffer(ctx.device, size_t(shards_.max_padded()) * sizeof(float), "ZeRO bucket staging");
    if (lends_slots()) {
        // The slots of GradientSlotSizes, end to end in one allocation.
        const GradientSlotSizes sizes = shards_.gradient_slots();
        slot_buffer_ = Buffer(ctx.device, size_t(sizes.total()) * sizeof(float), "ZeRO gradient slots");
        size_t at = 0;
        auto carve = [&](int64_t n) {
            const Tensor t = n > 0 ? slot_buffer_.view(DType::f32, at, {n}) : Tensor{};
            at += size_t(n) * sizeof(float);
            return t;
        };
        embedding_slot_ = carve(sizes.embedding);
        for (Tensor& slot : shared_slots_) slot = carve(sizes.layer);
        landing_ = carve(sizes.landing);
    }
    // Overlap needs a second thread in MPI; without it the same collectives run inline.
    if (settings.overlap && ranks() > 1) {
        if (comm->allows_worker_thread()) worker_ = std::make_unique<CommWorker>();
        else if (comm->is_root())
            std::fprintf(stderr, "--overlap-reduce: MPI gives no MPI_THREAD_SERIALIZED; the bucket collectives run "
                                 "inline (same results, no overlap)\n");
    }
}

ZeroRuntime::~ZeroRuntime() = default;

void ZeroRuntime::reduce_bucket(int bucket, const Tensor& grads) {
    const ZeroBucket& k = shards_.buckets()[size_t(bucket)];
    Tensor in = grads.rows(k.begin, k.end);
    const Tensor out = grad_shard_view_.rows(k.shard_offset, k.shard_offset + k.slice);
    if (ranks() == 1) {
        ops::copy(ctx_, out, in);
        return;
    }
    if (k.padded != k.size()) {
        // N equal slices: stage with a zero tail (zeros add nothing to the sums or norm).
        const Tensor staged = staging_.view(DType::f32, 0, {k.padded});
        ops::copy(ctx_, staged.rows(0, k.size()), in);
        ops::fill(ctx_, staged.rows(k.size(), k.padded), 0.0f);
        in = staged;
    }
    comm_->reduce_scatter_sum(in, out);
}

void ZeroRuntime::gather_bucket(int bucket, const Tensor& params, const Tensor& working) {
    const ZeroBucket& k = shards_.buckets()[size_t(bucket)];
    if (ranks() > 1) {
        const int64_t slot = int64_t(shards_.rank()) * k.slice;
        if (k.padded == k.size()) {
            comm_->all_gather(params.rows(k.begin + slot, k.begin + slot + k.slice), params.rows(k.begin, k.end));
        } else {
            const Tensor staged = staging_.view(DType::f32, 0, {k.padded});
            const OwnedRange own = shards_.owned(bucket);
            const int64_t n = own.end - own.begin;
            if (n > 0) ops::copy(ctx_, staged.rows(slot, slot + n), params.rows(own.begin, own.end));
            if (n < k.slice) ops::fill(ctx_, staged.rows(slot + n, slot + k.slice), 0.0f);
            comm_->all_gather(staged.rows(slot, slot + k.slice), staged);
            ops::copy(ctx_, params.rows(k.begin, k.end), staged.rows(0, k.size()));
        }
    }
    // The other ranks' slices arrived as fp32: round them into the working copy (the own
    // slice's rounding is the same bits the update wrote).
    if (!working.empty()) ops::copy(ctx_, working.rows(k.begin, k.end), params.rows(k.begin, k.end));
}

// ---- gradients ----------------------------------------------------------------------

// The backward runs the head (rotation 0, unless it takes the embedding's slot), then
// layers L-1 .. 0 (rotations 1 .. L): consecutive buckets alternate between the two
// shared slots. kSharedSlots stands for the embedding's slot.
int ZeroRuntime::rotation_of(int bucket) const {
    const int head = shards_.bucket_count() - 1;
    if (bucket == embedding_bucket() || (bucket == head && shards_.head_in_embedding_slot())) return kSharedSlots;
    return (head - bucket) % kSharedSlots;
}

Tensor ZeroRuntime::slot_of(int bucket) const {
    const int64_t padded = shards_.buckets()[size_t(bucket)].padded;
    const int rotation = rotation_of(bucket);
    return (rotation == kSharedSlots ? embedding_slot_ : shared_slots_[rotation]).rows(0, padded);
}

GradientSlot ZeroRuntime::gradient_slot(int bucket) {
    if (!lends_slots()) throw std::logic_error("ZeroRuntime::gradient_slot below ZeRO-2 (the model keeps its buffer)");
    // The slot may still be on its way to the other ranks (a layer slot: the bucket two
    // before; the embedding's: an untied head's).
    if (worker_) worker_->wait(slot_tickets_[rotation_of(bucket)]);
    const Tensor slot = slot_of(bucket);
    ops::fill(ctx_, slot, 0.0f);  // the backward accumulates (dW += ...); the padding stays zero
    const ZeroBucket& k = shards_.buckets()[size_t(bucket)];
    return {slot.rows(0, k.size()), k.begin};
}

void ZeroRuntime::reduce_slot(int bucket) {
    const ZeroBucket& k = shards_.buckets()[size_t(bucket)];
    const Tensor out = grad_shard_view_.rows(k.shard_offset, k.shard_offset + k.slice);
    const Tensor slot = slot_of(bucket);
    if (ranks() == 1) {
        ops::add(ctx_, out, out, slot);
        return;
    }
    const Tensor landed = landing_.rows(0, k.slice);
    comm_->reduce_scatter_sum(slot, landed);
    ops::add(ctx_, out, out, landed);
}

void ZeroRuntime::bucket_done(int bucket) {
    if (!lends_slots()) return;  // level 1: the optimizer reduces the model's buffer
    if (worker_) {
        const int64_t ticket = worker_->submit([this, bucket] { reduce_slot(bucket); });
        slot_tickets_[rotation_of(bucket)] = ticket;
    } else {
        reduce_slot(bucket);
    }
}

void ZeroRuntime::backward_done() {
    if (!lends_slots()) return;
    if (worker_) worker_->wait_all();  // before any other MPI call, or the next backward
    ++rounds_done_;
}

void ZeroRuntime::zero_gradients() {
    if (!lends_slots()) return;
    if (worker_) worker_->wait_all();
    ops::fill(ctx_, grad_shard_view_, 0.0f);
    rounds_done_ = 0;
}

void ZeroRuntime::agree_backward_rounds(int local_backwards) {
    if (!lends_slots() || ranks() == 1) return;
    // The most of any rank: each rank adds its count at its own index.
    std::vector<int64_t> counts(size_t(ranks()), 0);
    counts[size_t(shards_.rank())] = local_backwards;
    comm_->allreduce_sum_host(counts.data(), counts.size());
    rounds_agreed_ = int(*std::max_element(counts.begin(), counts.end()));
}

void ZeroRuntime::finish_reduction(const Tensor& grads) {
    if (worker_) worker_->wait_all();
    if (!lends_slots()) {
        // The backward reports the head first and the embedding last: reduce in that order.
        for (int b = shards_.bucket_count() - 1; b >= 0; --b) reduce_bucket(b, grads);
        return;
    }
    if (rounds_agreed_ >= 0 && rounds_done_ > rounds_agreed_)
        throw std::logic_error(fmt::format("ZeRO: this rank ran {} backwards after agreeing on at most {}",
                                           rounds_done_, rounds_agreed_));
    // The others' extra backwards: the same collectives, in the same bucket order, of zeros.
    for (int round = rounds_done_; round < rounds_agreed_; ++round) {
        for (int b = shards_.bucket_count() - 1; b >= 0; --b) {
            (void)gradient_slot(b);
            bucket_done(b);
        }
        backward_done();
    }
    if (worker_) worker_->wait_all();
    rounds_done_ = 0;
    rounds_agreed_ = -1;  // the next step agrees afresh
}

// ---- parameters ---------------------------------------------------------------------

void ZeroRuntime::issue_gather(int bucket, const Tensor& params, const Tensor& working) {
    if (worker_) {
        tickets_[size_t(bucket)] = worker_->submit([=] { gather_bucket(bucket, params, working); });
        state_[size_t(bucket)] = State::in_flight;
    } else {
        gather_bucket(bucket, params, working);
        state_[size_t(bucket)] = State::resident;
    }
}

void ZeroRuntime::acquire(int bucket, const Tensor& params, const Tensor& working) {
    if (slots_) throw std::logic_error("ZeroRuntime::acquire: the parameters are sharded (acquire_slot)");
    State& s = state_.at(size_t(bucket));
    if (s == State::stale) issue_gather(bucket, params, working);
    if (s == State::in_flight) {
        worker_->wait(tickets_[size_t(bucket)]);
        s = State::resident;
    }
    // Prefetch: the next bucket's gather runs while this one's layer computes.
    const int next = bucket + 1;
    if (worker_ && next < shards_.bucket_count() && state_[size_t(next)] == State::stale)
        issue_gather(next, params, working);
}

void ZeroRuntime::acquire_all(const Tensor& params, const Tensor& working) {
    for (int b = 0; b < shards_.bucket_count(); ++b) acquire(b, params, working);
}

bool ZeroRuntime::resident() const {
    if (slots_) return false;  // only one bucket at a time is ever whole
    for (State s : state_)
        if (s != State::resident) return false;
    return true;
}

void ZeroRuntime::parameters_updated(const Tensor& params, const Tensor& working) {
    if (worker_) worker_->wait_all();
    if (slots_) {  // the shard itself was updated: nothing to gather, the slots are stale
        slots_->invalidate();
        ++generation_;
        return;
    }
    if (settings_.level >= 3) {
        for (State& s : state_) s = State::stale;
        return;
    }
    for (int b = 0; b < shards_.bucket_count(); ++b) gather_bucket(b, params, working);
}

// ---- sharded parameters ----------------------------------------------------------------

void ZeroRuntime::shard_parameters(const Tensor& shard, bool bf16) {
    if (settings_.level < 3)
        throw std::logic_error(fmt::format("shard_parameters at ZeRO-{} (parameters are sharded from ZeRO-3)",
                                           settings_.level));
    if (worker_) worker_->wait_all();
    slots_ = std::make_unique<ParameterSlots>(shards_, ctx_, comm_, worker_.get(), shard, bf16);
}

BucketWeights ZeroRuntime::acquire_slot(int bucket, int prefetch) {
    if (!slots_) throw std::logic_error("ZeroRuntime::acquire_slot before shard_parameters");
    return slots_->acquire(bucket, prefetch);
}

size_t ZeroRuntime::parameter_slot_bytes() const { return slots_ ? slots_->bytes() : 0; }

void ZeroRuntime::gather_all_into(const Tensor& full) {
    if (!slots_) throw std::logic_error("ZeroRuntime::gather_all_into before shard_parameters");
    if (worker_) worker_->wait_all();  // the collectives below run on this thread
    gather_full(ctx_, shards_, comm_, slots_->shard(), full, staging_.bytes() ? staging_.view(DType::f32, 0, {shards_.max_padded()}) : Tensor{});
}

}  // namespace rpt
