// Next-token-prediction training (pre-training, and the continued-NTP baseline RPT is
// compared against): AdamW with warmup + cosine, gradient accumulation and clipping,
// held-out evaluation, checkpoints and resume, progress and JSONL metrics.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "model/optimizer.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "rl/token_data.h"

namespace rpt {

struct NtpOptions {
    int batch_size = 8;         // B, sequences per micro-batch
    int seq_len = 256;          // T
    int grad_accum = 1;         // micro-batches per optimizer step
    int64_t steps = 1000;       // total optimizer steps (the schedule's length)
    int64_t stop_at = 0;        // > 0: stop (and checkpoint) after this step; resume later
    int64_t warmup_steps = 50;
    float min_lr_ratio = 0.1f;  // cosine floor as a fraction of the peak
    AdamWConfig adamw;
    int64_t eval_every = 100;   // 0: only at the end
    int eval_docs = 128;        // held-out documents per evaluation
    int64_t checkpoint_every = 0;  // 0: only at the end
    int64_t log_every = 10;
    uint64_t seed = 1;          // batch sampling
    std::string out_dir;        // checkpoints; empty = none
    std::string metrics_path;   // JSONL; empty = none
    bool quiet = false;
};

struct NtpEval {
    double loss = 0;             // mean cross-entropy (nats) over predicted tokens
    double accuracy = 0;         // argmax == target over predicted tokens
    double answer_accuracy = 0;  // the same over the final-answer tokens
    int64_t tokens = 0;
    int64_t answer_tokens = 0;
};

// Scores held-out documents whole (each truncated to seq_len + 1 tokens), batch_size
// documents per forward pass.
NtpEval evaluate_next_token(Transformer& model, const std::vector<TokenizedDocument>& docs, int batch_size,
                            int seq_len, int max_docs);

// Called after every step with its metrics record (e.g. the demo's periodic
// evaluation); may add fields.
using NtpStepHook = std::function<void(int64_t step, nlohmann::json& record)>;

// Trains from state.step to options.steps; updates `state`. Writes a checkpoint to
// options.out_dir every checkpoint_every steps and at the end.
void train_ntp(Transformer& model, AdamW& optimizer, const Tokenizer& tokenizer, const TokenizedCorpus& corpus,
               const NtpOptions& options, TrainerState& state, const NtpStepHook& hook = nullptr);

// One NTP optimizer step on the windows of batch `step` (exposed for the RPT demo's
// equal-compute baseline); returns the mean loss.
double ntp_step(Transformer& model, AdamW& optimizer, const std::vector<int32_t>& stream, const NtpOptions& options,
                int64_t step);

}  // namespace rpt
