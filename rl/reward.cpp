#include "rl/reward.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "kernels/host_sync.h"

namespace rpt {
namespace {

// The ground truth of a batch in the kernel's layout (shapes in kernels/rl_ops.h).
struct TruthTable {
    int Lmax = 1, K = 1;
    std::vector<uint8_t> bytes;                 // (B, Lmax)
    std::vector<int32_t> len, bounds, count;    // (B), (B, K), (B)
};

// Each context's continuation from t on, token by token, until it covers `reach` bytes
// (no prediction can be longer) or the document ends, or after `cap` tokens when cap > 0.
TruthTable build_truths(const Tokenizer& tokenizer, const std::vector<TruthSpan>& truths, int reach, int cap) {
    const size_t B = truths.size();
    std::vector<std::vector<int32_t>> kept(B);
    TruthTable t;
    t.len.assign(B, 0);
    t.count.assign(B, 0);
    for (size_t b = 0; b < B; ++b) {
        const auto& doc = *truths[b].doc;
        int32_t len = 0;
        for (size_t i = truths[b].position; i < doc.size() && len < reach; ++i) {
            if (cap > 0 && int(kept[b].size()) >= cap) break;
            kept[b].push_back(doc[i]);
            len += int32_t(tokenizer.token_bytes(doc[i]).size());
        }
        t.len[b] = len;
        t.count[b] = int32_t(kept[b].size());
        t.Lmax = std::max(t.Lmax, int(len));
        t.K = std::max(t.K, int(kept[b].size()));
    }
    t.bytes.assign(B * size_t(t.Lmax), 0);
    t.bounds.assign(B * size_t(t.K), 0);
    for (size_t b = 0; b < B; ++b) {
        int32_t at = 0;
        for (size_t k = 0; k < kept[b].size(); ++k) {
            const std::string& tb = tokenizer.token_bytes(kept[b][k]);
            std::copy(tb.begin(), tb.end(), t.bytes.begin() + int64_t(b) * t.Lmax + at);
            at += int32_t(tb.size());
            t.bounds[b * size_t(t.K) + k] = at;
        }
    }
    return t;
}

}  // namespace

RewardScorer::RewardScorer(const Tokenizer& tokenizer, const PromptTemplate& format, OpContext ctx, int truth_tokens,
                           int max_response_bytes, ops::RewardKind kind)
    : tokenizer_(tokenizer),
      format_(format),
      ctx_(ctx),
      truth_tokens_(truth_tokens),
      max_response_bytes_(max_response_bytes),
      kind_(kind) {
    if (max_response_bytes <= 0) throw std::invalid_argument("reward: max_response_bytes must be positive");
    const int32_t V = tokenizer.vocab_size();
    std::vector<int32_t> offsets(size_t(V) + 1, 0);
    std::string all;
    token_len_.resize(size_t(V));
    for (int32_t id = 0; id < V; ++id) {
        const std::string b = tokenizer.token_bytes(id);
        token_len_[size_t(id)] = int32_t(b.size());
        all += b;
        offsets[size_t(id) + 1] = int32_t(all.size());
    }
    const size_t offset_bytes = offsets.size() * sizeof(int32_t);
    table_ = Buffer(ctx.device, offset_bytes + std::max<size_t>(1, all.size()), "token byte table");
    offsets_ = table_.view(DType::i32, 0, {int64_t(offsets.size())});
    bytes_ = table_.view(DType::u8, offset_bytes, {int64_t(std::max<size_t>(1, all.size()))});
    copy_from_host(offsets_, offsets.data());
    if (!all.empty()) copy_from_host(bytes_.rows(0, int64_t(all.size())), all.data());
}

RewardResult RewardScorer::score(const std::vector<std::vector<int32_t>>& responses,
                                 const std::vector<TruthSpan>& truths, int group_size,
                                 const std::vector<std::vector<float>>* token_logprobs) const {
    const int S = int(responses.size()), B = int(truths.size());
    if (S != B * group_size) throw std::invalid_argument("reward: responses must be contexts x group size");

    // Responses, and the bytes the longest decodes to: the kernel's buffer holds it whole.
    int R = 1, longest = 1;
    for (const auto& r : responses) {
        R = std::max<int>(R, int(r.size()));
        int64_t n = 0;
        for (int32_t t : r) n += t >= 0 && t < int32_t(token_len_.size()) ? token_len_[size_t(t)] : 0;
        if (n > max_response_bytes_)
            throw std::invalid_argument(fmt::format("reward: a response of {} tokens decodes to {} bytes, more than "
                                                    "the {} the scorer was sized for (--max-new-tokens)",
                                                    r.size(), n, max_response_bytes_));
        longest = std::max(longest, int(n));
    }
    std::vector<int32_t> resp(size_t(S) * R, 0), resp_len(static_cast<size_t>(S));
    for (int s = 0; s < S; ++s) {
        std::copy(responses[s].begin(), responses[s].end(), resp.begin() + int64_t(s) * R);
        resp_len[s] = int32_t(responses[s].size());
    }
    const TruthTable truth = build_truths(tokenizer_, truths, longest, truth_tokens_);
    const int Lmax = truth.Lmax, K = truth.K;

    // Device staging: one buffer for the whole batch (the GPU's decode scratch included
    // when a response outgrows shared memory).
    const bool needs_scratch = ctx_.device == DeviceKind::cuda && longest > ops::kMaxSharedResponseBytes;
    const size_t scratch_bytes = needs_scratch ? size_t(S) * size_t(longest) : 0;
    const size_t n_i32 = size_t(S) * R + size_t(S) * 3 + size_t(B) * (2 + K);
    const bool dense = kind_ == ops::RewardKind::dense || kind_ == ops::RewardKind::conditional_dense;
    const size_t n_f32 = dense ? size_t(S) * R : 0;
    Buffer staging(ctx_.device, (n_i32 + n_f32) * 4 + truth.bytes.size() + scratch_bytes, "reward inputs");
    size_t at = 0;
    auto carve_i32 = [&](std::initializer_list<int64_t> shape) {
        Tensor t = staging.view(DType::i32, at, shape);
        at += t.nbytes();
        return t;
    };
    const Tensor t_resp = carve_i32({S, R}), t_resp_len = carve_i32({S}), t_pred_len = carve_i32({S});
    const Tensor t_truth_len = carve_i32({B}), t_bounds = carve_i32({B, K}), t_bound_count = carve_i32({B});
    const Tensor t_rewards = staging.view(DType::f32, at, {S});
    at += t_rewards.nbytes();
    const Tensor t_logprobs = dense ? staging.view(DType::f32, at, {S, R}) : Tensor();
    at += t_logprobs.empty() ? 0 : t_logprobs.nbytes();
    const Tensor t_truth = staging.view(DType::u8, at, {B, Lmax});
    at += t_truth.nbytes();
    const Tensor t_scratch = needs_scratch ? staging.view(DType::u8, at, {S, longest}) : Tensor();
    copy_from_host(ctx_, t_resp, resp.data());
    copy_from_host(ctx_, t_resp_len, resp_len.data());
    copy_from_host(ctx_, t_truth_len, truth.len.data());
    copy_from_host(ctx_, t_bounds, truth.bounds.data());
    copy_from_host(ctx_, t_bound_count, truth.count.data());
    copy_from_host(ctx_, t_truth, truth.bytes.data());
    if (dense) {
        if (!token_logprobs || token_logprobs->size() != responses.size())
            throw std::invalid_argument(
                "reward: the dense rewards need the sampler's log-prob of every response token");
        std::vector<float> lp(size_t(S) * R, 0.0f);
        for (int s = 0; s < S; ++s) {
            const auto& l = (*token_logprobs)[size_t(s)];
            if (l.size() != responses[size_t(s)].size())
                throw std::invalid_argument("reward: one log-prob per response token expected");
            std::copy(l.begin(), l.end(), lp.begin() + int64_t(s) * R);
        }
        copy_from_host(ctx_, t_logprobs, lp.data());
    }
    const ops::RewardInputs inputs{t_resp,      t_resp_len, offsets_,      bytes_,    t_truth,
                                   t_truth_len, t_bounds,   t_bound_count, t_scratch, t_logprobs};
    ops::RewardFormat reward_format = format_.reward_format(longest);
    reward_format.kind = kind_;
    ops::prefix_reward(ctx_, t_rewards, t_pred_len, inputs, group_size, reward_format);
    RewardResult out;
    out.rewards.resize(static_cast<size_t>(S));
    out.prediction_len.resize(static_cast<size_t>(S));
    copy_to_host(ctx_, out.rewards.data(), t_rewards);
    copy_to_host(ctx_, out.prediction_len.data(), t_pred_len);
    return out;
}

}  // namespace rpt
