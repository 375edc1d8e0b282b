#include "rl/reward.h"

#include <algorithm>
#include <stdexcept>

namespace rpt {

RewardScorer::RewardScorer(const Tokenizer& tokenizer, const PromptTemplate& format, OpContext ctx, int truth_tokens,
                           int max_response_bytes)
    : tokenizer_(tokenizer),
      format_(format),
      ctx_(ctx),
      truth_tokens_(truth_tokens),
      max_response_bytes_(max_response_bytes) {
    const int32_t V = tokenizer.vocab_size();
    std::vector<int32_t> offsets(size_t(V) + 1, 0);
    std::string all;
    for (int32_t id = 0; id < V; ++id) {
        const std::string b = tokenizer.token_bytes(id);
        max_token_bytes_ = std::max(max_token_bytes_, int(b.size()));
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
                                 const std::vector<TruthSpan>& truths, int group_size) const {
    const int S = int(responses.size()), B = int(truths.size());
    if (S != B * group_size) throw std::invalid_argument("reward: responses must be contexts x group size");
    int R = 1;
    for (const auto& r : responses) R = std::max<int>(R, int(r.size()));
    const int K = std::max(1, truth_tokens_);
    const int Lmax = K * std::max(1, max_token_bytes_);

    std::vector<int32_t> resp(size_t(S) * R, 0), resp_len(static_cast<size_t>(S));
    for (int s = 0; s < S; ++s) {
        std::copy(responses[s].begin(), responses[s].end(), resp.begin() + int64_t(s) * R);
        resp_len[s] = int32_t(responses[s].size());
    }
    std::vector<uint8_t> truth(size_t(B) * Lmax, 0);
    std::vector<int32_t> truth_len(static_cast<size_t>(B)), bounds(size_t(B) * K, 0), bound_count(static_cast<size_t>(B));
    for (int b = 0; b < B; ++b) {
        const auto& doc = *truths[b].doc;
        int32_t len = 0, count = 0;
        for (size_t i = truths[b].position; i < doc.size() && count < K; ++i) {
            const std::string tb = tokenizer_.token_bytes(doc[i]);
            std::copy(tb.begin(), tb.end(), truth.begin() + int64_t(b) * Lmax + len);
            len += int32_t(tb.size());
            bounds[size_t(b) * K + size_t(count++)] = len;
        }
        truth_len[b] = len;
        bound_count[b] = count;
    }

    // Device staging: one buffer for the whole batch.
    const size_t n_i32 = size_t(S) * R + size_t(S) * 3 + size_t(B) * (2 + K);
    Buffer staging(ctx_.device, n_i32 * 4 + truth.size(), "reward inputs");
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
    const Tensor t_truth = staging.view(DType::u8, at, {B, Lmax});
    copy_from_host(t_resp, resp.data());
    copy_from_host(t_resp_len, resp_len.data());
    copy_from_host(t_truth_len, truth_len.data());
    copy_from_host(t_bounds, bounds.data());
    copy_from_host(t_bound_count, bound_count.data());
    copy_from_host(t_truth, truth.data());
    const ops::RewardInputs inputs{t_resp, t_resp_len, offsets_, bytes_, t_truth, t_truth_len, t_bounds, t_bound_count};
    ops::prefix_reward(ctx_, t_rewards, t_pred_len, inputs, group_size, format_.reward_format(max_response_bytes_));
    RewardResult out;
    out.rewards.resize(static_cast<size_t>(S));
    out.prediction_len.resize(static_cast<size_t>(S));
    copy_to_host(out.rewards.data(), t_rewards);
    copy_to_host(out.prediction_len.data(), t_pred_len);
    return out;
}

}  // namespace rpt
