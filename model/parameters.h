// All model parameters in one flat fp32 buffer (one allreduce, trivial ZeRO sharding,
// one checkpoint write), with named views. The layout is fixed by ModelConfig and lists
// tensors in Hugging Face order with Hugging Face names, so a checkpoint is a plain walk
// over `entries`. Within a layer q, k, v (and gate, up) are adjacent, so the fused
// projections are contiguous views too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/buffer.h"
#include "model/config.h"

namespace rpt {

// One named tensor of the flat buffer.
struct ParameterEntry {
    std::string name;            // Hugging Face name, e.g. "model.layers.0.self_attn.q_proj.weight"
    std::vector<int64_t> shape;  // Hugging Face shape
    int64_t offset = 0;          // in elements, into the flat buffer
    int64_t numel = 0;
    bool weight_decay = false;   // AdamW decays matrices, not norms or biases
};

// Views of one decoder layer (into params or grads alike).
struct LayerTensors {
    Tensor ln1_weight;   // (C)                 input_layernorm
    Tensor qkv_weight;   // (H*D + 2*KVH*D, C)  q_proj; k_proj; v_proj stacked
    Tensor qkv_bias;     // (H*D + 2*KVH*D)
    Tensor o_weight;     // (C, H*D)            o_proj
    Tensor ln2_weight;   // (C)                 post_attention_layernorm
    Tensor gate_up_weight;  // (2*F, C)         gate_proj; up_proj stacked
    Tensor down_weight;  // (C, F)              down_proj
};

// Views of the whole model over one flat buffer.
struct ModelTensors {
    Tensor embedding;    // (V, C)   model.embed_tokens
    std::vector<LayerTensors> layers;  // L
    Tensor final_norm;   // (C)      model.norm
    Tensor lm_head;      // (V, C)   lm_head, or the embedding when tied
    Tensor flat;         // (P)      everything
};

class ParameterLayout {
public:
    explicit ParameterLayout(const ModelConfig& config);
    const std::vector<ParameterEntry>& entries() const { return entries_; }
    int64_t total() const { return total_; }
    // Named views over a flat buffer of total() elements of `dtype` (parameters or their
    // gradients in f32, the bf16 working copy of the parameters).
    ModelTensors views(const Buffer& flat, DType dtype = DType::f32) const;
    // Views into `window`, which holds flat elements [begin, begin + window.numel()):
    // the tensors inside it, the others empty (a ZeRO gradient slot of one bucket).
    ModelTensors views(const Tensor& window, int64_t begin) const;

private:
    // The named views, each made by at(first entry index, shape) (empty when not placed).
    template <typename At>
    ModelTensors carve(At&& at) const;

    ModelConfig config_;
    std::vector<ParameterEntry> entries_;
    int64_t total_ = 0;
};

// Deterministic initialisation from a seed: matrices N(0, 0.02) (the HF Qwen2 default),
// biases 0, norm weights 1. Each element's value depends only on (seed, its index), so
// the result does not depend on thread count or device. `flat` is host memory.
void init_parameters(const ParameterLayout& layout, float* flat, uint64_t seed);

}  // namespace rpt
