// AdamW, single-process, data-parallel and ZeRO 1-3 (see optimizer.h for the scheme).
#include "model/optimizer.h"

#include <algorithm>
#include <cmath>
#include <optional>
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

AdamW::AdamW(const ParameterLayout& layout, OpContext ctx, Comm* comm, ZeroSettings zero)
    : layout_(layout),
      ctx_(ctx),
      comm_(comm),
      zero_(zero),
      runtime_(zero.level >= 1 ? std::make_unique<ZeroRuntime>(layout, ctx, comm, zero) : nullptr),
      shards_(runtime_ ? runtime_->shards() : ZeroShards(layout, 1, 0)) {
    if (zero.level < 0 || zero.level > 3)
        throw std::invalid_argument(fmt::format("--zero {}: the ZeRO level is 0, 1, 2 or 3", zero.level));
    const int64_t n = shards_.shard_size();
    m_ = Buffer(ctx.device, size_t(n) * sizeof(float), "AdamW first moments");
    v_ = Buffer(ctx.device, size_t(n) * sizeof(float), "AdamW second moments");
    m_view_ = m_.view(DType::f32, 0, {n});
    v_view_ = v_.view(DType::f32, 0, {n});
}

void AdamW::update_range(const Tensor& params, const Tensor& grads, const Tensor& working, const OwnedRange& own,
                         const UpdateSettings& u) {
    ops::AdamWSettings s = u.adamw;
    // Intersect every tensor with the owned range: decay stays per tensor inside shards.
    for (const ParameterEntry& e : layout_.entries()) {
        const int64_t begin = std::max(e.offset, own.begin);
        const int64_t end = std::min(e.offset + e.numel, own.end);
        if (begin >= end) continue;
        const int64_t at = own.shard_offset + (begin - own.begin), n = end - begin;
        // Where this piece's parameters sit: the flat offset, or the shard one.
        const int64_t p = u.shard_layout ? at : begin;
        s.weight_decay = e.weight_decay ? u.weight_decay : 0.0f;
        ops::adamw_update(ctx_, params.rows(p, p + n), grads.rows(at, at + n), m_view_.rows(at, at + n),
                          v_view_.rows(at, at + n), s, working.empty() ? Tensor{} : working.rows(p, p + n));
    }
}

std::optional<AdamW::UpdateSettings> AdamW::prepare_update(const Tensor& grads, float lr, const AdamWConfig& config,
                                                            Tensor& shard_grads, double& norm) {
    const int N = comm_size(comm_);
    if (!runtime_) {
        if (N > 1 && config.sum_gradients) comm_->allreduce_sum(grads);
        else if (N > 1) comm_->allreduce_avg(grads);
        norm = global_norm(ctx_, grads);
        shard_grads = grads;
    } else {
        runtime_->finish_reduction(grads);
        shard_grads = runtime_->gradient_shard();
        if (N > 1 && !config.sum_gradients) ops::scale(ctx_, shard_grads, 1.0f / float(N));
        // Padding is zero, so the shards' sums of squares add up to the global one.
        double sum_squares = ops::sum_squares(ctx_, shard_grads);
        if (comm_) comm_->allreduce_sum_host(&sum_squares, 1);
        norm = std::sqrt(sum_squares);
    }
    // A NaN or inf gradient would poison the moments for good: refuse before touching
    // them. The norm is global, so every rank takes the same branch.
    if (!std::isfinite(norm)) {
        if (config.skip_nonfinite) return std::nullopt;
        throw std::runtime_error(fmt::format("step {}: gradient norm is {} (no update applied)", steps_ + 1, norm));
    }
    float grad_scale = 1.0f;
    if (config.max_grad_norm > 0 && norm > config.max_grad_norm)
        grad_scale = float(config.max_grad_norm / (norm + kClipEpsilon));
    ++steps_;
    UpdateSettings u;
    u.adamw.lr = lr;
    u.adamw.beta1 = config.beta1;
    u.adamw.beta2 = config.beta2;
    u.adamw.eps = config.eps;
    u.adamw.step = steps_;
    u.adamw.grad_scale = grad_scale;
    u.weight_decay = config.weight_decay;
    return u;
}

double AdamW::step(const Tensor& params, const Tensor& grads, float lr, const AdamWConfig& config,
                   const Tensor& working) {
    Tensor shard_grads;  // the averaged gradient in shard layout (the full buffer without ZeRO)
    double norm = 0;
    // Sharded ZeRO-3 (Transformer::shard_parameters): the update writes the runtime's
    // shard; `params` (the model's params().flat: that shard, or the full copy a
    // whole-model reader gathered, which the update makes stale) is not written.
    const bool shard_layout = runtime_ && runtime_->sharded();
    if (!shard_layout && params.numel() != layout_.total())
        throw std::invalid_argument(fmt::format("AdamW::step: {} parameters, want P = {}", params.numel(),
                                                layout_.total()));
    std::optional<UpdateSettings> u = prepare_update(grads, lr, config, shard_grads, norm);
    if (!u) return norm;
    u->shard_layout = shard_layout;
    const Tensor target = shard_layout ? runtime_->parameter_shard() : params;
    const Tensor target_working = shard_layout ? Tensor{} : working;
    for (int b = 0; b < shards_.bucket_count(); ++b)
        update_range(target, shard_grads, target_working, shards_.owned(b), *u);
    // Every rank now holds its updated slices: gather them (ZeRO-3: at the next forward;
    // sharded: into the slots, by each acquire).
    if (runtime_) runtime_->parameters_updated(params, working);
    return norm;
}

double AdamW::step_shard(const Tensor& params_shard, const Tensor& grads, float lr, const AdamWConfig& config,
                         const Tensor& working_shard) {
    if (!runtime_) throw std::logic_error("AdamW::step_shard without ZeRO (the parameters are not sharded)");
    if (params_shard.numel() != shards_.shard_size())
        throw std::invalid_argument(fmt::format("AdamW::step_shard: {} parameters, the shard holds {}",
                                                params_shard.numel(), shards_.shard_size()));
    Tensor shard_grads;
    double norm = 0;
    const std::optional<UpdateSettings> u = prepare_update(grads, lr, config, shard_grads, norm);
    if (!u) return norm;
    UpdateSettings shard = *u;
    shard.shard_layout = true;
    for (int b = 0; b < shards_.bucket_count(); ++b)
        update_range(params_shard, shard_grads, working_shard, shards_.owned(b), shard);
    return norm;  // nothing to gather: the next reader gathers from the shards
}

void AdamW::moments_to_host(std::vector<float>& m, std::vector<float>& v) const {
    const int64_t P = layout_.total();
    m.resize(size_t(P));
    v.resize(size_t(P));
    if (shards_.ranks() == 1) {  // the shard layout is the flat one
        copy_to_host(m.data(), m_view_.rows(0, P));
        copy_to_host(v.data(), v_view_.rows(0, P));
        return;
    }
    // Bucket by bucket: all-gather the padded host slices, then drop the padding.
    std::vector<float> shard(size_t(shards_.shard_size())), padded;
    for (auto [dst, src] : {std::pair{&m, &m_view_}, std::pair{&v, &v_view_}}) {
        copy_to_host(shard.data(), *src);
        for (const ZeroBucket& k : shards_.buckets()) {
            padded.assign(size_t(k.padded), 0.0f);
            const int64_t slot = int64_t(shards_.rank()) * k.slice;
            std::copy_n(shard.data() + k.shard_offset, size_t(k.slice), padded.data() + slot);
            const Tensor all = cpu_f32(padded.data(), {k.padded});
            comm_->all_gather(all.rows(slot, slot + k.slice), all);
            std::copy_n(padded.data(), size_t(k.size()), dst->data() + k.begin);
        }
    }
}

void AdamW::load_moments(const float* m, const float* v) {
    // Cut this rank's slices out of the full moments; the padding stays zero.
    std::vector<float> ms(size_t(shards_.shard_size()), 0.0f), vs(ms.size(), 0.0f);
    for (int b = 0; b < shards_.bucket_count(); ++b) {
        const OwnedRange own = shards_.owned(b);
        std::copy(m + own.begin, m + own.end, ms.data() + own.shard_offset);
        std::copy(v + own.begin, v + own.end, vs.data() + own.shard_offset);
    }
    load_moment_shard(ms.data(), vs.data());
}

void AdamW::load_moment_shard(const float* m, const float* v) {
    copy_from_host(m_view_, m);
    copy_from_host(v_view_, v);
}

}  // namespace rpt
