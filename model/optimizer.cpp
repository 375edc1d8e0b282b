#include "model/optimizer.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace rpt {
namespace {

constexpr double kClipEpsilon = 1e-6;  // as torch.nn.utils.clip_grad_norm_
constexpr double kPi = 3.14159265358979323846;

}  // namespace

float cosine_lr(int64_t step, int64_t warmup, int64_t total, float peak, float min_ratio) {
    if (warmup > 0 && step <= warmup) return peak * float(step) / float(warmup);
    if (total <= warmup) return peak;
    const double progress = std::clamp(double(step - warmup) / double(total - warmup), 0.0, 1.0);
    const double cosine = 0.5 * (1.0 + std::cos(kPi * progress));
    return float(peak * (min_ratio + (1.0 - min_ratio) * cosine));
}

double global_norm(const OpContext& ctx, const Tensor& grads) { return std::sqrt(ops::sum_squares(ctx, grads)); }

AdamW::AdamW(const ParameterLayout& layout, OpContext ctx)
    : layout_(layout),
      ctx_(ctx),
      m_(ctx.device, size_t(layout.total()) * sizeof(float), "AdamW first moments"),
      v_(ctx.device, size_t(layout.total()) * sizeof(float), "AdamW second moments"),
      m_view_(m_.view(DType::f32, 0, {layout.total()})),
      v_view_(v_.view(DType::f32, 0, {layout.total()})) {}

double AdamW::step(const Tensor& params, const Tensor& grads, float lr, const AdamWConfig& config) {
    const double norm = global_norm(ctx_, grads);
    // A NaN or inf gradient would poison the moments for good: refuse before touching them.
    if (!std::isfinite(norm))
        throw std::runtime_error(fmt::format("step {}: gradient norm is {} (no update applied)", steps_ + 1, norm));
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
    // One call per tensor: decay differs between matrices and norms/biases.
    for (const ParameterEntry& e : layout_.entries()) {
        s.weight_decay = e.weight_decay ? config.weight_decay : 0.0f;
        const int64_t end = e.offset + e.numel;
        ops::adamw_update(ctx_, params.rows(e.offset, end), grads.rows(e.offset, end), m_view_.rows(e.offset, end),
                          v_view_.rows(e.offset, end), s);
    }
    return norm;
}

}  // namespace rpt
