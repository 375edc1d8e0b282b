// libFuzzer target: the Hugging Face config.json reader (ModelConfig::from_hf_json, as
// read_checkpoint_config calls it) on arbitrary bytes. A config that loads must give
// sane sizes (the parameter count is computed, so its products are exercised) and
// survive to_hf_json -> from_hf_json unchanged. std::invalid_argument is the expected
// answer to bad input; anything else (a crash, a sanitizer report, another exception
// type) is a finding.
#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/flops.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return 0;
    try {
        const rpt::ModelConfig c = rpt::ModelConfig::from_hf_json(j, "config.json");
        if (c.num_parameters() <= 0 || rpt::training_flops_per_token(c, c.max_position_embeddings) <= 0) __builtin_trap();
        const rpt::ModelConfig back = rpt::ModelConfig::from_hf_json(c.to_hf_json(), "resaved-config.json");
        const bool same = back.vocab_size == c.vocab_size && back.hidden_size == c.hidden_size &&
                          back.num_layers == c.num_layers && back.num_heads == c.num_heads &&
                          back.num_kv_heads == c.num_kv_heads && back.head_dim == c.head_dim &&
                          back.intermediate_size == c.intermediate_size &&
                          back.max_position_embeddings == c.max_position_embeddings &&
                          back.rope_theta == c.rope_theta && back.rms_norm_eps == c.rms_norm_eps &&
                          back.tie_word_embeddings == c.tie_word_embeddings && back.bos_token_id == c.bos_token_id &&
                          back.eos_token_id == c.eos_token_id;
        if (!same) __builtin_trap();
    } catch (const std::invalid_argument&) {
        // rejected with a message: the intended behaviour
    }
    return 0;
}
