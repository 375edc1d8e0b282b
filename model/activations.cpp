#include "model/activations.h"

#include <algorithm>

namespace rpt {

int64_t logits_rows_per_chunk(int64_t N, int64_t V) {
    return std::min(N, std::max<int64_t>(1, kLogitsBudgetBytes / (V * int64_t(sizeof(float)))));
}

Activations carve_activations(Arena& arena, const ActivationSpec& spec, int B, int T) {
    const ModelConfig& config = spec.config;
    const int64_t N = int64_t(B) * T, C = config.hidden_size, F = config.intermediate_size;
    const int64_t H = config.num_heads, KVH = config.num_kv_heads, D = config.head_dim;
    const DType act = activation_dtype(spec.precision);
    Activations a;
    a.B = B;
    a.T = T;
    // The batch's integer inputs in one block, so a batch uploads them with a single copy.
    a.batch_rows = arena.carve(DType::i32, {Activations::kBatchRows, N});
    const auto batch_row = [&](Activations::BatchRow row) {
        return a.batch_rows.rows(int(row), int(row) + 1).reshaped({N});
    };
    a.tokens = batch_row(Activations::BatchRow::tokens);
    a.targets = batch_row(Activations::BatchRow::targets);
    a.positions = batch_row(Activations::BatchRow::positions);
    a.segments = batch_row(Activations::BatchRow::segments);
    // Under Recompute::layer one set of layer activations serves every layer (the
    // backward recomputes each layer's into it); each layer keeps only its input.
    const int sets = spec.recompute == Recompute::layer ? 1 : config.num_layers;
    for (int l = 0; l < config.num_layers; ++l) {
        LayerActivations la;
        la.input = arena.carve(act, {N, C});
        if (l >= sets) {
            const Tensor input = la.input;
            la = a.layers[0];
            la.input = input;
            a.layers.push_back(la);
            continue;
        }
        la.ln1 = arena.carve(act, {N, C});
        la.ln1_rstd = arena.carve(DType::f32, {N});
        la.q = arena.carve(act, {N, H, D});
        la.k = arena.carve(act, {N, KVH, D});
        la.v = arena.carve(act, {N, KVH, D});
        la.attn = arena.carve(act, {N, H, D});
        la.attn_lse = arena.carve(DType::f32, {B, H, T});
        la.mid = arena.carve(act, {N, C});
        la.ln2 = arena.carve(act, {N, C});
        la.ln2_rstd = arena.carve(DType::f32, {N});
        la.gate = arena.carve(act, {N, F});
        la.up = arena.carve(act, {N, F});
        la.act = arena.carve(act, {N, F});
        a.layers.push_back(la);
    }
    a.residual = arena.carve(act, {N, C});
    a.lnf = arena.carve(DType::f32, {N, C});
    a.lnf_rstd = arena.carve(DType::f32, {N});
    const int64_t R = logits_rows_per_chunk(N, config.vocab_size);
    a.logits = arena.carve(DType::f32, {R, int64_t(config.vocab_size)});
    a.lse = arena.carve(DType::f32, {N});
    a.logprob = arena.carve(DType::f32, {N});
    a.entropy = arena.carve(DType::f32, {N});
    a.topk_entropy = arena.carve(DType::f32, {N});
    a.argmax = arena.carve(DType::i32, {N});
    return a;
}

void carve_backward_scratch(Arena& arena, const ActivationSpec& spec, Activations& a) {
    const ModelConfig& config = spec.config;
    const int64_t N = int64_t(a.B) * a.T, C = config.hidden_size, F = config.intermediate_size;
    const int64_t H = config.num_heads, KVH = config.num_kv_heads, D = config.head_dim;
    const DType act = activation_dtype(spec.precision);
    a.dlogprob = arena.carve(DType::f32, {N});
    a.dresidual = arena.carve(act, {N, C});
    a.dnorm = arena.carve(act, {N, C});
    a.dlnf = spec.precision == Precision::f32 ? a.dnorm : arena.carve(DType::f32, {N, C});
    a.dattn = arena.carve(act, {N, H, D});
    a.dq = arena.carve(act, {N, H, D});
    a.dk = arena.carve(act, {N, KVH, D});
    a.dv = arena.carve(act, {N, KVH, D});
    a.dgate = arena.carve(act, {N, F});
    a.dup = arena.carve(act, {N, F});
    a.dact = arena.carve(act, {N, F});
    a.has_backward_scratch = true;
}

size_t activation_bytes(const ActivationSpec& spec, int B, int T) {
    Arena measure(nullptr);
    carve_activations(measure, spec, B, T);
    return measure.used();
}

size_t backward_scratch_bytes(const ActivationSpec& spec, int B, int T) {
    Arena measure(nullptr);
    Activations a;
    a.B = B;
    a.T = T;
    carve_backward_scratch(measure, spec, a);
    return measure.used();
}

}  // namespace rpt
