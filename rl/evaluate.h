// Next-token evaluation on scored positions (DESIGN §1, evaluation): (a) standard —
// the model's argmax next token equals x_t; (b) next-token reasoning — the prefix
// reward of one rollout under the template (greedy, or sampled at a stated
// temperature). Reported per nested entropy split.
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
    int batch = 64;            // positions per forward / rollout batch
    int truth_tokens = 0;      // cap on the ground-truth tokens kept (0: none, see RewardScorer)
    size_t kv_budget_bytes = size_t(4) << 30;
    KvDType kv_dtype = KvDType::automatic;  // of the reasoning-mode rollouts' KV cache
    bool reasoning = true;     // also run reasoning mode
};

// What both modes found at one position.
struct PositionOutcome {
    bool standard_hit = false;  // argmax == x_t
    float reward = 0;           // of the reasoning-mode rollout
    bool in_format = false;     // the rollout had a prediction
    int trace_tokens = 0;       // before the think-close marker
    TraceCheck trace;           // its equation lines checked (rl/worked_traces.h)
    std::string response;       // the rollout as text
};

struct SplitResult {
    const char* name = "";
    float threshold = 0;
    int64_t positions = 0;
    double standard = 0;   // accuracy
    double reasoning = 0;  // mean reward
    double format = 0;     // share of rollouts with a prediction in format
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
};

// `docs` indexed by corpus document id; `positions` typically the held-out ones.
EvalReport evaluate_positions(Transformer& model, const Tokenizer& tokenizer, const PromptTemplate& format,
                              const std::vector<std::vector<int32_t>>& docs,
                              const std::vector<ScoredPosition>& positions, const EntropySplits& splits,
                              const EvalOptions& options);

// Up to n positions spread evenly over the list (deterministic).
std::vector<ScoredPosition> subsample_positions(const std::vector<ScoredPosition>& positions, size_t n);

}  // namespace rpt
