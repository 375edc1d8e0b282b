// Next-token evaluation on scored positions (DESIGN §1, evaluation): (a) standard —
// the model's argmax next token equals x_t; (b) next-token reasoning — the prefix
// reward of one rollout under the template (greedy, or sampled at a stated
// temperature; with --samples n, n sampled rollouts per position, reported as Random@1,
// their mean reward, and the unbiased Pass@k of rl/pass_at_k.h). Reported per nested
// entropy split.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/kv_cache.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "rl/positions.h"
#include "rl/templates.h"
#include "rl/worked_traces.h"

namespace rpt {

struct EvalOptions {
    int context_tokens = 64;   // left context shown for both modes
    int max_new_tokens = 8;    // reasoning-mode response budget
    bool greedy = true;        // reasoning mode: greedy, else sampled at `temperature`
    float temperature = 0.8f;
    uint64_t seed = 1;
    int batch = 64;            // rollouts per batch: batch / samples positions per forward
    int truth_tokens = 0;      // cap on the ground-truth tokens kept (0: none, see RewardScorer)
    size_t kv_budget_bytes = size_t(4) << 30;
    KvDType kv_dtype = KvDType::automatic;  // of the reasoning-mode rollouts' KV cache
    int kv_block_tokens = kDefaultKvBlockTokens;  // tokens per block of that cache
    bool reasoning = true;     // also run reasoning mode
    int samples = 1;           // reasoning rollouts per position (n); > 1 needs sampling
    int pass_k = 0;            // k of Pass@k, in [1, samples] (0: samples)
};

// What both modes found at one position.
struct PositionOutcome {
    bool standard_hit = false;  // argmax == x_t
    float reward = 0;           // of the reasoning-mode rollouts: their mean
    int samples = 0;            // reasoning-mode rollouts
    int correct = 0;            // of which were rewarded
    int formatted = 0;          // of which had a prediction in format
    // The first rollout's trace: its tokens before the think-close marker, its equation
    // lines checked (rl/worked_traces.h), and the rollout as text.
    int trace_tokens = 0;
    TraceCheck trace;
    std::string response;
};

struct SplitResult {
    const char* name = "";
    float threshold = 0;
    int64_t positions = 0;
    double standard = 0;   // accuracy
    double reasoning = 0;  // mean reward (Random@1 with several samples)
    double format = 0;     // share of rollouts with a prediction in format
    int pass_k = 0;        // k of pass_at_k (0: no reasoning mode)
    double pass_at_k = 0;  // mean over positions of the unbiased Pass@k
    // The reasoning, over this split's rollouts: mean trace length in tokens; of traces
    // with equations, the share whose every equation holds; of rewarded predictions,
    // the share that followed such a trace.
    double trace_tokens = 0;
    double traces_correct = 0;
    double correct_from_trace = 0;
};

struct EvalReport {
    std::vector<SplitResult> splits;  // easy, medium, hard
    std::vector<PositionOutcome> outcomes;  // by position, in the order given
    const SplitResult& easy() const { return splits.at(0); }
    const SplitResult& medium() const { return splits.at(1); }
    const SplitResult& hard() const { return splits.at(2); }
    int64_t rollout_tokens = 0;
    std::string mode;                 // "greedy" or "sampled (T=...)"
    int samples = 1;                  // reasoning rollouts per position
};

// The means over the positions whose entropy exceeds `threshold` (outcomes indexed like
// positions); pass_k: the k of Pass@k over each position's samples (0: no reasoning mode).
SplitResult summarize_split(const char* name, float threshold, const std::vector<ScoredPosition>& positions,
                            const std::vector<PositionOutcome>& outcomes, int pass_k);

// Throws std::invalid_argument naming the flag when samples, sampling and pass_k
// disagree (more than one greedy sample, k outside [1, samples]).
void check_eval_samples(const EvalOptions& options);

// `docs` indexed by corpus document id; `positions` typically the held-out ones.
EvalReport evaluate_positions(Transformer& model, const Tokenizer& tokenizer, const PromptTemplate& format,
                              const std::vector<std::vector<int32_t>>& docs,
                              const std::vector<ScoredPosition>& positions, const EntropySplits& splits,
                              const EvalOptions& options);

// Up to n positions spread evenly over the list (deterministic).
std::vector<ScoredPosition> subsample_positions(const std::vector<ScoredPosition>& positions, size_t n);

}  // namespace rpt
