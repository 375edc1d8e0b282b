// The rollout engine: G sampled responses for each of B prompts, decoded in one batch
// over a shared-prefix KV cache. Each prompt's context is prefilled once; its G slots
// read that prefix and append only their own tokens. Finished sequences leave the
// active set, so later steps run on fewer rows, and give their KV blocks back: the
// suffix cache is paged (model/kv_cache.h), so its memory follows the live tokens.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "kernels/rl_ops.h"
#include "model/transformer.h"

namespace rpt {

struct RolloutSettings {
    int group_size = 8;        // G
    int max_new_tokens = 16;   // per response, stop token included
    ops::SamplingSettings sampling;  // seed and step form the RNG key with sequence ids
    size_t kv_budget_bytes = size_t(4) << 30;
    KvDType kv_dtype = KvDType::automatic;  // cached K/V: auto = bf16 on the GPU, f32 on the CPU
    // Tokens per block of the paged suffix cache (--kv-block-tokens); 0: the contiguous
    // cache, every slot's suffix allocated at max_new_tokens (the unpaged reference).
    int kv_block_tokens = kDefaultKvBlockTokens;
    // Called with each token as soon as it is sampled (stop tokens included), in slot
    // order within a step: lets `rpt generate` stream text. Empty: not called.
    std::function<void(int slot, int32_t token)> on_token;
};

struct RolloutResult {
    int contexts = 0, group_size = 0;
    std::vector<std::vector<int32_t>> responses;      // S = B * G, slot s of context s / G
    std::vector<std::vector<float>> sampler_logprobs; // S, per response token
    int64_t prompt_tokens = 0;     // prefilled once per context
    int64_t generated_tokens = 0;  // sum of response lengths
    int64_t decode_rows = 0;       // rows processed over all decode steps (= generated_tokens)
    int64_t decode_steps = 0;
    size_t kv_cache_bytes = 0;      // keys and values at most (every slot at max_new_tokens), in kv_dtype
    size_t kv_peak_bytes = 0;       // keys and values allocated at the pool's largest (prefix + blocks)
    int64_t kv_peak_blocks = 0;     // suffix blocks in use at the worst step (contiguous: one per slot)
    int kv_block_tokens = 0;        // tokens per block (0: contiguous)
    DType kv_dtype = DType::f32;    // what the cache stored (the setting resolved for the device)
    double seconds = 0;          // the whole call
    double prefill_seconds = 0;  // of which the shared-prefix prefill
    // Of which host work per decode step: building the step's rows from the active set
    // and dropping finished sequences from it (what removing finished rows costs; the
    // copies of those rows to and from the device are not included).
    double bookkeeping_seconds = 0;
};

// `context_ids` (B) identify the contexts for the RNG: response g of context c draws
// with sequence id c * G + g, whatever the batch it is decoded in.
RolloutResult generate_rollouts(Transformer& model, const std::vector<std::vector<int32_t>>& prompts,
                                const std::vector<int64_t>& context_ids, const std::vector<int32_t>& stop_ids,
                                const RolloutSettings& settings);

}  // namespace rpt
