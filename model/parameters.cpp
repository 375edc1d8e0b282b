#include "model/parameters.h"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "kernels/rng.h"

namespace rpt {
namespace {

constexpr float kInitStd = 0.02f;  // Qwen2's initializer_range

}  // namespace

ParameterLayout::ParameterLayout(const ModelConfig& config) : config_(config) {
    config.validate();
    const int64_t C = config.hidden_size, F = config.intermediate_size, V = config.vocab_size;
    const int64_t QD = config.q_dim(), KVD = config.kv_dim();
    auto add = [&](std::string name, std::vector<int64_t> shape, bool decay) {
        int64_t numel = 1;
        for (int64_t s : shape) numel *= s;
        entries_.push_back({std::move(name), std::move(shape), total_, numel, decay});
        total_ += numel;
    };
    add("model.embed_tokens.weight", {V, C}, true);
    for (int l = 0; l < config.num_layers; ++l) {
        const std::string p = fmt::format("model.layers.{}.", l);
        add(p + "input_layernorm.weight", {C}, false);
        add(p + "self_attn.q_proj.weight", {QD, C}, true);
        add(p + "self_attn.k_proj.weight", {KVD, C}, true);
        add(p + "self_attn.v_proj.weight", {KVD, C}, true);
        add(p + "self_attn.q_proj.bias", {QD}, false);
        add(p + "self_attn.k_proj.bias", {KVD}, false);
        add(p + "self_attn.v_proj.bias", {KVD}, false);
        add(p + "self_attn.o_proj.weight", {C, QD}, true);
        add(p + "post_attention_layernorm.weight", {C}, false);
        add(p + "mlp.gate_proj.weight", {F, C}, true);
        add(p + "mlp.up_proj.weight", {F, C}, true);
        add(p + "mlp.down_proj.weight", {C, F}, true);
    }
    add("model.norm.weight", {C}, false);
    if (!config.tie_word_embeddings) add("lm_head.weight", {V, C}, true);
}

template <typename At>
ModelTensors ParameterLayout::carve(At&& at) const {
    const int64_t C = config_.hidden_size, F = config_.intermediate_size, V = config_.vocab_size;
    const int64_t QKV = config_.qkv_dim(), QD = config_.q_dim();
    ModelTensors t;
    size_t i = 0;
    t.embedding = at(i++, {V, C});
    constexpr size_t kEntriesPerLayer = 12;
    for (int l = 0; l < config_.num_layers; ++l) {
        const size_t base = i;
        LayerTensors layer;
        layer.ln1_weight = at(base + 0, {C});
        layer.qkv_weight = at(base + 1, {QKV, C});  // q, k, v weights are adjacent
        layer.qkv_bias = at(base + 4, {QKV});       // and so are their biases
        layer.o_weight = at(base + 7, {C, QD});
        layer.ln2_weight = at(base + 8, {C});
        layer.gate_up_weight = at(base + 9, {2 * F, C});  // gate then up
        layer.down_weight = at(base + 11, {C, F});
        t.layers.push_back(layer);
        i += kEntriesPerLayer;
    }
    t.final_norm = at(i++, {C});
    t.lm_head = config_.tie_word_embeddings ? t.embedding : at(i++, {V, C});
    return t;
}

ModelTensors ParameterLayout::views(const Buffer& flat, DType dtype) const {
    const size_t element = dtype_size(dtype);
    if (flat.bytes() < size_t(total_) * element)
        throw std::logic_error("parameter buffer smaller than the layout");
    ModelTensors t = carve([&](size_t index, std::initializer_list<int64_t> shape) {
        return flat.view(dtype, size_t(entries_.at(index).offset) * element, shape);
    });
    t.flat = flat.view(dtype, 0, {total_});
    return t;
}

ModelTensors ParameterLayout::views(const Tensor& window, int64_t begin) const {
    const int64_t end = begin + window.numel();
    ModelTensors t = carve([&](size_t index, std::initializer_list<int64_t> shape) {
        int64_t numel = 1;
        for (int64_t s : shape) numel *= s;
        const int64_t offset = entries_.at(index).offset;
        if (offset < begin || offset + numel > end) return Tensor{};
        return window.rows(offset - begin, offset - begin + numel).reshaped(shape);
    });
    t.flat = window;
    return t;
}

void init_parameters(const ParameterLayout& layout, float* flat, uint64_t seed) {
    for (const ParameterEntry& e : layout.entries()) {
        float* p = flat + e.offset;
        const bool is_matrix = e.shape.size() == 2;
        const bool is_norm = e.name.find("norm") != std::string::npos;
#pragma omp parallel for schedule(static)
        for (int64_t j = 0; j < e.numel; ++j) {
            if (is_matrix) p[j] = kInitStd * normal_at(seed, uint64_t(e.offset + j));
            else p[j] = is_norm ? 1.0f : 0.0f;
        }
    }
}

}  // namespace rpt
