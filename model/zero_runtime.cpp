// Per-bucket ZeRO collectives, inline or on the communication thread (zero_runtime.h).
#include "model/zero_runtime.h"

#include <cstdio>
#include <stdexcept>

#include <fmt/format.h>

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

void ZeroRuntime::bucket_done(int bucket, const Tensor& grads) {
    if (!armed_) return;
    if (worker_) worker_->submit([this, bucket, grads] { reduce_bucket(bucket, grads); });
    else reduce_bucket(bucket, grads);
}

void ZeroRuntime::backward_done() {
    if (!armed_) return;
    if (worker_) worker_->wait_all();  // before any other MPI call, or the next backward
    armed_ = false;
    reduced_ = true;
}

void ZeroRuntime::finish_reduction(const Tensor& grads) {
    if (worker_) worker_->wait_all();
    armed_ = false;
    // The backward reports the head first and the embedding last: reduce in that order.
    if (!reduced_)
        for (int b = shards_.bucket_count() - 1; b >= 0; --b) reduce_bucket(b, grads);
    reduced_ = false;  // the next step starts over
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
    for (State s : state_)
        if (s != State::resident) return false;
    return true;
}

void ZeroRuntime::parameters_updated(const Tensor& params, const Tensor& working) {
    if (worker_) worker_->wait_all();
    if (settings_.level >= 3) {
        for (State& s : state_) s = State::stale;
        return;
    }
    for (int b = 0; b < shards_.bucket_count(); ++b) gather_bucket(b, params, working);
}

}  // namespace rpt
