// The rows of the GRPO update (rl/grpo.cpp): how a batch of rollouts becomes the token
// batches of the policy's forward and backward, with each group's prompt either shared
// by its responses (packed rows with attention segments, kernels/ops.h) or repeated per
// response, and where each response's log-probs and coefficients sit in them.
#pragma once

#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/transformer.h"
#include "rl/rollout.h"

namespace rpt {

// One training row of the update: a group's prompt and the responses packed behind it.
// With a shared prompt (PromptLayout::shared) the row is
//   prompt[0 .. P-2] | prompt[P-1] resp_1[0 .. r1-2] | prompt[P-1] resp_2[0 .. r2-2] | ...
// the first part seen by every response (segment id 0), each later part one response
// (ids 1, 2, ...) that sees only the prompt and itself, at RoPE positions P-1, P, ... as
// if it were alone. The last prompt token is repeated per response because the logits
// it produces predict that response's first token. Without sharing a row holds one
// response and is the plain causal sequence prompt + response[0 .. r-2].
struct PackedRow {
    int group = 0;
    std::vector<int> slots;  // the responses in this row, in slot order
};

// Where one response's targets sit in a micro-batch.
struct ResponseSpan {
    int slot;
    int row;     // row within the micro-batch
    int begin;   // offset of its first target in the row
    int length;  // response tokens
};

// The host arrays of one forward/backward.
struct MicroBatch {
    int rows = 0, T = 1;
    std::vector<int32_t> tokens, targets, positions, segments;  // (rows, T)
    std::vector<ResponseSpan> spans;
    bool packed = false;  // positions and segments are in use
    PackedLayout layout() const {
        return packed ? PackedLayout{positions.data(), segments.data()} : PackedLayout{};
    }
};

// The update's rows: kept slots in order, a group's responses packed into rows of at most
// max_slots_per_row when the prompt is shared, else one row per response.
std::vector<PackedRow> build_rows(const std::vector<int>& kept_slots, bool share_prompt, int group_size,
                                  int max_slots_per_row);

// Rows [first, first + count) as one right-padded (count, T) batch.
MicroBatch make_micro_batch(const std::vector<PackedRow>& rows, size_t first, size_t count,
                            const std::vector<std::vector<int32_t>>& prompts, const RolloutResult& rollouts);

// Forward FLOPs of a micro-batch: the matmuls of every (padded) token, and attention over
// the (query, key) pairs the kernels compute: each row's prompt triangle, and each
// response against the prompt and itself (keys of other responses are skipped).
double micro_batch_flops(const ModelConfig& config, const MicroBatch& mb);

// Where each response's tokens sit in the batch, (spans, R) i32: entry (m, j) is the
// flat index row * T + begin + j of response m's token j, -1 past its end (the token
// map of ops::gather_tokens / scatter_tokens). R must be at least the longest span.
std::vector<int32_t> response_token_index(const MicroBatch& mb, int R);

}  // namespace rpt
