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
    // `truth_tokens` bounds the ground truth kept per context (a prediction longer than
    // that many tokens cannot be verified and earns 0).
    RewardScorer(const Tokenizer& tokenizer, const PromptTemplate& format, OpContext ctx, int truth_tokens,
                 int max_response_bytes);
    RewardResult score(const std::vector<std::vector<int32_t>>& responses, const std::vector<TruthSpan>& truths,
                       int group_size) const;

private:
    const Tokenizer& tokenizer_;
    PromptTemplate format_;
    OpContext ctx_;
    int truth_tokens_;
    int max_response_bytes_;
    int max_token_bytes_ = 0;
    Buffer table_;       // token_offsets (V+1) i32, then token_bytes u8
    Tensor offsets_, bytes_;
};

}  // namespace rpt
