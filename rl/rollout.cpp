// Batched decoding over the shared-prefix KV cache, top-down: check the prompts, prefill
// each context's prompt once, then per step build the active rows' inputs, run one decode
// step, sample, and drop the rows that stopped.
#include "rl/rollout.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "kernels/host_sync.h"
#include "model/kv_cache.h"

namespace rpt {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// What one call decodes: the prompts, their sampler keys, the stop tokens and settings.
struct RolloutJob {
    const std::vector<std::vector<int32_t>>& prompts;  // (B)
    const std::vector<int64_t>& context_ids;           // (B)
    const std::vector<int32_t>& stop_ids;
    const RolloutSettings& settings;
};

// Throws on inputs the engine cannot run; returns the longest prompt's length.
size_t check_prompts(const Transformer& model, const RolloutJob& job) {
    const auto& prompts = job.prompts;
    const RolloutSettings& settings = job.settings;
    if (prompts.empty() || settings.group_size <= 0 || settings.max_new_tokens <= 0)
        throw std::invalid_argument("rollouts need prompts, a positive group size and max_new_tokens");
    if (settings.kv_block_tokens < 0)
        throw std::invalid_argument(fmt::format(
            "--kv-block-tokens {} must be a number of tokens (0: contiguous)", settings.kv_block_tokens));
    if (job.context_ids.size() != prompts.size()) throw std::invalid_argument("one context id per prompt");
    size_t longest = 0;
    for (const auto& p : prompts) {
        if (p.empty()) throw std::invalid_argument("empty prompt");
        longest = std::max(longest, p.size());
    }
    const int max_position = int(longest) - 1 + settings.max_new_tokens;
    if (max_position > model.config().max_position_embeddings)
        throw std::invalid_argument(fmt::format("a prompt of {} tokens plus {} new tokens exceeds the model's context "
                                                "of {}: shorten the context or lower --max-new-tokens",
                                                longest, settings.max_new_tokens,
                                                model.config().max_position_embeddings));
    return longest;
}

// The sampler's RNG key of slot s: response s % G of context s / G.
int32_t sequence_id(const std::vector<int64_t>& context_ids, int G, int s) {
    return int32_t(context_ids[size_t(s / G)] * G + s % G);
}

// Per-slot decoding state, on the host: the next input and where it goes.
struct SlotState {
    std::vector<int32_t> next_token;  // (S)
    std::vector<int32_t> position;    // (S) RoPE position of next_token
    std::vector<int32_t> active;      // slots still decoding, in slot order
};

SlotState start_slots(const std::vector<std::vector<int32_t>>& prompts, const std::vector<int64_t>& context_ids,
                      int G) {
    const int S = int(prompts.size()) * G;
    SlotState st{std::vector<int32_t>(size_t(S)), std::vector<int32_t>(size_t(S)), std::vector<int32_t>(size_t(S))};
    for (int s = 0; s < S; ++s) {
        const auto& p = prompts[size_t(s / G)];
        st.next_token[s] = p.back();  // the last prompt token is fed as the first decode step
        st.position[s] = int32_t(p.size()) - 1;
        st.active[s] = s;
        const int64_t id = context_ids[size_t(s / G)] * G + s % G;
        if (id < 0 || id > std::numeric_limits<int32_t>::max())
            throw std::invalid_argument("context id too large for the sampler's 31-bit sequence ids");
    }
    return st;
}

// The host image of cache.step_inputs (kStepInputs rows of S, then the block table),
// uploaded whole in one copy per step (the first A columns of each row are used), with
// its rows named as in KvCache::StepInput.
class StepInputs {
public:
    explicit StepInputs(const KvCache& cache)
        : S_(cache.shape().slots()), rows_(size_t(cache.step_inputs.numel()), 0) {}

    // The cache's block table after this step's reserve, copied only when it changed.
    void fill_table(const KvBlockAllocator& blocks) {
        if (blocks.version() == table_version_) return;
        std::copy(blocks.table().begin(), blocks.table().end(), rows_.begin() + int64_t(KvCache::kStepInputs) * S_);
        table_version_ = blocks.version();
    }

    // Row a of the step is slot active[a] feeding its next token, its `step`-th.
    void fill(const SlotState& st, int step, const std::vector<int64_t>& context_ids, int G) {
        using Row = KvCache::StepInput;
        for (size_t a = 0; a < st.active.size(); ++a) {
            const int s = st.active[a];
            row(Row::tokens)[a] = st.next_token[s];
            row(Row::positions)[a] = st.position[s];
            row(Row::slots)[a] = s;
            row(Row::suffix_index)[a] = step;  // every active slot has generated exactly `step` tokens
            row(Row::suffix_len)[a] = step + 1;
            row(Row::sequence_ids)[a] = sequence_id(context_ids, G, s);
            row(Row::sample_positions)[a] = step;
        }
    }
    const int32_t* data() const { return rows_.data(); }

private:
    int32_t* row(KvCache::StepInput r) { return rows_.data() + size_t(r) * size_t(S_); }
    int S_;
    std::vector<int32_t> rows_;
    uint64_t table_version_ = 0;  // the allocator's starts at 0 with every entry -1, as rows_
};

// The sampler's outputs for the active rows: on the device, and their host copies.
class SampledRows {
public:
    SampledRows(const OpContext& ctx, int S)
        : tokens(size_t(S)),
          logprobs(size_t(S)),
          S_(S),
          host_(size_t(2) * size_t(S)),
          buffer_(ctx.device, size_t(S) * 2 * sizeof(int32_t), "sampler rows"),
          both_(buffer_.view(DType::i32, 0, {2, S})),
          tokens_(buffer_.view(DType::i32, 0, {S})),
          logprobs_(buffer_.view(DType::f32, size_t(S) * 4, {S})) {}

    // Samples the next token of each of the A active rows from the step's logits and
    // copies the tokens and their log-probs to the host in one readback (the stop test
    // needs them: the one host synchronisation a decode step cannot avoid).
    void sample(const OpContext& ctx, const KvCache& cache, int A, const ops::SamplingSettings& settings) {
        ops::sample_tokens(ctx, tokens_.rows(0, A), logprobs_.rows(0, A), cache.logits.rows(0, A),
                           cache.sequence_ids.rows(0, A), cache.sample_positions.rows(0, A), settings);
        copy_to_host(ctx, host_.data(), both_);
        std::copy_n(host_.begin(), A, tokens.begin());
        std::memcpy(logprobs.data(), host_.data() + S_, size_t(A) * sizeof(float));
    }

    std::vector<int32_t> tokens;  // (S) host, the first A valid
    std::vector<float> logprobs;  // (S) host, the first A valid

private:
    int S_;
    std::vector<int32_t> host_;  // the buffer's host image: tokens, then log-prob bits
    Buffer buffer_;
    Tensor both_;      // (2, S) i32: the whole buffer
    Tensor tokens_;    // (S) i32
    Tensor logprobs_;  // (S) f32
};

// Records each active row's sampled token and keeps the rows that did not stop; the
// stopped ones give their KV blocks back.
void advance_slots(SlotState& st, const SampledRows& sampled, const RolloutJob& job, KvCache& cache,
                   RolloutResult& r) {
    std::vector<int32_t> still_active;
    for (size_t a = 0; a < st.active.size(); ++a) {
        const int s = st.active[a];
        const int32_t token = sampled.tokens[a];
        r.responses[s].push_back(token);
        r.sampler_logprobs[s].push_back(sampled.logprobs[a]);
        if (job.settings.on_token) job.settings.on_token(s, token);
        const bool stop = std::find(job.stop_ids.begin(), job.stop_ids.end(), token) != job.stop_ids.end();
        if (!stop) {
            st.next_token[s] = token;
            ++st.position[s];
            still_active.push_back(s);
        } else {
            cache.release(s);
        }
    }
    st.active.swap(still_active);
}

// Each context's prompt but its last token, prefilled once for its G responses.
void prefill_prompts(Transformer& model, KvCache& cache, const std::vector<std::vector<int32_t>>& prompts) {
    std::vector<std::vector<int32_t>> prefixes(prompts.size());
    for (size_t b = 0; b < prompts.size(); ++b) prefixes[b].assign(prompts[b].begin(), prompts[b].end() - 1);
    model.prefill(cache, prefixes);
}

// The result before decoding: empty responses and the cache's size.
RolloutResult empty_result(const Transformer& model, const KvCache& cache, const KvCacheShape& shape,
                           const std::vector<std::vector<int32_t>>& prompts) {
    RolloutResult r;
    const size_t S = size_t(shape.slots());
    r.contexts = shape.contexts;
    r.group_size = shape.group_size;
    r.responses.assign(S, {});
    r.sampler_logprobs.assign(S, {});
    r.kv_cache_bytes = KvCache::kv_bytes(model.config(), shape, model.context().device);
    r.kv_dtype = cache.kv_dtype();
    r.kv_block_tokens = shape.block_tokens;
    for (const auto& p : prompts) r.prompt_tokens += int64_t(p.size());
    return r;
}

// One decode step for every active slot until all stopped or the budget is spent.
void decode_responses(Transformer& model, KvCache& cache, const RolloutJob& job, RolloutResult& r) {
    const int G = job.settings.group_size, S = int(job.prompts.size()) * G;
    SlotState slots = start_slots(job.prompts, job.context_ids, G);
    StepInputs inputs(cache);
    SampledRows sampled(model.context(), S);
    for (int step = 0; step < job.settings.max_new_tokens && !slots.active.empty(); ++step) {
        const auto t_rows = Clock::now();
        const int A = int(slots.active.size());
        // Every active slot now feeds its token `step`: blocks for step + 1 tokens.
        cache.reserve(slots.active, step + 1);
        inputs.fill(slots, step, job.context_ids, G);
        inputs.fill_table(cache.blocks());
        r.bookkeeping_seconds += seconds_since(t_rows);
        copy_from_host(model.context(), cache.step_inputs, inputs.data());
        model.decode_step(cache, A);
        sampled.sample(model.context(), cache, A, job.settings.sampling);
        r.decode_rows += A;
        ++r.decode_steps;

        const auto t_compact = Clock::now();
        advance_slots(slots, sampled, job, cache, r);
        r.bookkeeping_seconds += seconds_since(t_compact);
    }
    r.kv_peak_bytes = cache.peak_kv_bytes();
    r.kv_peak_blocks = cache.shape().paged() ? cache.blocks().peak_used() : cache.shape().slots();
}

}  // namespace

RolloutResult generate_rollouts(Transformer& model, const std::vector<std::vector<int32_t>>& prompts,
                                const std::vector<int64_t>& context_ids, const std::vector<int32_t>& stop_ids,
                                const RolloutSettings& settings) {
    const auto t0 = Clock::now();
    const RolloutJob job{prompts, context_ids, stop_ids, settings};
    const size_t longest = check_prompts(model, job);

    // 1. Prefill: each context's prompt but its last token, once for its G responses.
    const KvCacheShape shape{int(prompts.size()), settings.group_size, std::max(1, int(longest) - 1),
                             settings.max_new_tokens, settings.kv_dtype, model.precision(),
                             settings.kv_block_tokens};
    KvCache cache(model.config(), model.context(), shape, settings.kv_budget_bytes);
    prefill_prompts(model, cache, prompts);
    const double prefill_seconds = seconds_since(t0);
    RolloutResult r = empty_result(model, cache, shape, prompts);
    r.prefill_seconds = prefill_seconds;

    // 2. Decode: the last prompt token is every slot's first input.
    decode_responses(model, cache, job, r);
    for (const auto& resp : r.responses) r.generated_tokens += int64_t(resp.size());
    r.seconds = seconds_since(t0);
    return r;
}

}  // namespace rpt
