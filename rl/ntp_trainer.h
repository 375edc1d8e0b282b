// Next-token-prediction training (pre-training, and the continued-NTP baseline RPT is
// compared against): AdamW with warmup + cosine, gradient accumulation and clipping,
// held-out evaluation, checkpoints and resume, progress and JSONL metrics.
//
// Data parallel over the optimizer's Comm (DESIGN §6): of the B windows of a global
// micro-batch, rank r of N computes those with b % N == r, so N ranks with B/N windows
// each take the same step as one rank with B (up to fp32 summation order). Windows come
// from (seed, step, micro, b) alone, so the data does not depend on the rank count and a
// run resumes on any number of ranks. Held-out documents are split the same way; losses
// and counts are summed over ranks before logging; rank 0 alone prints and writes.
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

// Faults injected to test the failure paths (rpt pretrain --debug-fail-at/--debug-nan-at,
// tests/mpi), kept apart from the options a run is configured with: rank `fail_rank`
// throws at step `fail_step`, rank `nan_rank` puts a NaN into its gradient at step
// `nan_step` (steps > 0; the defaults inject nothing).
struct NtpFaults {
    int fail_rank = -1;
    int64_t fail_step = 0;
    int nan_rank = -1;
    int64_t nan_step = 0;
};

struct NtpEval {
    double loss = 0;             // mean cross-entropy (nats) over predicted tokens
    double accuracy = 0;         // argmax == target over predicted tokens
    double answer_accuracy = 0;  // the same over the final-answer tokens
    int64_t tokens = 0;
    int64_t answer_tokens = 0;
};

// Scores held-out documents whole (each truncated to seq_len + 1 tokens), batch_size
// documents per forward pass. With a multi-rank `comm` (collective), rank r scores the
// documents i % N == r of the first max_docs and the result is over all of them.
NtpEval evaluate_next_token(Transformer& model, const std::vector<TokenizedDocument>& docs, int batch_size,
                            int seq_len, int max_docs, Comm* comm = nullptr);

// Called after every step with its metrics record (e.g. the demo's periodic
// evaluation); may add fields. Runs on every rank; rank 0's record is written.
using NtpStepHook = std::function<void(int64_t step, nlohmann::json& record)>;

// Trains from state.step to options.steps; updates `state`. Writes a checkpoint to
// options.out_dir every checkpoint_every steps and at the end.
void train_ntp(Transformer& model, AdamW& optimizer, const Tokenizer& tokenizer, const TokenizedCorpus& corpus,
               const NtpOptions& options, TrainerState& state, const NtpStepHook& hook = nullptr,
               const NtpFaults& faults = {});

struct NtpStepResult {
    double loss = 0;       // mean over every token of the global batch (all ranks)
    double grad_norm = 0;  // global, before clipping
    bool skipped = false;  // non-finite loss or norm with adamw.skip_nonfinite: no update
};

// One NTP optimizer step on this rank's windows of batch `step`; collective over the
// optimizer's Comm. A non-finite loss or gradient norm throws naming the step, or with
// options.adamw.skip_nonfinite skips the update.
NtpStepResult ntp_train_step(Transformer& model, AdamW& optimizer, const std::vector<int32_t>& stream,
                             const NtpOptions& options, int64_t step, const NtpFaults& faults = {});

// The same, returning the mean loss (exposed for the RPT demo's equal-compute baseline).
double ntp_step(Transformer& model, AdamW& optimizer, const std::vector<int32_t>& stream, const NtpOptions& options,
                int64_t step);

}  // namespace rpt
