// The device side of the GRPO update's policy loss (rl/grpo.cpp). Per micro-batch the
// responses' log-probs are gathered from the models' per-token outputs, the loss and its
// coefficients computed (ops::policy_loss) and scattered back into the dL/dlogprob the
// backward consumes, and the statistics summed (ops::sum_into), all on the device. A
// micro-batch costs one upload (its token map, mask and advantages) and no readback; a
// pass reads its statistics back once (take_sums). The behaviour log-probs of the first
// pass stay on the device for the later passes.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/buffer.h"
#include "kernels/rl_ops.h"
#include "model/transformer.h"
#include "rl/update_rows.h"

namespace rpt {

// The largest sizes the update's micro-batches reach (what the buffer is sized for).
struct PolicyLossShape {
    int R = 1;                      // the longest response: the width of per-response arrays
    int64_t kept_responses = 0;     // of all micro-batches: rows of the behaviour log-probs
    int max_responses = 0;          // of one micro-batch
    int64_t max_tokens = 0;         // rows * T of one micro-batch
    int micro_batches = 0;
};

// A pass's statistics, summed over its micro-batches (this rank's).
struct PolicyLossSums {
    double loss = 0;     // of the weighted token losses: the pass's loss on this rank
    double entropy = 0;  // over response tokens, when the pass recorded it (the first)
    double clipped = 0;  // response tokens on the clipped branch (the last pass)
    double kl = 0;       // k3 over response tokens (the last pass)
};

class PolicyLossDevice {
public:
    PolicyLossDevice(const OpContext& ctx, const PolicyLossShape& shape);

    // Starts a pass: its statistics start from zero.
    void begin_pass();
    // Uploads micro-batch `mb` of the pass (its responses' token map and mask, and their
    // advantages): the one upload of the micro-batch.
    void load(int mb_index, const MicroBatch& mb, const std::vector<float>& advantages);
    // After the reference's forward of this micro-batch: its log-probs of the responses.
    void gather_reference(const Transformer& reference);
    // After the policy's forward: its log-probs of the responses; on the first pass also
    // recorded as the behaviour log-probs of responses [done, done + M), and the entropy
    // summed (the forward computed it).
    void gather_policy(const Transformer& policy, bool first, int64_t done);
    // The loss of the micro-batch against the behaviour log-probs of [done, done + M), with
    // (`with_reference`) or without the KL term's reference log-probs; returns dL/dlogprob
    // (rows * T) for the policy's backward. `last` records clipping and KL.
    const Tensor& coefficients(const ops::PolicyLossSettings& loss, bool with_reference, bool last, int64_t done);
    // The pass's sums over the micro-batches loaded since begin_pass: one readback.
    PolicyLossSums take_sums();

private:
    // The slots of one micro-batch's statistics (kSlots per micro-batch, in this order).
    enum class Stat : int { loss, entropy, clipped, kl, count };
    static constexpr int kSlots = int(Stat::count);
    Tensor stat_slot(Stat stat) const;

    OpContext ctx_;
    PolicyLossShape shape_;
    Buffer buffer_;
    // Carved once at the largest sizes; a micro-batch of M responses and N tokens uses
    // the first M rows (N elements).
    Tensor logp_old_;  // (kept, R) the behaviour log-probs, from the first pass
    Tensor inputs_;    // (2 * Mmax * R + Mmax) i32: the uploaded index | mask | advantages
    Tensor logp_, logp_ref_, entropy_;               // (Mmax, R)
    Tensor coef_, token_loss_, clipped_, kl_;        // (Mmax, R)
    Tensor dlogprob_;  // (max_tokens) the backward's input
    Tensor sums_;      // (micro_batches, kSlots) f32
    // The loaded micro-batch: views into inputs_ and its sizes.
    Tensor index_, mask_, advantages_;  // (M, R) i32, (M, R) f32, (M) f32
    Tensor dlogprob_view_;              // (N)
    int M_ = 0, mb_index_ = 0, loaded_ = 0;
    int64_t N_ = 0;
    std::vector<int32_t> host_inputs_;  // the upload's host image
};

}  // namespace rpt
