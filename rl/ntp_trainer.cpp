#include "rl/ntp_trainer.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "kernels/rng.h"
#include "rl/metrics.h"

namespace rpt {
namespace {

constexpr int32_t kNoTarget = -1;

// Window b of micro-batch `micro` of step `step` starts at a position drawn from
// (seed, step, micro, b) alone: resuming at any step replays the same data.
void fill_windows(const std::vector<int32_t>& stream, const NtpOptions& o, int64_t step, int micro,
                  std::vector<int32_t>& tokens, std::vector<int32_t>& targets) {
    const int B = o.batch_size, T = o.seq_len;
    if (stream.size() < size_t(T) + 1)
        throw std::invalid_argument(fmt::format("the training stream has {} tokens, fewer than seq_len + 1 = {}",
                                                stream.size(), T + 1));
    const uint64_t starts = stream.size() - size_t(T);
    tokens.resize(size_t(B) * T);
    targets.resize(size_t(B) * T);
    for (int b = 0; b < B; ++b) {
        const uint64_t start = hash_keys(o.seed, uint64_t(step), uint64_t(micro), uint64_t(b)) % starts;
        std::copy_n(stream.begin() + int64_t(start), T, tokens.begin() + int64_t(b) * T);
        std::copy_n(stream.begin() + int64_t(start) + 1, T, targets.begin() + int64_t(b) * T);
    }
}

}  // namespace

NtpEval evaluate_next_token(Transformer& model, const std::vector<TokenizedDocument>& docs, int batch_size,
                            int seq_len, int max_docs) {
    NtpEval r;
    const size_t n = std::min(docs.size(), size_t(std::max(0, max_docs)));
    const int T = seq_len;
    double loss_sum = 0;
    int64_t correct = 0, answer_correct = 0;
    std::vector<int32_t> tokens, targets;
    std::vector<uint8_t> is_answer;
    for (size_t first = 0; first < n; first += size_t(batch_size)) {
        const int B = int(std::min(size_t(batch_size), n - first));
        tokens.assign(size_t(B) * T, 0);
        targets.assign(size_t(B) * T, kNoTarget);
        is_answer.assign(size_t(B) * T, 0);
        for (int b = 0; b < B; ++b) {
            const TokenizedDocument& d = docs[first + size_t(b)];
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
            ++r.tokens;
            const bool hit = argmax[i] == targets[i];
            correct += hit;
            if (is_answer[i]) {
                ++r.answer_tokens;
                answer_correct += hit;
            }
        }
    }
    if (r.tokens > 0) {
        r.loss = loss_sum / double(r.tokens);
        r.accuracy = double(correct) / double(r.tokens);
    }
    if (r.answer_tokens > 0) r.answer_accuracy = double(answer_correct) / double(r.answer_tokens);
    return r;
}

double ntp_step(Transformer& model, AdamW& optimizer, const std::vector<int32_t>& stream, const NtpOptions& o,
                int64_t step) {
    std::vector<int32_t> tokens, targets;
    const int64_t tokens_per_step = int64_t(o.batch_size) * o.seq_len * o.grad_accum;
    // Mean loss over every token of the step: each token's gradient weight is -1/count.
    const std::vector<float> dlogprob(size_t(o.batch_size) * o.seq_len, -1.0f / float(tokens_per_step));
    double loss = 0;
    model.zero_grad();
    for (int micro = 0; micro < o.grad_accum; ++micro) {
        fill_windows(stream, o, step, micro, tokens, targets);
        model.forward(tokens.data(), targets.data(), o.batch_size, o.seq_len);
        for (float lp : model.logprobs()) loss -= lp;
        model.backward(dlogprob.data());
    }
    loss /= double(tokens_per_step);
    if (!std::isfinite(loss)) throw std::runtime_error(fmt::format("step {}: loss is {} (no update applied)", step, loss));
    const float lr = cosine_lr(step, o.warmup_steps, o.steps, o.adamw.lr, o.min_lr_ratio);
    optimizer.step(model.params().flat, model.grads().flat, lr, o.adamw);
    return loss;
}

void train_ntp(Transformer& model, AdamW& optimizer, const Tokenizer& tokenizer, const TokenizedCorpus& corpus,
               const NtpOptions& o, TrainerState& state, const NtpStepHook& hook) {
    const bool resumed = state.step > 0;
    MetricsWriter metrics = o.metrics_path.empty() ? MetricsWriter() : MetricsWriter(o.metrics_path, resumed);
    const int64_t tokens_per_step = int64_t(o.batch_size) * o.seq_len * o.grad_accum;
    const double flops_per_step = model.config().training_flops_per_token(o.seq_len) * double(tokens_per_step);
    ProgressClock clock(state.step, o.stop_at > 0 ? std::min(o.stop_at, o.steps) : o.steps);
    double window_loss = 0;
    int64_t window_steps = 0;
    auto window_start = clock.elapsed();

    auto save = [&]() {
        if (o.out_dir.empty()) return;
        state.data_cursor = uint64_t(state.step);
        state.rng_state = o.seed;
        save_checkpoint(o.out_dir, model, tokenizer, &optimizer, &state);
    };

    const int64_t end = o.stop_at > 0 ? std::min(o.stop_at, o.steps) : o.steps;
    for (int64_t step = state.step + 1; step <= end; ++step) {
        const double loss = ntp_step(model, optimizer, corpus.train_stream, o, step);
        state.step = step;
        window_loss += loss;
        ++window_steps;
        const float lr = cosine_lr(step, o.warmup_steps, o.steps, o.adamw.lr, o.min_lr_ratio);
        nlohmann::json record = {{"step", step},
                                 {"loss", loss},
                                 {"lr", lr},
                                 {"tokens", step * tokens_per_step},
                                 {"flops", flops_per_step}};

        const bool last = step == end;
        if ((o.eval_every > 0 && step % o.eval_every == 0) || last) {
            const NtpEval e = evaluate_next_token(model, corpus.heldout, o.batch_size, o.seq_len, o.eval_docs);
            record["eval_loss"] = e.loss;
            record["eval_accuracy"] = e.accuracy;
            record["eval_answer_accuracy"] = e.answer_accuracy;
            if (!o.quiet)
                std::fprintf(stderr, "  eval @ step %lld: held-out loss %.4f, accuracy %.3f, answer accuracy %.3f\n",
                             (long long)step, e.loss, e.accuracy, e.answer_accuracy);
        }
        if (step % o.log_every == 0 || last) {
            const double now = clock.elapsed();
            const double tok_s = double(window_steps * tokens_per_step) / std::max(1e-9, now - window_start);
            record["tokens_per_s"] = tok_s;
            record["gflops"] = tok_s * flops_per_step / double(tokens_per_step) * 1e-9;
            if (!o.quiet)
                std::fprintf(stderr, "step %6lld/%lld | loss %.4f | lr %.2e | %8.0f tok/s | ETA %s\n",
                             (long long)step, (long long)o.steps, window_loss / double(window_steps), lr, tok_s,
                             format_duration(clock.eta(step)).c_str());
            window_loss = 0;
            window_steps = 0;
            window_start = now;
        }
        if (hook) hook(step, record);
        metrics.write(record);
        if ((o.checkpoint_every > 0 && step % o.checkpoint_every == 0) || last) save();
    }
}

}  // namespace rpt
