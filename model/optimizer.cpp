// AdamW, single-process, data-parallel and ZeRO-1 (see optimizer.h for the scheme).
#include "model/optimizer.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace rpt {
namespace {

constexpr double kClipEpsilon = 1e-6;  // as torch.nn.utils.clip_grad_norm_
constexpr double kPi = 3.14159265358979323846;

int comm_size(const Comm* comm) { return comm ? comm->size() : 1; }

}  // namespace

float cosine_lr(int64_t step, int64_t warmup, int64_t total, float peak, float min_ratio) {
    if (warmup > 0 && step <= warmup) return peak * float(step) / float(warmup);
    if (total <= warmup) return peak;
    const double progress = std::clamp(double(step - warmup) / double(total - warmup), 0.0, 1.0);
    const double cosine = 0.5 * (1.0 + std::cos(kPi * progress));
    return float(peak * (min_ratio + (1.0 - min_ratio) * cosine));
}

double global_norm(const OpContext& ctx, const Tensor& grads) { return std::sqrt(ops::sum_squares(ctx, grads)); }

AdamW::AdamW(const ParameterLayout& layout, OpContext ctx, Comm* comm, bool zero)
    : layout_(layout), ctx_(ctx), comm_(comm), zero_(zero) {
    const int64_t P = layout.total();
    const int N = comm_size(comm);
    if (zero_) {
        shard_size_ = (P + N - 1) / N;
        const int r = comm ? comm->rank() : 0;
        shard_begin_ = std::min(P, int64_t(r) * shard_size_);
        shard_end_ = std::min(P, shard_begin_ + shard_size_);
        grad_shard_ = Buffer(ctx.device, size_t(shard_size_) * sizeof(float), "ZeRO gradient shard");
        if (shard_size_ * N != P)
            padded_ = Buffer(ctx.device, size_t(shard_size_ * N) * sizeof(float), "ZeRO padded flat buffer");
    } else {
        shard_size_ = P;
        shard_end_ = P;
    }
    m_ = Buffer(ctx.device, size_t(shard_size_) * sizeof(float), "AdamW first moments");
    v_ = Buffer(ctx.device, size_t(shard_size_) * sizeof(float), "AdamW second moments");
    m_view_ = m_.view(DType::f32, 0, {shard_size_});
    v_view_ = v_.view(DType::f32, 0, {shard_size_});
}

void AdamW::update_range(const Tensor& params, const Tensor& grads, const Tensor& working, int64_t grad_origin,
                         ops::AdamWSettings s, float weight_decay) {
    // Intersect every tensor with this rank's shard: decay stays per tensor inside shards.
    for (const ParameterEntry& e : layout_.entries()) {
        const int64_t begin = std::max(e.offset, shard_begin_);
        const int64_t end = std::min(e.offset + e.numel, shard_end_);
        if (begin >= end) continue;
        s.weight_decay = e.weight_decay ? weight_decay : 0.0f;
        ops::adamw_update(ctx_, params.rows(begin, end), grads.rows(begin - grad_origin, end - grad_origin),
                          m_view_.rows(begin - shard_begin_, end - shard_begin_),
                          v_view_.rows(begin - shard_begin_, end - shard_begin_), s,
                          working.empty() ? Tensor{} : working.rows(begin, end));
    }
}

double AdamW::step(const Tensor& params, const Tensor& grads, float lr, const AdamWConfig& config,
                   const Tensor& working) {
    const int N = comm_size(comm_);
    const int64_t P = layout_.total();
    Tensor shard_grads;  // the averaged gradient of [shard_begin_, shard_end_)
    double norm = 0;
    if (!zero_) {
        if (N > 1 && config.sum_gradients) comm_->allreduce_sum(grads);
        else if (N > 1) comm_->allreduce_avg(grads);
        norm = global_norm(ctx_, grads);
        shard_grads = grads;
    } else {
        Tensor source = grads;
        if (padded_.data()) {
            // Exchanges need N equal shards: stage through the padded buffer (tail is zero).
            source = padded_.view(DType::f32, 0, {shard_size_ * N});
            ops::copy(ctx_, source.rows(0, P), grads);
        }
        shard_grads = grad_shard_.view(DType::f32, 0, {shard_size_});
        if (comm_) comm_->reduce_scatter_sum(source, shard_grads);
        else ops::copy(ctx_, shard_grads, source);
        if (N > 1 && !config.sum_gradients) ops::scale(ctx_, shard_grads, 1.0f / float(N));
        // Padding is zero, so the shards' sums of squares add up to the global one.
        double sum_squares = ops::sum_squares(ctx_, shard_grads);
        if (comm_) comm_->allreduce_sum_host(&sum_squares, 1);
        norm = std::sqrt(sum_squares);
    }
    // A NaN or inf gradient would poison the moments for good: refuse before touching
    // them. The norm is global, so every rank takes the same branch.
    if (!std::isfinite(norm)) {
        if (config.skip_nonfinite) return norm;
        throw std::runtime_error(fmt::format("step {}: gradient norm is {} (no update applied)", steps_ + 1, norm));
    }
    float grad_scale = 1.0f;
    if (config.max_grad_norm > 0 && norm > config.max_grad_norm)
        grad_scale = float(config.max_grad_norm / (norm + kClipEpsilon));
    ++steps_;
    ops::AdamWSettings s;
    s.lr = lr;
    s.beta1 = config.beta1;
    s.beta2 = config.beta2;
    s.eps = config.eps;
    s.step = steps_;
    s.grad_scale = grad_scale;
    if (!zero_) {
        update_range(params, shard_grads, working, 0, s, config.weight_decay);
        return norm;
    }
    update_range(params, shard_grads, working, shard_begin_, s, config.weight_decay);
    if (!comm_ || N == 1) return norm;
    // Every rank now holds its updated shard: gather them all (in place when unpadded).
    if (!padded_.data()) {
        comm_->all_gather(params.rows(shard_begin_, shard_begin_ + shard_size_), params);
    } else {
        const Tensor padded = padded_.view(DType::f32, 0, {shard_size_ * N});
        if (shard_end_ > shard_begin_)
            ops::copy(ctx_, padded.rows(shard_begin_, shard_end_), params.rows(shard_begin_, shard_end_));
        const int64_t slot = int64_t(comm_->rank()) * shard_size_;
        comm_->all_gather(padded.rows(slot, slot + shard_size_), padded);
        ops::copy(ctx_, params, padded.rows(0, P));
    }
    // The other ranks' shards arrived as fp32: round them into the working copy too.
    if (!working.empty()) ops::copy(ctx_, working, params);
    return norm;
}

void AdamW::moments_to_host(std::vector<float>& m, std::vector<float>& v) const {
    const int64_t P = layout_.total();
    const int N = comm_size(comm_);
    if (!zero_ || N == 1) {
        m.resize(size_t(P));
        v.resize(size_t(P));
        copy_to_host(m.data(), m_view_.rows(0, P));
        copy_to_host(v.data(), v_view_.rows(0, P));
        return;
    }
    // All-gather the padded host shards, then drop the padding.
    const int64_t padded = shard_size_ * N, slot = int64_t(comm_->rank()) * shard_size_;
    for (auto [dst, src] : {std::pair{&m, &m_view_}, std::pair{&v, &v_view_}}) {
        dst->assign(size_t(padded), 0.0f);
        copy_to_host(dst->data() + slot, *src);
        const Tensor all = cpu_f32(dst->data(), {padded});
        comm_->all_gather(all.rows(slot, slot + shard_size_), all);
        dst->resize(size_t(P));
    }
}

void AdamW::load_moments(const float* m, const float* v) {
    // The padding past P stays zero.
    const int64_t n = shard_end_ - shard_begin_;
    if (n == 0) return;
    copy_from_host(m_view_.rows(0, n), m + shard_begin_);
    copy_from_host(v_view_.rows(0, n), v + shard_begin_);
}

}  // namespace rpt
