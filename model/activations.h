// The activations of one (B, T) batch shape and how they are laid out in one buffer:
// what the forward saves for the backward (per layer, or only each layer's input under
// recomputation), the head's logits chunk, and the backward's scratch (carved apart, by
// the first backward only). Free functions of the model's shape, so `rpt plan`
// (model/memory_plan.h) measures the very layout a Transformer carves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/buffer.h"
#include "model/config.h"
#include "model/precision.h"
#include "model/recompute.h"

namespace rpt {

// Activations of one (B, T) batch shape; N = B * T. Every (N, ...) tensor of a layer is
// of the model's activation dtype (bf16 or f32); rstd and lse are f32 always.
struct LayerActivations {
    Tensor input;     // (N, C)   residual stream entering the layer
    Tensor ln1;       // (N, C)
    Tensor ln1_rstd;  // (N)
    Tensor q;         // (N, H, D)   after RoPE
    Tensor k;         // (N, KVH, D) after RoPE
    Tensor v;         // (N, KVH, D)
    Tensor attn;      // (N, H, D)
    Tensor attn_lse;  // (B, H, T)
    Tensor mid;       // (N, C)   input + attention branch
    Tensor ln2;       // (N, C)
    Tensor ln2_rstd;  // (N)
    Tensor gate;      // (N, F)
    Tensor up;        // (N, F)
    Tensor act;       // (N, F)   silu(gate) * up
};

// Under Recompute::layer every layers[l] but its input views one shared set.
struct Activations {
    int B = 0, T = 0;
    // The rows of batch_rows, in this order: a forward uploads the first two, three (new
    // positions) or all four (a packed batch) with one copy.
    enum class BatchRow : int { tokens, targets, positions, segments, count };
    static constexpr int kBatchRows = int(BatchRow::count);
    Tensor batch_rows; // (kBatchRows, N) i32: the four below, one block
    Tensor tokens;     // (N) i32
    Tensor targets;    // (N) i32, -1 = no target
    Tensor positions;  // (N) i32, RoPE position (t within the row unless packed)
    Tensor segments;   // (N) i32, attention segment ids of a packed batch
    bool default_positions = false;  // positions hold t within the row
    bool packed = false;             // segments are in use
    std::vector<LayerActivations> layers;
    Tensor residual;   // (N, C)  output of the last layer
    Tensor lnf;        // (N, C)  f32 always: the input of the fp32 LM head
    Tensor lnf_rstd;   // (N)
    Tensor logits;     // (R, V)  f32, one chunk of R rows at a time (R = N when it fits the budget)
    Tensor lse;        // (N)
    Tensor logprob;    // (N)
    Tensor entropy;    // (N)
    Tensor topk_entropy;  // (N)
    Tensor argmax;     // (N) i32
    // Backward scratch, shared by all layers (activation dtype). Carved from a buffer of
    // its own by the first backward of a batch shape, so a model that only runs forward
    // (generation, evaluation, scoring, a frozen reference) never allocates it.
    bool has_backward_scratch = false;
    Tensor dlogprob;   // (N)
    Tensor dlnf;       // (N, C)  f32 always: dL/dlnf from the head (the same memory as dnorm in f32)
    Tensor dresidual;  // (N, C)
    Tensor dnorm;      // (N, C)
    Tensor dattn;      // (N, H, D)
    Tensor dq;         // (N, H, D)
    Tensor dk;         // (N, KVH, D)
    Tensor dv;         // (N, KVH, D)
    Tensor dgate;      // (N, F)
    Tensor dup;        // (N, F)
    Tensor dact;       // (N, F)
};

// What decides the layout besides the batch shape.
struct ActivationSpec {
    const ModelConfig& config;
    Precision precision;
    Recompute recompute;
};

// The lm head's logits are computed in row chunks of at most this many bytes, so a
// 150k vocabulary never needs an (N, V) buffer; small models fit in one chunk and skip
// the recomputation in backward.
inline constexpr int64_t kLogitsBudgetBytes = int64_t(128) << 20;
// Rows of one logits chunk for N rows over a vocabulary of V.
int64_t logits_rows_per_chunk(int64_t N, int64_t V);

// The forward's tensors of a (B, T) batch, carved from `arena` (a measuring arena gives
// the bytes: activation_bytes).
Activations carve_activations(Arena& arena, const ActivationSpec& spec, int B, int T);
// The backward scratch of a's batch shape into a (Activations::dlogprob ... dact).
void carve_backward_scratch(Arena& arena, const ActivationSpec& spec, Activations& a);

// Bytes of the two carvings for (B, T): what Transformer allocates for that shape.
size_t activation_bytes(const ActivationSpec& spec, int B, int T);
size_t backward_scratch_bytes(const ActivationSpec& spec, int B, int T);

}  // namespace rpt
