#include "rl/ntp_trainer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "kernels/rng.h"
#include "model/flops.h"
#include "rl/rank_sums.h"
#include "rl/train_log.h"

namespace rpt {
namespace {

constexpr int32_t kNoTarget = -1;

// Which windows a rank fills: those of micro-batch `micro` of step `step` that fall to
// rank `rank` of `ranks`.
struct WindowDraw {
    int64_t step = 0;
    int micro = 0;
    int rank = 0, ranks = 1;
};

// Window b of micro-batch `micro` of step `step` starts at a position drawn from
// (seed, step, micro, b) alone: resuming at any step, on any number of ranks, replays
// the same data. This rank fills the windows b = rank, rank + ranks, ... of the B into
// tokens and targets (B / ranks, T) each.
void fill_windows(const std::vector<int32_t>& stream, const NtpOptions& o, const WindowDraw& draw,
                  std::vector<int32_t>& tokens, std::vector<int32_t>& targets) {
    const int local_batch = o.batch_size / draw.ranks, T = o.seq_len;
    if (stream.size() < size_t(T) + 1)
        throw std::invalid_argument(fmt::format("the training stream has {} tokens, fewer than seq_len + 1 = {}",
                                                stream.size(), T + 1));
    const uint64_t starts = stream.size() - size_t(T);
    tokens.resize(size_t(local_batch) * T);
    targets.resize(size_t(local_batch) * T);
    for (int j = 0; j < local_batch; ++j) {
        const int b = j * draw.ranks + draw.rank;
        const uint64_t start = hash_keys(o.seed, uint64_t(draw.step), uint64_t(draw.micro), uint64_t(b)) % starts;
        std::copy_n(stream.begin() + int64_t(start), T, tokens.begin() + int64_t(j) * T);
        std::copy_n(stream.begin() + int64_t(start) + 1, T, targets.begin() + int64_t(j) * T);
    }
}

int comm_rank(const Comm* comm) { return comm ? comm->rank() : 0; }
int comm_size(const Comm* comm) { return comm ? comm->size() : 1; }

void check_batch_divides(const NtpOptions& o, int ranks) {
    if (o.batch_size % ranks != 0)
        throw std::invalid_argument(fmt::format("--batch {} is not divisible by the {} ranks (each rank takes B/N "
                                                "sequences of the global batch B)",
                                                o.batch_size, ranks));
}

}  // namespace

NtpEval evaluate_next_token(Transformer& model, const std::vector<TokenizedDocument>& docs, int batch_size,
                            int seq_len, int max_docs, Comm* comm) {
    NtpEval r;
    model.gather_parameters();  // ZeRO-3: ranks may run different numbers of batches below
    const size_t n = std::min(docs.size(), size_t(std::max(0, max_docs)));
    const int rank = comm_rank(comm), ranks = comm_size(comm);
    std::vector<size_t> mine;  // this rank's documents: i % ranks == rank
    for (size_t i = size_t(rank); i < n; i += size_t(ranks)) mine.push_back(i);
    const int T = seq_len;
    // Sums, reduced over ranks at the end.
    double loss_sum = 0;
    struct EvalCounts {
        int64_t tokens = 0, correct = 0;                // every target
        int64_t answer_tokens = 0, answer_correct = 0;  // targets inside an answer
    } counts;
    std::vector<int32_t> tokens, targets;
    std::vector<uint8_t> is_answer;
    for (size_t first = 0; first < mine.size(); first += size_t(batch_size)) {
        const int B = int(std::min(size_t(batch_size), mine.size() - first));
        tokens.assign(size_t(B) * T, 0);
        targets.assign(size_t(B) * T, kNoTarget);
        is_answer.assign(size_t(B) * T, 0);
        for (int b = 0; b < B; ++b) {
            const TokenizedDocument& d = docs[mine[first + size_t(b)]];
            const size_t len = std::min(d.tokens.size(), size_t(T) + 1);
            for (size_t t = 0; t + 1 < len; ++t) {
                tokens[size_t(b) * T + t] = d.tokens[t];
                targets[size_t(b) * T + t] = d.tokens[t + 1];
                is_answer[size_t(b) * T + t] = (t + 1 >= d.answer_begin) ? 1 : 0;
            }
        }
        HeadRequest request;
        request.argmax = true;
        model.forward(tokens.data(), targets.data(), B, T, request);
        const std::vector<float> logprob = model.logprobs();
        const std::vector<int32_t> argmax = model.argmax_tokens();
        for (size_t i = 0; i < targets.size(); ++i) {
            if (targets[i] == kNoTarget) continue;
            loss_sum -= logprob[i];
            ++counts.tokens;
            const bool hit = argmax[i] == targets[i];
            counts.correct += hit;
            if (is_answer[i]) {
                ++counts.answer_tokens;
                counts.answer_correct += hit;
            }
        }
    }
    if (ranks > 1) {
        comm->allreduce_sum_host(&loss_sum, 1);
        sum_over_ranks<int64_t>(comm, counts);
    }
    r.tokens = counts.tokens;
    r.answer_tokens = counts.answer_tokens;
    if (r.tokens > 0) {
        r.loss = loss_sum / double(r.tokens);
        r.accuracy = double(counts.correct) / double(r.tokens);
    }
    if (r.answer_tokens > 0) r.answer_accuracy = double(counts.answer_correct) / double(r.answer_tokens);
    return r;
}

NtpStepResult ntp_train_step(Transformer& model, AdamW& optimizer, const std::vector<int32_t>& stream,
                             const NtpOptions& o, int64_t step, const NtpFaults& faults) {
    Comm* comm = optimizer.comm();
    const int rank = comm_rank(comm), ranks = comm_size(comm);
    check_batch_divides(o, ranks);
    std::vector<int32_t> tokens, targets;
    const int local_batch = o.batch_size / ranks;
    const int64_t local_tokens = int64_t(local_batch) * o.seq_len * o.grad_accum;
    // Mean loss over this rank's tokens: each token's gradient weight is -1/count. The
    // optimizer averages over ranks, and every rank has the same count, so the update
    // follows the mean over the global batch.
    const std::vector<float> dlogprob(size_t(local_batch) * o.seq_len, -1.0f / float(local_tokens));
    NtpStepResult result;
    model.zero_grad();
    (void)model.take_logprob_sum();  // start from nothing, whatever ran before
    for (int micro = 0; micro < o.grad_accum; ++micro) {
        fill_windows(stream, o, {step, micro, rank, ranks}, tokens, targets);
        model.forward(tokens.data(), targets.data(), local_batch, o.seq_len);
        model.accumulate_logprob_sum();  // on the device: the loss is read back once, below
        model.backward(dlogprob.data());
    }
    double loss = -model.take_logprob_sum();
    if (step == faults.nan_step && rank == faults.nan_rank) {
        // The gradients this rank holds: the model's buffer, or ZeRO-2/3's shard.
        const Tensor held = model.has_gradients() ? model.grads().flat : optimizer.zero_runtime()->gradient_shard();
        ops::fill(model.context(), held.rows(0, 1), std::numeric_limits<float>::quiet_NaN());
    }
    loss /= double(local_tokens);
    if (ranks > 1) loss = comm->allreduce_sum(loss) / double(ranks);
    result.loss = loss;
    // The reduced loss is the same on every rank, so all of them skip or stop together.
    if (!std::isfinite(loss)) {
        if (o.adamw.skip_nonfinite) {
            result.skipped = true;
            return result;
        }
        throw std::runtime_error(fmt::format("step {}: loss is {} (no update applied)", step, loss));
    }
    const float lr = cosine_lr(step, o.warmup_steps, o.steps, o.adamw.lr, o.min_lr_ratio);
    result.grad_norm = optimizer.step(model.params().flat, model.grads().flat, lr, o.adamw, model.working_params());
    result.skipped = !std::isfinite(result.grad_norm);
    return result;
}

double ntp_step(Transformer& model, AdamW& optimizer, const std::vector<int32_t>& stream, const NtpOptions& o,
                int64_t step) {
    return ntp_train_step(model, optimizer, stream, o, step).loss;
}

namespace {

// The metrics record of a step (before evaluation and throughput are added); JSON has
// no NaN, so a non-finite loss or norm is written as null.
nlohmann::json step_record(const NtpOptions& o, int64_t step, const NtpStepResult& r, int64_t tokens_per_step,
                           double flops_per_step) {
    const float lr = cosine_lr(step, o.warmup_steps, o.steps, o.adamw.lr, o.min_lr_ratio);
    nlohmann::json record = {{"step", step},
                             {"loss", r.loss},
                             {"grad_norm", r.grad_norm},
                             {"lr", lr},
                             {"tokens", step * tokens_per_step},
                             {"flops", flops_per_step}};
    if (r.skipped) record["skipped"] = true;
    if (!std::isfinite(r.loss)) record["loss"] = nullptr;
    if (!std::isfinite(r.grad_norm)) record["grad_norm"] = nullptr;
    return record;
}

// A held-out evaluation's results, added to the step's record (and printed).
void record_eval(const NtpEval& e, const TrainLog& log, int64_t step, nlohmann::json& record) {
    record["eval_loss"] = e.loss;
    record["eval_accuracy"] = e.accuracy;
    record["eval_answer_accuracy"] = e.answer_accuracy;
    if (log.prints())
        std::fprintf(stderr, "  eval @ step %lld: held-out loss %.4f, accuracy %.3f, answer accuracy %.3f\n",
                     (long long)step, e.loss, e.accuracy, e.answer_accuracy);
}

// Mean loss and throughput over the steps since the last progress line.
struct LossWindow {
    double loss = 0;
    int64_t steps = 0;
    double start = 0;  // seconds into the run

    void add(const NtpStepResult& r) {
        if (r.skipped) return;
        loss += r.loss;
        ++steps;
    }
    // Adds the window's throughput to the record, prints the progress line, starts a new window.
    void report(const NtpOptions& o, const TrainLog& log, int64_t step, int64_t tokens_per_step,
                double flops_per_step, nlohmann::json& record) {
        const double now = log.elapsed();
        const double tok_s = double(steps * tokens_per_step) / std::max(1e-9, now - start);
        record["tokens_per_s"] = tok_s;
        record["gflops"] = tok_s * flops_per_step / double(tokens_per_step) * 1e-9;
        const float lr = cosine_lr(step, o.warmup_steps, o.steps, o.adamw.lr, o.min_lr_ratio);
        log.progress(step, "loss %.4f | lr %.2e | %8.0f tok/s", loss / double(std::max<int64_t>(1, steps)), lr, tok_s);
        *this = LossWindow{0, 0, now};
    }
};

}  // namespace

void train_ntp(Transformer& model, AdamW& optimizer, const Tokenizer& tokenizer, const TokenizedCorpus& corpus,
               const NtpOptions& o, TrainerState& state, const NtpStepHook& hook, const NtpFaults& faults) {
    Comm* comm = optimizer.comm();
    check_batch_divides(o, comm_size(comm));
    TrainLogSettings ls;
    ls.first_step = state.step;
    ls.end = o.stop_at > 0 ? std::min(o.stop_at, o.steps) : o.steps;
    ls.steps = o.steps;
    ls.log_every = o.log_every;
    ls.checkpoint_every = o.checkpoint_every;
    ls.metrics_path = o.metrics_path;
    ls.root = comm_rank(comm) == 0;  // rank 0 alone prints and writes metrics
    ls.quiet = o.quiet;
    TrainLog log(ls);
    const int64_t tokens_per_step = int64_t(o.batch_size) * o.seq_len * o.grad_accum;
    const double flops_per_step = training_flops_per_token(model.config(), o.seq_len) * double(tokens_per_step);
    LossWindow window{0, 0, log.elapsed()};

    for (int64_t step = state.step + 1; step <= ls.end; ++step) {
        if (step == faults.fail_step && comm_rank(comm) == faults.fail_rank)
            throw std::runtime_error(fmt::format("step {}: failure injected by --debug-fail-at", step));
        const NtpStepResult r = ntp_train_step(model, optimizer, corpus.train_stream, o, step, faults);
        state.step = step;
        if (r.skipped && log.prints())
            std::fprintf(stderr, "step %lld: loss %g, gradient norm %g: non-finite, update skipped\n",
                         (long long)step, r.loss, r.grad_norm);
        window.add(r);

        nlohmann::json record = step_record(o, step, r, tokens_per_step, flops_per_step);
        if ((o.eval_every > 0 && step % o.eval_every == 0) || log.last(step))
            record_eval(evaluate_next_token(model, corpus.heldout, o.batch_size, o.seq_len, o.eval_docs, comm), log,
                        step, record);
        if (log.logs_at(step)) window.report(o, log, step, tokens_per_step, flops_per_step, record);
        if (hook) hook(step, record);
        log.record(record);
        if (log.checkpoints_at(step) && !o.out_dir.empty()) {
            state.data_cursor = uint64_t(state.step);
            state.rng_state = o.seed;
            save_checkpoint(o.out_dir, model, tokenizer, &optimizer, &state);  // collective; rank 0 writes
        }
    }
}

}  // namespace rpt
