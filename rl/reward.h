// The prefix-matching reward (DESIGN §1, paper eq. 3), prepared for the on-device
// kernel: the tokenizer's byte table lives on the device once; per batch, each
// context's ground truth is the UTF-8 bytes of the document from position t on and the
// cumulative byte lengths of the document's own tokens (L_gt, never re-tokenised).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/buffer.h"
#include "kernels/rl_ops.h"
#include "model/tokenizer.h"
#include "rl/templates.h"

namespace rpt {

// Where a context's continuation starts: doc tokens [position, ...).
struct TruthSpan {
    const std::vector<int32_t>* doc = nullptr;
    size_t position = 0;
};

struct RewardResult {
    std::vector<float> rewards;            // (S)
    std::vector<int32_t> prediction_len;   // (S) bytes, -1 = no prediction found
};

class RewardScorer {
public:
    // Every response is decoded whole: `max_response_bytes` (response_byte_capacity of
    // rl/response_bytes.h) bounds what a response may decode to, and a longer one is an
    // error, never a truncation. The ground truth is the document from t on, as far as
    // the batch's longest response could reach (so no prediction is cut short by it);
    // `truth_tokens` > 0 caps it at that many tokens, and a prediction longer than the
    // cap then earns 0. 0: no cap. `kind`: eq. 3 or an Appendix A variant (kernels/rl_ops.h).
    RewardScorer(const Tokenizer& tokenizer, const PromptTemplate& format, OpContext ctx, int truth_tokens,
                 int max_response_bytes, ops::RewardKind kind = ops::RewardKind::prefix);
    // token_logprobs (S, per response token): the sampler's log-probs
    // (RolloutResult::sampler_logprobs), required by the dense kinds.
    RewardResult score(const std::vector<std::vector<int32_t>>& responses, const std::vector<TruthSpan>& truths,
                       int group_size, const std::vector<std::vector<float>>* token_logprobs = nullptr) const;
    ops::RewardKind kind() const { return kind_; }

private:
    const Tokenizer& tokenizer_;
    PromptTemplate format_;
    OpContext ctx_;
    int truth_tokens_;
    int max_response_bytes_;
    ops::RewardKind kind_;
    std::vector<int32_t> token_len_;  // (V) bytes of each token
    Buffer table_;       // token_offsets (V+1) i32, then token_bytes u8
    Tensor offsets_, bytes_;
};

}  // namespace rpt
