#include "model/config.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <tuple>

#include <fmt/format.h>

#include "model/json_depth.h"

namespace rpt {
namespace {

void require(bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("model config: " + what);
}

// Upper bounds far above any real checkpoint (hidden 16k, vocab 256k, context 1M), so
// that every size product below stays inside int / int64 arithmetic.
constexpr int kMaxWidth = 1 << 24;  // vocab, hidden, intermediate, context length
constexpr int kMaxCount = 1 << 12;  // layers, heads, head_dim

// Whether JSON value v is an integer that fits an int (checked before converting).
bool fits_int(const nlohmann::json& v) {
    if (v.is_number_unsigned()) return v.get<uint64_t>() <= uint64_t(std::numeric_limits<int>::max());
    if (!v.is_number_integer()) return false;
    const int64_t x = v.get<int64_t>();
    return x >= std::numeric_limits<int>::min() && x <= std::numeric_limits<int>::max();
}

// Whether v is a number whose conversion to float is finite.
bool fits_float(const nlohmann::json& v) {
    return v.is_number() && std::fabs(v.get<double>()) <= std::numeric_limits<float>::max();
}

}  // namespace

void ModelConfig::validate() const {
    require(vocab_size > 0, fmt::format("vocab_size must be positive, got {}", vocab_size));
    require(hidden_size > 0, fmt::format("hidden_size must be positive, got {}", hidden_size));
    require(num_layers > 0, fmt::format("num_hidden_layers must be positive, got {}", num_layers));
    require(num_heads > 0, fmt::format("num_attention_heads must be positive, got {}", num_heads));
    require(num_kv_heads > 0, fmt::format("num_key_value_heads must be positive, got {}", num_kv_heads));
    require(intermediate_size > 0, fmt::format("intermediate_size must be positive, got {}", intermediate_size));
    require(max_position_embeddings > 0,
            fmt::format("max_position_embeddings must be positive, got {}", max_position_embeddings));
    require(head_dim > 0 && head_dim % 2 == 0, fmt::format("head_dim must be positive and even, got {}", head_dim));
    for (const auto& [name, value, limit] : {std::tuple{"vocab_size", vocab_size, kMaxWidth},
                                             {"hidden_size", hidden_size, kMaxWidth},
                                             {"intermediate_size", intermediate_size, kMaxWidth},
                                             {"max_position_embeddings", max_position_embeddings, kMaxWidth},
                                             {"num_hidden_layers", num_layers, kMaxCount},
                                             {"num_attention_heads", num_heads, kMaxCount},
                                             {"num_key_value_heads", num_kv_heads, kMaxCount},
                                             {"head_dim", head_dim, kMaxCount}})
        require(value <= limit, fmt::format("{} must be at most {}, got {}", name, limit, value));
    require(num_heads % num_kv_heads == 0, fmt::format("num_key_value_heads ({}) must divide num_attention_heads ({})",
                                                       num_kv_heads, num_heads));
    require(rope_theta > 0, fmt::format("rope_theta must be positive, got {}", rope_theta));
    require(rms_norm_eps > 0, fmt::format("rms_norm_eps must be positive, got {}", rms_norm_eps));
    require(bos_token_id >= -1 && bos_token_id < vocab_size && eos_token_id >= -1 && eos_token_id < vocab_size,
            "bos/eos token id outside the vocabulary");
}

int64_t ModelConfig::num_matmul_parameters() const {
    const int64_t C = hidden_size, F = intermediate_size;
    const int64_t attention = C * qkv_dim() + qkv_dim() + int64_t(q_dim()) * C;
    const int64_t mlp = 3 * C * F;
    const int64_t norms = 2 * C;
    return num_layers * (attention + mlp + norms) + C + int64_t(vocab_size) * C;
}

int64_t ModelConfig::num_parameters() const {
    const int64_t embedding = int64_t(vocab_size) * hidden_size;
    return num_matmul_parameters() + (tie_word_embeddings ? 0 : embedding);
}

nlohmann::json ModelConfig::to_hf_json() const {
    nlohmann::json j = {
        {"architectures", {"Qwen2ForCausalLM"}},
        {"model_type", "qwen2"},
        {"vocab_size", vocab_size},
        {"hidden_size", hidden_size},
        {"num_hidden_layers", num_layers},
        {"num_attention_heads", num_heads},
        {"num_key_value_heads", num_kv_heads},
        {"head_dim", head_dim},
        {"intermediate_size", intermediate_size},
        {"max_position_embeddings", max_position_embeddings},
        {"rope_theta", rope_theta},
        {"rms_norm_eps", rms_norm_eps},
        {"tie_word_embeddings", tie_word_embeddings},
        {"hidden_act", "silu"},
        {"attention_dropout", 0.0},
        {"initializer_range", 0.02},
        {"use_cache", true},
        {"use_sliding_window", false},
        {"sliding_window", nullptr},
        {"max_window_layers", num_layers},
        {"rope_scaling", nullptr},
        {"torch_dtype", "float32"},
    };
    j["bos_token_id"] = bos_token_id >= 0 ? nlohmann::json(bos_token_id) : nlohmann::json(nullptr);
    j["eos_token_id"] = eos_token_id >= 0 ? nlohmann::json(eos_token_id) : nlohmann::json(nullptr);
    return j;
}

ModelConfig ModelConfig::from_hf_json(const nlohmann::json& j, const std::string& source) {
    auto fail = [&](const std::string& why) -> void {
        throw std::invalid_argument(fmt::format("{}: {}", source, why));
    };
    if (!j.is_object()) fail("config must be a JSON object");
    if (!json_depth_within(j, kMaxJsonDepth)) fail(fmt::format("nested deeper than {} levels", kMaxJsonDepth));
    auto get_int = [&](const char* key, bool required, int fallback) -> int {
        if (!j.contains(key) || j[key].is_null()) {
            if (required) fail(fmt::format("missing field '{}'", key));
            return fallback;
        }
        // Range-checked before the conversion, so 2^32 + 5 is an error, not 5.
        if (!fits_int(j[key])) fail(fmt::format("field '{}' must be a 32-bit integer", key));
        return j[key].get<int>();
    };
    auto get_float = [&](const char* key, float fallback) -> float {
        if (!j.contains(key) || j[key].is_null()) return fallback;
        if (!fits_float(j[key])) fail(fmt::format("field '{}' must be a finite number", key));
        return j[key].get<float>();
    };
    if (j.contains("model_type") && j["model_type"].is_string() && j["model_type"] != "qwen2")
        fail(fmt::format("model_type '{}' is not supported (only qwen2)", j["model_type"].get<std::string>()));
    // RoPE settings: transformers < 5 writes rope_theta (+ rope_scaling), transformers 5
    // writes rope_parameters {rope_type, rope_theta}. Only plain ("default") RoPE is
    // computed; any other type is rejected rather than silently mis-computed.
    auto check_rope_type = [&](const char* key) {
        if (!j.contains(key) || j[key].is_null()) return;
        const nlohmann::json& r = j[key];
        if (!r.is_object()) fail(fmt::format("field '{}' must be an object", key));
        const nlohmann::json type = r.contains("rope_type") ? r["rope_type"] : r.value("type", nlohmann::json());
        if (!(type.is_string() && type.get<std::string>() == "default") || r.contains("factor"))
            fail(fmt::format("field '{}' asks for scaled RoPE ({}): not supported", key, r.dump()));
    };
    check_rope_type("rope_scaling");
    check_rope_type("rope_parameters");
    if (j.contains("use_sliding_window") && j["use_sliding_window"].is_boolean() && j["use_sliding_window"].get<bool>())
        fail("field 'use_sliding_window' is true: sliding-window attention is not supported");
    if (j.contains("layer_types") && j["layer_types"].is_array())
        for (const nlohmann::json& t : j["layer_types"])
            if (t != "full_attention")
                fail(fmt::format("field 'layer_types' lists {}: only full_attention is supported", t.dump()));

    ModelConfig c;
    c.vocab_size = get_int("vocab_size", true, 0);
    c.hidden_size = get_int("hidden_size", true, 0);
    c.num_layers = get_int("num_hidden_layers", true, 0);
    c.num_heads = get_int("num_attention_heads", true, 0);
    c.num_kv_heads = get_int("num_key_value_heads", false, c.num_heads);
    c.intermediate_size = get_int("intermediate_size", true, 0);
    c.max_position_embeddings = get_int("max_position_embeddings", false, 32768);
    c.head_dim = get_int("head_dim", false, c.num_heads > 0 ? c.hidden_size / c.num_heads : 0);
    if (!j.contains("head_dim") && c.num_heads > 0 && c.hidden_size % c.num_heads != 0)
        fail(fmt::format("num_attention_heads ({}) must divide hidden_size ({})", c.num_heads, c.hidden_size));
    c.rope_theta = get_float("rope_theta", 10000.0f);
    if (j.contains("rope_parameters") && j["rope_parameters"].is_object() && j["rope_parameters"].contains("rope_theta")) {
        const nlohmann::json& theta = j["rope_parameters"]["rope_theta"];
        if (!fits_float(theta)) fail("field 'rope_parameters.rope_theta' must be a finite number");
        c.rope_theta = theta.get<float>();
    }
    c.rms_norm_eps = get_float("rms_norm_eps", 1e-6f);
    if (j.contains("tie_word_embeddings")) {
        if (!j["tie_word_embeddings"].is_boolean()) fail("field 'tie_word_embeddings' must be a boolean");
        c.tie_word_embeddings = j["tie_word_embeddings"].get<bool>();
    }
    c.bos_token_id = get_int("bos_token_id", false, -1);
    // Some checkpoints list several end tokens; the first is the end of text.
    if (j.contains("eos_token_id") && j["eos_token_id"].is_array()) {
        const nlohmann::json& ids = j["eos_token_id"];
        if (ids.empty() || !fits_int(ids[0])) fail("field 'eos_token_id' must be an integer or a list of them");
        c.eos_token_id = ids[0].get<int>();
    } else {
        c.eos_token_id = get_int("eos_token_id", false, -1);
    }
    try {
        c.validate();
    } catch (const std::invalid_argument& e) {
        fail(e.what());
    }
    return c;
}

ModelConfig model_preset(std::string_view name) {
    ModelConfig c;
    if (name == "tiny") {
        c.vocab_size = 512;
        c.hidden_size = 128;
        c.num_layers = 4;
        c.num_heads = 4;
        c.num_kv_heads = 2;
        c.intermediate_size = 384;
    } else if (name == "small") {
        c.vocab_size = 8192;
        c.hidden_size = 512;
        c.num_layers = 8;
        c.num_heads = 8;
        c.num_kv_heads = 2;
        c.intermediate_size = 1536;
    } else if (name == "qwen2-124m") {
        // GPT-2 small's size (124M with its 50,257 tokens and 4x MLP): 50,304 tokens (a
        // multiple of 64, as llm.c pads GPT-2's), SwiGLU at 3x (three matrices), GQA 3:1.
        c.vocab_size = 50304;
        c.hidden_size = 768;
        c.num_layers = 12;
        c.num_heads = 12;
        c.num_kv_heads = 4;
        c.intermediate_size = 2304;
        c.tie_word_embeddings = true;
    } else {
        std::string names;
        for (const std::string& n : model_preset_names()) names += (names.empty() ? "" : ", ") + n;
        throw std::invalid_argument(fmt::format("unknown model preset '{}' (choose {})", name, names));
    }
    c.head_dim = c.hidden_size / c.num_heads;
    c.max_position_embeddings = name == "qwen2-124m" ? 1024 : 256;
    c.validate();
    return c;
}

const std::vector<std::string>& model_preset_names() {
    static const std::vector<std::string> names = {"tiny", "small", "qwen2-124m"};  // constant, never written
    return names;
}

}  // namespace rpt
