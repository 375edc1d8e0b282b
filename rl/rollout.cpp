#include "rl/rollout.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "model/kv_cache.h"

namespace rpt {

RolloutResult generate_rollouts(Transformer& model, const std::vector<std::vector<int32_t>>& prompts,
                                const std::vector<int64_t>& context_ids, const std::vector<int32_t>& stop_ids,
                                const RolloutSettings& settings) {
    const auto t0 = std::chrono::steady_clock::now();
    const int B = int(prompts.size()), G = settings.group_size, S = B * G;
    if (B == 0 || G <= 0 || settings.max_new_tokens <= 0)
        throw std::invalid_argument("rollouts need prompts, a positive group size and max_new_tokens");
    if (context_ids.size() != prompts.size()) throw std::invalid_argument("one context id per prompt");
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
    const OpContext& ctx = model.context();

    // The last prompt token is fed as the first decode step, so the prefix is the rest.
    std::vector<std::vector<int32_t>> prefixes(static_cast<size_t>(B));
    for (int b = 0; b < B; ++b) prefixes[b].assign(prompts[b].begin(), prompts[b].end() - 1);
    KvCacheShape shape{B, G, std::max(1, int(longest) - 1), settings.max_new_tokens, settings.kv_dtype};
    KvCache cache(model.config(), ctx, shape, settings.kv_budget_bytes);
    model.prefill(cache, prefixes);

    RolloutResult r;
    r.prefill_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.contexts = B;
    r.group_size = G;
    r.responses.assign(size_t(S), {});
    r.sampler_logprobs.assign(size_t(S), {});
    r.kv_cache_bytes = KvCache::kv_bytes(model.config(), shape, ctx.device);
    r.kv_dtype = cache.kv_dtype();
    for (const auto& p : prompts) r.prompt_tokens += int64_t(p.size());

    // Per-slot decoding state, on the host: the next input and where it goes.
    std::vector<int32_t> next_token(static_cast<size_t>(S)), position(static_cast<size_t>(S));
    std::vector<int32_t> active(static_cast<size_t>(S));
    for (int s = 0; s < S; ++s) {
        const auto& p = prompts[size_t(s / G)];
        next_token[s] = p.back();
        position[s] = int32_t(p.size()) - 1;
        active[s] = s;
        const int64_t id = context_ids[size_t(s / G)] * G + s % G;
        if (id < 0 || id > std::numeric_limits<int32_t>::max())
            throw std::invalid_argument("context id too large for the sampler's 31-bit sequence ids");
    }
    // Step inputs: the host image of cache.step_inputs (kStepInputs, S), uploaded whole
    // in one copy per step (its first A columns are used); sampler outputs.
    std::vector<int32_t> h_inputs(size_t(KvCache::kStepInputs) * size_t(S), 0);
    const auto input_row = [&](KvCache::StepInput row) { return h_inputs.data() + size_t(row) * size_t(S); };
    using Row = KvCache::StepInput;
    int32_t* const h_tokens = input_row(Row::tokens);
    int32_t* const h_positions = input_row(Row::positions);
    int32_t* const h_slots = input_row(Row::slots);
    int32_t* const h_index = input_row(Row::suffix_index);
    int32_t* const h_len = input_row(Row::suffix_len);
    int32_t* const h_ids = input_row(Row::sequence_ids);
    int32_t* const h_gen_pos = input_row(Row::sample_positions);
    Buffer sample_buffer(ctx.device, size_t(S) * 2 * sizeof(int32_t), "sampler rows");
    const Tensor sampled = sample_buffer.view(DType::i32, 0, {S});
    const Tensor sampled_lp = sample_buffer.view(DType::f32, size_t(S) * 4, {S});
    std::vector<int32_t> out_tokens(static_cast<size_t>(S));
    std::vector<float> out_lp(static_cast<size_t>(S));

    using Clock = std::chrono::steady_clock;
    for (int step = 0; step < settings.max_new_tokens && !active.empty(); ++step) {
        const auto t_rows = Clock::now();
        const int A = int(active.size());
        for (int a = 0; a < A; ++a) {
            const int s = active[a];
            h_tokens[a] = next_token[s];
            h_positions[a] = position[s];
            h_slots[a] = s;
            h_index[a] = step;  // every active slot has generated exactly `step` tokens
            h_len[a] = step + 1;
            h_ids[a] = int32_t(context_ids[size_t(s / G)] * G + s % G);
            h_gen_pos[a] = step;
        }
        r.bookkeeping_seconds += std::chrono::duration<double>(Clock::now() - t_rows).count();
        copy_from_host(cache.step_inputs, h_inputs.data());
        model.decode_step(cache, A);
        ops::sample_tokens(ctx, sampled.rows(0, A), sampled_lp.rows(0, A), cache.logits.rows(0, A),
                           cache.sequence_ids.rows(0, A), cache.sample_positions.rows(0, A), settings.sampling);
        copy_to_host(out_tokens.data(), sampled.rows(0, A));
        copy_to_host(out_lp.data(), sampled_lp.rows(0, A));
        r.decode_rows += A;
        ++r.decode_steps;

        const auto t_compact = Clock::now();
        std::vector<int32_t> still_active;
        for (int a = 0; a < A; ++a) {
            const int s = active[a];
            r.responses[s].push_back(out_tokens[a]);
            r.sampler_logprobs[s].push_back(out_lp[a]);
            if (settings.on_token) settings.on_token(s, out_tokens[a]);
            const bool stop = std::find(stop_ids.begin(), stop_ids.end(), out_tokens[a]) != stop_ids.end();
            if (!stop) {
                next_token[s] = out_tokens[a];
                ++position[s];
                still_active.push_back(s);
            }
        }
        active.swap(still_active);
        r.bookkeeping_seconds += std::chrono::duration<double>(Clock::now() - t_compact).count();
    }
    for (const auto& resp : r.responses) r.generated_tokens += int64_t(resp.size());
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

}  // namespace rpt
