// The GRPO policy loss on the device, micro-batch by micro-batch (policy_loss_device.h).
#include "rl/policy_loss_device.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "kernels/host_sync.h"

namespace rpt {
namespace {

// The buffer's tensors, carved in one order for measuring and for use. The uploaded
// inputs come first, so they start at byte 0 and their per-micro-batch views (whose
// offsets depend on M) are plain offsets into the buffer.
struct Carved {
    Tensor inputs, logp_old, logp, logp_ref, entropy, coef, token_loss, clipped, kl, dlogprob, sums;
};

Carved carve_all(Arena& arena, const PolicyLossShape& s, int slots_per_micro_batch) {
    const int64_t M = std::max(1, s.max_responses), R = s.R;
    Carved c;
    c.inputs = arena.carve(DType::i32, {2 * M * R + M});
    c.logp_old = arena.carve(DType::f32, {std::max<int64_t>(1, s.kept_responses), R});
    for (Tensor* t : {&c.logp, &c.logp_ref, &c.entropy, &c.coef, &c.token_loss, &c.clipped, &c.kl})
        *t = arena.carve(DType::f32, {M, R});
    c.dlogprob = arena.carve(DType::f32, {std::max<int64_t>(1, s.max_tokens)});
    c.sums = arena.carve(DType::f32, {int64_t(std::max(1, s.micro_batches)) * slots_per_micro_batch});
    return c;
}

}  // namespace

PolicyLossDevice::PolicyLossDevice(const OpContext& ctx, const PolicyLossShape& shape) : ctx_(ctx), shape_(shape) {
    if (shape.R < 1) throw std::invalid_argument("policy loss: R must be positive");
    Arena measure(nullptr);
    carve_all(measure, shape, kSlots);
    buffer_ = Buffer(ctx.device, measure.used(), "policy loss");
    Arena arena(&buffer_);
    const Carved c = carve_all(arena, shape, kSlots);
    logp_old_ = c.logp_old;
    logp_ = c.logp;
    logp_ref_ = c.logp_ref;
    entropy_ = c.entropy;
    coef_ = c.coef;
    token_loss_ = c.token_loss;
    clipped_ = c.clipped;
    kl_ = c.kl;
    dlogprob_ = c.dlogprob;
    sums_ = c.sums;
}

Tensor PolicyLossDevice::stat_slot(Stat stat) const {
    const int64_t at = int64_t(mb_index_) * kSlots + int64_t(stat);
    return sums_.rows(at, at + 1);
}

void PolicyLossDevice::begin_pass() {
    ops::fill(ctx_, sums_, 0.0f);  // slots a pass does not record stay zero
    loaded_ = 0;
}

void PolicyLossDevice::load(int mb_index, const MicroBatch& mb, const std::vector<float>& advantages) {
    const int M = int(mb.spans.size());
    const int64_t R = shape_.R, MR = int64_t(M) * R, N = int64_t(mb.rows) * mb.T;
    if (M > shape_.max_responses || N > shape_.max_tokens || mb_index < 0 || mb_index >= shape_.micro_batches)
        throw std::logic_error(fmt::format("policy loss: micro-batch {} ({} responses, {} tokens) beyond the sizes "
                                           "planned ({} micro-batches, {} responses, {} tokens)",
                                           mb_index, M, N, shape_.micro_batches, shape_.max_responses,
                                           shape_.max_tokens));
    M_ = M;
    N_ = N;
    mb_index_ = mb_index;
    ++loaded_;
    // The host image: index (M, R) i32 | mask (M, R) f32 | advantages (M) f32.
    const std::vector<int32_t> index = response_token_index(mb, shape_.R);
    host_inputs_.assign(size_t(2 * MR + M), 0);
    std::copy(index.begin(), index.end(), host_inputs_.begin());
    for (int64_t i = 0; i < MR; ++i) {
        const float mask = index[size_t(i)] >= 0 ? 1.0f : 0.0f;
        std::memcpy(&host_inputs_[size_t(MR + i)], &mask, sizeof(float));
    }
    for (int m = 0; m < M; ++m) {
        const float a = advantages[size_t(mb.spans[size_t(m)].slot)];
        std::memcpy(&host_inputs_[size_t(2 * MR + m)], &a, sizeof(float));
    }
    index_ = buffer_.view(DType::i32, 0, {M, R});
    mask_ = buffer_.view(DType::f32, size_t(MR) * 4, {M, R});
    advantages_ = buffer_.view(DType::f32, size_t(2 * MR) * 4, {M});
    copy_from_host(ctx_, buffer_.view(DType::i32, 0, {2 * MR + M}), host_inputs_.data());
    dlogprob_view_ = dlogprob_.rows(0, N);
}

namespace {
// The model's per-token output of its last forward, checked against the loaded batch.
const Tensor& per_token(const Tensor& t, int64_t N, const char* what) {
    if (t.numel() != N)
        throw std::logic_error(fmt::format("policy loss: the {} holds {} tokens, the micro-batch {}", what,
                                           t.numel(), N));
    return t;
}
}  // namespace

void PolicyLossDevice::gather_reference(const Transformer& reference) {
    ops::gather_tokens(ctx_, logp_ref_.rows(0, M_), per_token(reference.activations().logprob, N_, "reference's log-probs"),
                       index_);
}

void PolicyLossDevice::gather_policy(const Transformer& policy, bool first, int64_t done) {
    const Tensor logp = logp_.rows(0, M_);
    ops::gather_tokens(ctx_, logp, per_token(policy.activations().logprob, N_, "policy's log-probs"), index_);
    if (!first) return;
    if (done + M_ > logp_old_.dim(0))
        throw std::logic_error("policy loss: more responses than the behaviour log-probs were sized for");
    ops::copy(ctx_, logp_old_.rows(done, done + M_), logp);
    const Tensor entropy = entropy_.rows(0, M_);
    ops::gather_tokens(ctx_, entropy, per_token(policy.activations().entropy, N_, "policy's entropies"), index_);
    ops::sum_into(ctx_, stat_slot(Stat::entropy), entropy);  // zero past each response's end
}

const Tensor& PolicyLossDevice::coefficients(const ops::PolicyLossSettings& loss, bool with_reference, bool last,
                                             int64_t done) {
    const Tensor coef = coef_.rows(0, M_), token_loss = token_loss_.rows(0, M_);
    const Tensor clipped = clipped_.rows(0, M_), kl = kl_.rows(0, M_);
    ops::policy_loss(ctx_, coef, token_loss, clipped, kl, logp_.rows(0, M_), logp_old_.rows(done, done + M_),
                     with_reference ? logp_ref_.rows(0, M_) : Tensor{}, advantages_, mask_, loss);
    // Every output is zero past a response's end, so whole-tensor sums are sums over tokens.
    ops::sum_into(ctx_, stat_slot(Stat::loss), token_loss);
    if (last) {
        ops::sum_into(ctx_, stat_slot(Stat::clipped), clipped);
        ops::sum_into(ctx_, stat_slot(Stat::kl), kl);
    }
    // Each coefficient goes back to the token whose log-prob it differentiates.
    ops::fill(ctx_, dlogprob_view_, 0.0f);
    ops::scatter_tokens(ctx_, dlogprob_view_, coef, index_);
    return dlogprob_view_;
}

PolicyLossSums PolicyLossDevice::take_sums() {
    PolicyLossSums out;
    if (loaded_ == 0) return out;
    std::vector<float> host(size_t(sums_.numel()));
    copy_to_host(ctx_, host.data(), sums_);
    for (int mb = 0; mb < shape_.micro_batches; ++mb) {
        const float* s = host.data() + size_t(mb) * kSlots;
        out.loss += s[int(Stat::loss)];
        out.entropy += s[int(Stat::entropy)];
        out.clipped += s[int(Stat::clipped)];
        out.kl += s[int(Stat::kl)];
    }
    return out;
}

}  // namespace rpt
