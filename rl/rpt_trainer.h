// The RPT training loop (DESIGN §1): sample contexts from filtered positions, roll out G
// responses each over a shared-prefix KV cache, score them with the prefix-matching
// reward, and take a GRPO step. Checkpoints and resume like pre-training; a progress
// line and one JSONL record per step.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "model/optimizer.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "rl/dynamic_sampling.h"
#include "rl/grpo.h"
#include "rl/positions.h"
#include "rl/templates.h"

namespace rpt {

struct RptOptions {
    int contexts = 16;          // B contexts per step
    int group_size = 8;         // G rollouts per context
    int max_new_tokens = 8;     // response budget (reasoning + answer)
    int context_tokens = 64;    // left context shown
    int truth_tokens = 0;       // cap on the ground-truth tokens kept for the reward (0: none, see RewardScorer)
    ops::RewardKind reward = ops::RewardKind::prefix;  // eq. 3, or an Appendix A variant
    float temperature = 0.8f;
    float top_p = 1.0f;
    int top_k = 0;
    bool dynamic_sampling = false;  // drop all-equal groups and refill (DAPO), every step
    int64_t dynamic_sampling_from = 0;  // > 0: dynamic sampling from this step on (rl/dynamic_sampling.h)
    int max_refill_rounds = kDefaultMaxRefillRounds;  // refill rounds per step at most (rl/dynamic_sampling.h)
    GrpoSettings grpo;
    AdamWConfig adamw;
    int64_t steps = 100;
    int64_t stop_at = 0;        // > 0: stop (and checkpoint) after this step; resume later
    int64_t warmup_steps = 0;
    float min_lr_ratio = 1.0f;  // 1: constant after warmup
    uint64_t seed = 1;
    size_t kv_budget_bytes = size_t(4) << 30;
    KvDType kv_dtype = KvDType::automatic;  // cached K/V: auto = bf16 on the GPU, f32 on the CPU
    int kv_block_tokens = kDefaultKvBlockTokens;  // tokens per block of the paged KV cache
    std::string out_dir;
    // A resumed run's checkpoint: its reference.safetensors is the KL term's frozen
    // reference (the policy the run started from). Empty: the policy as passed in.
    std::string resume_dir;
    std::string metrics_path;
    int64_t checkpoint_every = 0;
    int64_t log_every = 1;
    bool quiet = false;
};

struct RptStepRecord {
    int64_t step = 0;
    double reward_mean = 0;
    double all_equal_fraction = 0;  // groups whose G rewards are all equal
    int64_t groups_drawn = 0;       // groups sampled, refills included, all ranks
    double format_rate = 0;         // responses with a prediction in format
    double response_len = 0;        // mean tokens per response
    double reasoning_len = 0;       // mean tokens before the think-close marker
    double traces_correct = 0;      // of traces with equations, the share whose every equation holds
    GrpoStats grpo;
    double lr = 0;
    double rollout_tokens_per_s = 0, train_tokens_per_s = 0;
    double seconds_rollout = 0, seconds_reward = 0, seconds_update = 0;
    double seconds_rollout_bookkeeping = 0;  // of seconds_rollout: the active set's host work
    int64_t decode_rows = 0;        // rows through decode steps, all ranks
    // This rank's KV cache at its largest over the step's rollout rounds (the paged pool
    // follows the live tokens): bytes allocated (prefix + blocks), and blocks in use.
    size_t kv_peak_bytes = 0;
    int64_t kv_peak_blocks = 0;
    double flops = 0;               // this step's FLOPs (rollout + update)
};

// Called after every step (e.g. the demo's periodic evaluation); may add fields.
using RptStepHook = std::function<void(const RptStepRecord&, nlohmann::json& record)>;

// `docs` indexed by corpus id; `positions` are the training positions (already
// filtered). Trains from state.step to options.steps (or options.stop_at). Contexts and
// samples are keyed by (seed, step, round, context), so a resumed run draws what the
// uninterrupted one would; the KL reference is saved with every checkpoint.
void train_rpt(Transformer& model, AdamW& optimizer, const Tokenizer& tokenizer, const PromptTemplate& format,
               const std::vector<std::vector<int32_t>>& docs, const std::vector<ScoredPosition>& positions,
               const RptOptions& options, TrainerState& state, const RptStepHook& hook = nullptr);

}  // namespace rpt
