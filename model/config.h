// The transformer's shape: a Qwen2 configuration. Presets for the demo and benchmarks,
// validation with clear errors, and the mapping to/from Hugging Face config.json.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace rpt {

struct ModelConfig {
    int vocab_size = 0;
    int hidden_size = 0;          // C
    int num_layers = 0;           // L
    int num_heads = 0;            // H
    int num_kv_heads = 0;         // KVH
    int head_dim = 0;             // D (hidden_size / num_heads unless the checkpoint says otherwise)
    int intermediate_size = 0;    // F
    int max_position_embeddings = 0;  // the context length T_max
    float rope_theta = 10000.0f;
    float rms_norm_eps = 1e-6f;
    bool tie_word_embeddings = false;
    // Token ids the model's files name (-1 when absent).
    int bos_token_id = -1;
    int eos_token_id = -1;

    int q_dim() const { return num_heads * head_dim; }      // H * D
    int kv_dim() const { return num_kv_heads * head_dim; }  // KVH * D
    int qkv_dim() const { return q_dim() + 2 * kv_dim(); }

    // Throws std::invalid_argument naming the first field that makes no sense.
    void validate() const;
    int64_t num_parameters() const;
    // Parameters that do matmul FLOPs per token: everything but the embedding table
    // (the lm_head counts even when tied). The FLOP model is model/flops.h.
    int64_t num_matmul_parameters() const;

    // The Hugging Face Qwen2 config.json fields.
    nlohmann::json to_hf_json() const;
    // `source` names the file in error messages.
    static ModelConfig from_hf_json(const nlohmann::json& j, const std::string& source);
};

// "tiny" (~0.9M parameters, the CPU demo), "small" (~32M) and "qwen2-124m" (~121M: the
// GPT-2-small class in the Qwen2 architecture -- 12 layers, hidden 768, 12 query heads
// over 4 KV heads, SwiGLU 2304, a 50,304-token vocabulary with tied embeddings, context
// 1024 -- the GPU training benchmark's model); throws on other names.
ModelConfig model_preset(std::string_view name);
// The preset names model_preset() accepts, for command-line checks and help texts.
const std::vector<std::string>& model_preset_names();

}  // namespace rpt
