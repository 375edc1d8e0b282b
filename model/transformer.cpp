#include "model/transformer.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <stdexcept>

#include <fmt/format.h>

#include "kernels/host_sync.h"
#include "kernels/rl_ops.h"
#include "model/zero_parameters.h"
#include "model/zero_runtime.h"

namespace rpt {
namespace {

// The weights the forward and backward read (see Transformer::compute_).
ModelTensors compute_weights(const ModelTensors& params, const ModelTensors& working, Precision precision) {
    if (precision == Precision::f32) return params;
    ModelTensors w = working;
    for (size_t l = 0; l < w.layers.size(); ++l) w.layers[l].qkv_bias = params.layers[l].qkv_bias;
    w.lm_head = params.lm_head;
    return w;
}

}  // namespace

Transformer::Transformer(const ModelConfig& config, OpContext ctx, Precision precision)
    : config_(config),
      ctx_(ctx),
      layout_(config),
      precision_(precision),
      param_buffer_(ctx.device, size_t(layout_.total()) * sizeof(float), "parameters"),
      params_(layout_.views(param_buffer_)) {
    if (precision_ == Precision::bf16) {
        working_buffer_ = Buffer(ctx.device, size_t(layout_.total()) * sizeof(uint16_t), "bf16 working weights");
        working_ = layout_.views(working_buffer_, DType::bf16);
    }
    compute_ = compute_weights(params_, working_, precision_);
}

void Transformer::set_recompute(Recompute recompute) {
    if (recompute == recompute_) return;
    recompute_ = recompute;
    acts_ = Activations{};  // re-carved for the new layout by the next forward
    held_layer_ = -1;
    resident_chunk_begin_ = -1;
}

void Transformer::set_zero_hooks(ParameterSource* source, GradientSink* sink) {
    param_source_ = source;
    grad_sink_ = sink;
    if (lends_slots()) {  // the sink keeps the gradients from now on
        grad_buffer_ = Buffer();
        grads_ = ModelTensors{};
    }
}

void Transformer::acquire(int bucket, int prefetch) {
    if (!param_source_) return;
    if (!sharded()) {
        param_source_->acquire(bucket, params_.flat, working_.flat);
        return;
    }
    drop_stale_full_copy();
    if (full_copy_current()) {  // gathered for this pass: no collective (ranks may differ)
        compute_ = full_copy_.compute;
        return;
    }
    // compute_weights' recipe over the slot's views, then only this bucket's tensors.
    const BucketWeights w = param_source_->acquire_slot(bucket, prefetch);
    const ModelTensors f32 = layout_.views(w.f32, w.begin);
    const ModelTensors working = precision_ == Precision::bf16 ? layout_.views(w.working, w.begin) : ModelTensors{};
    const ModelTensors c = compute_weights(f32, working, precision_);
    const bool tied = config_.tie_word_embeddings;
    if (bucket == embedding_bucket()) {
        compute_.embedding = c.embedding;
        if (tied) compute_.lm_head = c.lm_head;  // the embedding, in the slot until the next update
    } else if (bucket == head_bucket(config_.num_layers)) {
        compute_.final_norm = c.final_norm;
        if (!tied) compute_.lm_head = c.lm_head;
    } else {
        const size_t l = size_t(bucket - layer_bucket(0));
        compute_.layers[l] = c.layers[l];
    }
}

void Transformer::shard_parameters(ZeroRuntime& runtime) {
    if (param_source_ != &runtime)
        throw std::logic_error("shard_parameters: set_zero_hooks(runtime, ...) first (the runtime is the source)");
    if (shard_runtime_) return;
    // Phases: cut the shard out of the full buffer, hand it to the runtime (which carves
    // its slots), then free the full buffer and working copy.
    const ZeroShards& shards = runtime.shards();
    Buffer shard(ctx_.device, size_t(shards.shard_size()) * sizeof(float), "ZeRO-3 parameter shard");
    const Tensor view = shard.view(DType::f32, 0, {shards.shard_size()});
    cut_shard(ctx_, shards, params_.flat, view);
    runtime.shard_parameters(view, precision_ == Precision::bf16);
    param_buffer_ = std::move(shard);
    working_buffer_ = Buffer();
    working_ = ModelTensors{};
    params_ = ModelTensors{};
    params_.flat = view;
    compute_ = ModelTensors{};
    compute_.layers.resize(size_t(config_.num_layers));
    shard_runtime_ = &runtime;
}

void Transformer::bucket_done(int bucket) const {
    if (grad_sink_) grad_sink_->bucket_done(bucket);
}

ModelTensors Transformer::bucket_gradients(int bucket) const {
    if (!lends_slots()) return grads_;
    const GradientSlot slot = grad_sink_->gradient_slot(bucket);
    return layout_.views(slot.grads, slot.begin);
}

void Transformer::gather_parameters() const {
    if (!sharded()) {
        if (param_source_) param_source_->acquire_all(params_.flat, working_.flat);
        return;
    }
    if (full_copy_current()) return;
    // Phases: free a stale copy, allocate, gather every bucket, round the working copy.
    full_copy_ = FullCopy{};
    const int64_t P = layout_.total();
    const bool bf16 = precision_ == Precision::bf16;
    full_copy_.buffer = Buffer(ctx_.device, size_t(P) * (sizeof(float) + (bf16 ? sizeof(uint16_t) : 0)),
                               "ZeRO-3 full parameter copy");
    full_copy_.params = layout_.views(full_copy_.buffer);
    shard_runtime_->gather_all_into(full_copy_.params.flat);
    if (bf16) {
        full_copy_.working = layout_.views(full_copy_.buffer.view(DType::bf16, size_t(P) * sizeof(float), {P}), 0);
        ops::copy(ctx_, full_copy_.working.flat, full_copy_.params.flat);
    }
    full_copy_.compute = compute_weights(full_copy_.params, full_copy_.working, precision_);
    full_copy_.generation = shard_runtime_->parameter_generation();
}

bool Transformer::full_copy_current() const {
    return shard_runtime_ && full_copy_.generation == shard_runtime_->parameter_generation();
}

void Transformer::drop_stale_full_copy() {
    if (full_copy_.generation < 0 || full_copy_current()) return;
    full_copy_ = FullCopy{};
    compute_ = ModelTensors{};
    compute_.layers.resize(size_t(config_.num_layers));
}

void Transformer::require_resident(const char* what) {
    if (sharded()) {
        if (!full_copy_current())
            throw std::logic_error(fmt::format("{}: ZeRO-3 parameters are sharded and no full copy is current (call "
                                               "gather_parameters() on every rank first)",
                                               what));
        compute_ = full_copy_.compute;
        return;
    }
    // Decoding runs on each rank for its own contexts, a different number of times per
    // rank: it must not gather (a collective) by itself. The trainer gathers first.
    if (param_source_ && !param_source_->resident())
        throw std::logic_error(fmt::format("{}: ZeRO-3 parameters not gathered (call gather_parameters() on every "
                                           "rank first)",
                                           what));
}

void Transformer::init_weights(uint64_t seed) {
    std::vector<float> host(size_t(layout_.total()));
    init_parameters(layout_, host.data(), seed);
    if (sharded()) {  // this rank's slices of the same full init
        const ZeroShards& shards = shard_runtime_->shards();
        std::vector<float> shard(size_t(shards.shard_size()));
        cut_shard_host(shards, host.data(), shard.data());
        copy_from_host(params_.flat, shard.data());
        shard_runtime_->parameters_updated(params_.flat, Tensor{});  // the slots are stale
        return;
    }
    copy_from_host(params_.flat, host.data());
    refresh_working();
}

void Transformer::refresh_working() {
    // Sharded: nothing to refresh, every gather rounds its slot.
    if (precision_ == Precision::bf16 && !sharded()) ops::copy(ctx_, working_.flat, params_.flat);
}

void Transformer::ensure_gradients() {
    if (has_gradients() || lends_slots()) return;
    grad_buffer_ = Buffer(ctx_.device, size_t(layout_.total()) * sizeof(float), "gradients");  // zero-filled
    grads_ = layout_.views(grad_buffer_);
}

void Transformer::zero_grad() {
    if (lends_slots()) {
        grad_sink_->zero_gradients();
        return;
    }
    if (!has_gradients()) {
        ensure_gradients();  // a fresh buffer is zero already
        return;
    }
    ops::fill(ctx_, grads_.flat, 0.0f);
}

void Transformer::ensure_backward_scratch() {
    if (acts_.has_backward_scratch) return;
    const size_t bytes = rpt::backward_scratch_bytes(activation_spec(), acts_.B, acts_.T);
    if (bytes > scratch_buffer_.bytes()) {
        scratch_buffer_ = Buffer();  // free the old one before allocating the new one
        scratch_buffer_ = Buffer(ctx_.device, bytes, "backward scratch");
    }
    Arena arena(&scratch_buffer_);
    carve_backward_scratch(arena, activation_spec(), acts_);
    uploaded_dlogprob_.clear();  // the new dlogprob holds nothing yet
}

void Transformer::ensure_batch(int B, int T) {
    if (B <= 0 || T <= 0) throw std::invalid_argument(fmt::format("batch shape ({}, {}) must be positive", B, T));
    if (acts_.B == B && acts_.T == T) return;
    const size_t bytes = rpt::activation_bytes(activation_spec(), B, T);
    // Reuse the allocation when the new shape fits: rollouts and training alternate shapes.
    if (bytes > act_buffer_.bytes()) {
        act_buffer_ = Buffer();  // free the old one before allocating the new one
        act_buffer_ = Buffer(ctx_.device, bytes, "activations");
    }
    Arena arena(&act_buffer_);
    acts_ = carve_activations(arena, activation_spec(), B, T);
    resident_chunk_begin_ = -1;
    held_layer_ = -1;
}

int Transformer::stage_layout(const PackedLayout& layout) {
    const int B = acts_.B, T = acts_.T;
    const int64_t N = int64_t(B) * T;
    using Row = Activations::BatchRow;
    int32_t* positions = batch_upload_.data() + int64_t(Row::positions) * N;
    if (layout.positions) {
        for (int64_t i = 0; i < N; ++i)
            if (layout.positions[i] < 0 || layout.positions[i] >= config_.max_position_embeddings)
                throw std::invalid_argument(fmt::format("position {} of token {} is outside the model's context of {}",
                                                        layout.positions[i], i, config_.max_position_embeddings));
    } else if (T > config_.max_position_embeddings) {
        throw std::invalid_argument(fmt::format("sequence length {} exceeds the model's context of {} tokens", T,
                                                config_.max_position_embeddings));
    }
    const bool packed = layout.segments != nullptr;
    // The default positions go up once per batch shape; a packed batch's every time.
    const bool new_positions = layout.positions != nullptr || !acts_.default_positions;
    const int rows = packed ? 4 : new_positions ? 3 : 2;
    if (rows >= 3) {
        if (layout.positions) std::copy(layout.positions, layout.positions + N, positions);
        else
            for (int b = 0; b < B; ++b)
                for (int t = 0; t < T; ++t) positions[int64_t(b) * T + t] = t;
    }
    if (packed) std::copy(layout.segments, layout.segments + N, batch_upload_.data() + int64_t(Row::segments) * N);
    acts_.default_positions = layout.positions == nullptr;
    acts_.packed = packed;
    return rows;
}

void layer_forward(const OpContext& ctx, const ModelConfig& config, const LayerTensors& w, const LayerRows& r,
                   const std::function<void()>& attention) {
    const int64_t N = r.input.dim(0);
    const int64_t QD = config.q_dim(), KVD = config.kv_dim(), F = config.intermediate_size;
    // Attention branch: x + o_proj(attention(rope(q), rope(k), v)) with q, k, v from ln1(x).
    ops::rmsnorm_forward(ctx, r.ln1, r.ln1_rstd, r.input, w.ln1_weight, config.rms_norm_eps);
    ops::matmul_forward(ctx, r.q.reshaped({N, QD}), r.ln1, w.qkv_weight.rows(0, QD), w.qkv_bias.rows(0, QD));
    ops::matmul_forward(ctx, r.k.reshaped({N, KVD}), r.ln1, w.qkv_weight.rows(QD, QD + KVD),
                        w.qkv_bias.rows(QD, QD + KVD));
    ops::matmul_forward(ctx, r.v.reshaped({N, KVD}), r.ln1, w.qkv_weight.rows(QD + KVD, QD + 2 * KVD),
                        w.qkv_bias.rows(QD + KVD, QD + 2 * KVD));
    ops::rope_forward(ctx, r.q, r.positions, config.rope_theta);
    ops::rope_forward(ctx, r.k, r.positions, config.rope_theta);
    attention();
    ops::matmul_forward(ctx, r.mid, r.attn.reshaped({N, QD}), w.o_weight, Tensor{});
    // mid = x + branch (in place over the branch), and ln2 of it, in one pass.
    ops::add_rmsnorm_forward(ctx, r.mid, r.ln2, r.ln2_rstd, r.input, r.mid, w.ln2_weight, config.rms_norm_eps);

    // MLP branch: mid + down(silu(gate(ln2)) * up(ln2)).
    ops::matmul_forward(ctx, r.gate, r.ln2, w.gate_up_weight.rows(0, F), Tensor{});
    ops::matmul_forward(ctx, r.up, r.ln2, w.gate_up_weight.rows(F, 2 * F), Tensor{});
    ops::swiglu_forward(ctx, r.act, r.gate, r.up);
    ops::matmul_forward(ctx, r.out, r.act, w.down_weight, Tensor{});
    ops::add(ctx, r.out, r.out, r.mid);
}

void Transformer::layer_forward_batch(int l) {
    held_layer_ = l;
    LayerActivations& a = acts_.layers[l];
    const Tensor& out = (l + 1 < config_.num_layers) ? acts_.layers[l + 1].input : acts_.residual;
    const int64_t B = acts_.B, T = acts_.T;
    const int64_t H = config_.num_heads, KVH = config_.num_kv_heads, D = config_.head_dim;
    const LayerRows rows{a, out, acts_.positions};
    layer_forward(ctx_, config_, compute_.layers[l], rows, [&]() {
        ops::attention_forward(ctx_, a.attn.reshaped({B, T, H, D}), a.attn_lse, a.q.reshaped({B, T, H, D}),
                               a.k.reshaped({B, T, KVH, D}), a.v.reshaped({B, T, KVH, D}), attention_segments());
    });
}

void Transformer::head_chunk_logits(int64_t row_begin, int64_t row_end) {
    ops::matmul_forward(ctx_, acts_.logits.rows(0, row_end - row_begin), acts_.lnf.rows(row_begin, row_end),
                        compute_.lm_head, Tensor{});
    resident_chunk_begin_ = row_begin;
}

Tensor Transformer::attention_segments() const {
    return acts_.packed ? acts_.segments.reshaped({int64_t(acts_.B), int64_t(acts_.T)}) : Tensor{};
}

void Transformer::start_batch(const int32_t* tokens, const int32_t* targets, int B, int T,
                              const HeadRequest& request, float inv_temperature, const PackedLayout& layout) {
    ensure_batch(B, T);
    const int64_t N = int64_t(B) * T;
    for (int64_t i = 0; i < N; ++i) {
        if (tokens[i] < 0 || tokens[i] >= config_.vocab_size)
            throw std::invalid_argument(fmt::format("token id {} at position {} is outside the vocabulary of {}",
                                                    tokens[i], i, config_.vocab_size));
        if (targets[i] >= config_.vocab_size)
            throw std::invalid_argument(fmt::format("target id {} at position {} is outside the vocabulary of {}",
                                                    targets[i], i, config_.vocab_size));
    }
    // One upload for the batch's integer inputs (Activations::batch_rows): tokens and
    // targets always, positions and segments when they changed.
    batch_upload_.resize(size_t(Activations::kBatchRows * N));
    const int rows = stage_layout(layout);
    std::copy(tokens, tokens + N, batch_upload_.begin());
    std::copy(targets, targets + N, batch_upload_.begin() + N);
    copy_from_host(ctx_, acts_.batch_rows.rows(0, rows), batch_upload_.data());
    last_request_ = request;
    last_inv_temperature_ = inv_temperature;
}

void Transformer::forward_layers(const std::function<void(int)>& after_layer) {
    // Each bucket prefetches the next (sharded ZeRO-3 with overlap).
    acquire(embedding_bucket(), layer_bucket(0));
    ops::embedding_forward(ctx_, acts_.layers[0].input, acts_.tokens, compute_.embedding);
    for (int l = 0; l < config_.num_layers; ++l) {
        acquire(layer_bucket(l), layer_bucket(l + 1));  // the last layer's next is the head
        layer_forward_batch(l);
        if (after_layer) after_layer(l);
    }
}

void Transformer::head_forward(const HeadRequest& request, float inv_temperature) {
    const int64_t N = int64_t(acts_.B) * acts_.T;
    acquire(head_bucket(config_.num_layers));
    ops::rmsnorm_forward(ctx_, acts_.lnf, acts_.lnf_rstd, acts_.residual, compute_.final_norm, config_.rms_norm_eps);
    const int64_t R = logits_rows_per_chunk(N, config_.vocab_size);
    for (int64_t begin = 0; begin < N; begin += R) {
        const int64_t end = std::min(N, begin + R);
        head_chunk_logits(begin, end);
        const Tensor logits = acts_.logits.rows(0, end - begin);
        ops::logsoftmax_forward(ctx_, acts_.logprob.rows(begin, end),
                                request.entropy ? acts_.entropy.rows(begin, end) : Tensor{},
                                acts_.lse.rows(begin, end), logits, acts_.targets.rows(begin, end), inv_temperature);
        if (request.topk_entropy > 0)
            ops::topk_entropy(ctx_, acts_.topk_entropy.rows(begin, end), logits, request.topk_entropy);
        if (request.argmax) ops::argmax(ctx_, acts_.argmax.rows(begin, end), logits);
    }
}

void Transformer::forward(const int32_t* tokens, const int32_t* targets, int B, int T, const HeadRequest& request,
                          float inv_temperature, const PackedLayout& layout) {
    start_batch(tokens, targets, B, T, request, inv_temperature, layout);
    forward_layers({});
    if (!request.skip_head) head_forward(request, inv_temperature);
}

void Transformer::prefill(KvCache& cache, const std::vector<std::vector<int32_t>>& prefixes) {
    const KvCacheShape& shape = cache.shape();
    const int B = int(prefixes.size());
    if (B != shape.contexts) throw std::invalid_argument("prefill: one prefix per context of the cache");
    int T = 1;
    for (const auto& p : prefixes) T = std::max<int>(T, int(p.size()));
    if (T > shape.prefix_capacity)
        throw std::invalid_argument(fmt::format("prefill: a prefix of {} tokens exceeds the cache's {}", T,
                                                shape.prefix_capacity));
    // Right padding is harmless: causal attention never lets a real token see a pad.
    std::vector<int32_t> tokens(size_t(B) * T, 0), targets(size_t(B) * T, -1), lengths(static_cast<size_t>(B));
    for (int b = 0; b < B; ++b) {
        std::copy(prefixes[b].begin(), prefixes[b].end(), tokens.begin() + int64_t(b) * T);
        lengths[size_t(b)] = int32_t(prefixes[b].size());
    }
    require_resident("prefill");
    HeadRequest request;
    request.skip_head = true;
    start_batch(tokens.data(), targets.data(), B, T, request, 1.0f, {});
    const int64_t KVD = config_.kv_dim();
    // Each layer's K/V go to the cache as soon as the layer has run: under recomputation
    // the next layer overwrites them.
    forward_layers([&](int l) {
        const LayerActivations& a = acts_.layers[l];
        // (B, T) rows into (B, Tp) rows; ops::copy rounds the fp32 K/V to bf16 when the
        // cache stores bf16 (cache.kv_dtype()).
        for (int b = 0; b < B; ++b) {
            const int64_t src = int64_t(b) * T, dst = int64_t(b) * shape.prefix_capacity;
            ops::copy(ctx_, cache.prefix_k[l].reshaped({int64_t(B) * shape.prefix_capacity, KVD}).rows(dst, dst + T),
                      a.k.reshaped({int64_t(B) * T, KVD}).rows(src, src + T));
            ops::copy(ctx_, cache.prefix_v[l].reshaped({int64_t(B) * shape.prefix_capacity, KVD}).rows(dst, dst + T),
                      a.v.reshaped({int64_t(B) * T, KVD}).rows(src, src + T));
        }
    });
    copy_from_host(ctx_, cache.prefix_len, lengths.data());
}

namespace {
// The first A rows of the cache's decode scratch, as the activations of one layer whose
// input is x (attn_lse stays empty: decode attention keeps no log-sum-exp).
LayerActivations decode_step_rows(const KvCache& cache, int64_t A, const Tensor& x) {
    LayerActivations a;
    a.input = x;
    a.ln1 = cache.ln1.rows(0, A);
    a.ln1_rstd = cache.rstd1.rows(0, A);
    a.q = cache.q.rows(0, A);
    a.k = cache.k.rows(0, A);
    a.v = cache.v.rows(0, A);
    a.attn = cache.attn.rows(0, A);
    a.mid = cache.mid.rows(0, A);
    a.ln2 = cache.ln2.rows(0, A);
    a.ln2_rstd = cache.rstd2.rows(0, A);
    a.gate = cache.gate.rows(0, A);
    a.up = cache.up.rows(0, A);
    a.act = cache.act.rows(0, A);
    return a;
}
}  // namespace

void Transformer::decode_step(KvCache& cache, int A) {
    if (cache.shape().precision != precision_)
        throw std::invalid_argument(fmt::format("decode_step: the cache's rows are {} but the model is {} (set "
                                                "KvCacheShape::precision to the model's)",
                                                precision_name(cache.shape().precision), precision_name(precision_)));
    require_resident("decode_step");
    const int64_t C = config_.hidden_size;
    const int G = cache.shape().group_size;
    const Tensor tokens = cache.tokens.rows(0, A), positions = cache.positions.rows(0, A);
    const Tensor slots = cache.slots.rows(0, A), index = cache.suffix_index.rows(0, A);
    const Tensor suffix_len = cache.suffix_len.rows(0, A);
    Tensor x = cache.hidden_a.rows(0, A), y = cache.hidden_b.rows(0, A);
    // The weights the batch forward reads (compute_: the bf16 working copy in bf16, the
    // fp32 parameters in f32) on rows of the model's activation dtype, so a step rounds
    // where the forward does; only attention differs (over the cache, in fp32).
    ops::embedding_forward(ctx_, x, tokens, compute_.embedding);
    for (int l = 0; l < config_.num_layers; ++l) {
        const LayerRows rows{decode_step_rows(cache, A, x), y, positions};
        layer_forward(ctx_, config_, compute_.layers[l], rows, [&]() {
            ops::kv_cache_append(ctx_, cache.suffix_k[l], rows.k, slots, index, cache.block_table);
            ops::kv_cache_append(ctx_, cache.suffix_v[l], rows.v, slots, index, cache.block_table);
            ops::decode_attention(ctx_, rows.attn, rows.q, cache.prefix_k[l], cache.prefix_v[l], cache.prefix_len,
                                  cache.suffix_k[l], cache.suffix_v[l], suffix_len, slots, G, cache.block_table);
        });
        std::swap(x, y);
    }
    // Final norm (fp32 output, the fp32 LM head's input), then the head.
    const Tensor normed = cache.lnf.rows(0, A);
    ops::rmsnorm_forward(ctx_, normed, cache.rstd1.rows(0, A), x, compute_.final_norm, config_.rms_norm_eps);
    ops::matmul_forward(ctx_, cache.logits.rows(0, A), normed.reshaped({A, C}), compute_.lm_head, Tensor{});
}

void Transformer::layer_backward(int l, const LayerTensors& g) {
    // Recomputation: the layer's activations from its saved input, unless the shared set
    // still holds them (the last layer, straight after the forward). Its output lands
    // where the forward put it (the next layer's input, or the residual), which the
    // backward has finished with, and is the same value bit for bit.
    if (recompute_ == Recompute::layer && held_layer_ != l) layer_forward_batch(l);
    const LayerTensors& w = compute_.layers[l];
    const LayerActivations& a = acts_.layers[l];
    Activations& s = acts_;  // scratch; s.dresidual holds dL/d(layer output) on entry
    const int64_t N = int64_t(acts_.B) * acts_.T, B = acts_.B, T = acts_.T;
    const int64_t H = config_.num_heads, KVH = config_.num_kv_heads, D = config_.head_dim;
    const int64_t QD = config_.q_dim(), KVD = config_.kv_dim(), F = config_.intermediate_size;

    // MLP branch.
    ops::fill(ctx_, s.dact, 0.0f);
    ops::matmul_backward(ctx_, s.dact, g.down_weight, Tensor{}, s.dresidual, a.act, w.down_weight);
    ops::swiglu_backward(ctx_, s.dgate, s.dup, s.dact, a.gate, a.up);
    ops::fill(ctx_, s.dnorm, 0.0f);
    ops::matmul_backward(ctx_, s.dnorm, g.gate_up_weight.rows(0, F), Tensor{}, s.dgate, a.ln2,
                         w.gate_up_weight.rows(0, F));
    ops::matmul_backward(ctx_, s.dnorm, g.gate_up_weight.rows(F, 2 * F), Tensor{}, s.dup, a.ln2,
                         w.gate_up_weight.rows(F, 2 * F));
    // The residual passes dL/dout through unchanged; the norm adds its share: now dL/dmid.
    ops::rmsnorm_backward(ctx_, s.dresidual, g.ln2_weight, s.dnorm, a.mid, w.ln2_weight, a.ln2_rstd);

    // Attention branch.
    ops::fill(ctx_, s.dattn, 0.0f);
    ops::matmul_backward(ctx_, s.dattn.reshaped({N, QD}), g.o_weight, Tensor{}, s.dresidual,
                         a.attn.reshaped({N, QD}), w.o_weight);
    ops::attention_backward(ctx_, s.dq.reshaped({B, T, H, D}), s.dk.reshaped({B, T, KVH, D}),
                            s.dv.reshaped({B, T, KVH, D}), s.dattn.reshaped({B, T, H, D}),
                            a.q.reshaped({B, T, H, D}), a.k.reshaped({B, T, KVH, D}), a.v.reshaped({B, T, KVH, D}),
                            a.attn.reshaped({B, T, H, D}), a.attn_lse, attention_segments());
    ops::rope_backward(ctx_, s.dq, acts_.positions, config_.rope_theta);
    ops::rope_backward(ctx_, s.dk, acts_.positions, config_.rope_theta);
    ops::fill(ctx_, s.dnorm, 0.0f);
    ops::matmul_backward(ctx_, s.dnorm, g.qkv_weight.rows(0, QD), g.qkv_bias.rows(0, QD), s.dq.reshaped({N, QD}),
                         a.ln1, w.qkv_weight.rows(0, QD));
    ops::matmul_backward(ctx_, s.dnorm, g.qkv_weight.rows(QD, QD + KVD), g.qkv_bias.rows(QD, QD + KVD),
                         s.dk.reshaped({N, KVD}), a.ln1, w.qkv_weight.rows(QD, QD + KVD));
    ops::matmul_backward(ctx_, s.dnorm, g.qkv_weight.rows(QD + KVD, QD + 2 * KVD),
                         g.qkv_bias.rows(QD + KVD, QD + 2 * KVD), s.dv.reshaped({N, KVD}), a.ln1,
                         w.qkv_weight.rows(QD + KVD, QD + 2 * KVD));
    ops::rmsnorm_backward(ctx_, s.dresidual, g.ln1_weight, s.dnorm, a.input, w.ln1_weight, a.ln1_rstd);
}

void Transformer::backward(const float* dlogprob, float inv_temperature) {
    begin_backward(inv_temperature);
    upload_dlogprob(dlogprob, int64_t(acts_.B) * acts_.T);
    backward_from_dlogprob(inv_temperature);
}

void Transformer::backward(const Tensor& dlogprob, float inv_temperature) {
    begin_backward(inv_temperature);
    const int64_t N = int64_t(acts_.B) * acts_.T;
    if (dlogprob.dtype != DType::f32 || dlogprob.numel() != N || dlogprob.device != ctx_.device)
        throw std::invalid_argument(fmt::format("backward: dlogprob must be ({}) f32 on the model's device, got {}", N,
                                                dlogprob.describe()));
    ops::copy(ctx_, acts_.dlogprob, dlogprob.reshaped({N}));
    uploaded_dlogprob_.clear();  // acts_.dlogprob no longer holds the last upload
    backward_from_dlogprob(inv_temperature);
}

void Transformer::begin_backward(float inv_temperature) {
    if (acts_.B == 0) throw std::logic_error("backward() before forward()");
    if (last_request_.skip_head) throw std::logic_error("backward() after a forward without the head");
    if (inv_temperature != last_inv_temperature_)
        throw std::logic_error("backward() at another temperature than its forward");
    ensure_gradients();
    ensure_backward_scratch();
}

void Transformer::backward_from_dlogprob(float inv_temperature) {
    const int64_t N = int64_t(acts_.B) * acts_.T;
    // The weights the backward reads (resident since the forward: no gather under ZeRO-3;
    // sharded, the head and the last layer are still in their slots).
    acquire(head_bucket(config_.num_layers), layer_bucket(config_.num_layers - 1));
    // Where the gradients go, asked for right before each bucket's first write (a lent
    // slot may serve several buckets in turn). A tied lm_head's gradient is the
    // embedding's: written first (here) and finished last.
    const bool tied = config_.tie_word_embeddings;
    ModelTensors embedding_grads = tied ? bucket_gradients(embedding_bucket()) : ModelTensors{};
    const ModelTensors head_grads = bucket_gradients(head_bucket(config_.num_layers));
    const Tensor lm_head_grad = tied ? embedding_grads.embedding : head_grads.lm_head;

    // Head, chunk by chunk (fp32); the chunk still resident from forward goes first.
    ops::fill(ctx_, acts_.dlnf, 0.0f);
    const int64_t R = logits_rows_per_chunk(N, config_.vocab_size);
    const int64_t last_begin = (N - 1) / R * R;
    for (int64_t begin = last_begin; begin >= 0; begin -= R) {
        const int64_t end = std::min(N, begin + R);
        if (resident_chunk_begin_ != begin) head_chunk_logits(begin, end);
        const Tensor dlogits = acts_.logits.rows(0, end - begin);
        ops::logsoftmax_backward(ctx_, dlogits, acts_.dlogprob.rows(begin, end), acts_.lse.rows(begin, end),
                                 acts_.targets.rows(begin, end), inv_temperature);
        resident_chunk_begin_ = -1;  // the buffer now holds gradients
        ops::matmul_backward(ctx_, acts_.dlnf.rows(begin, end), lm_head_grad, Tensor{}, dlogits,
                             acts_.lnf.rows(begin, end), compute_.lm_head);
    }
    ops::fill(ctx_, acts_.dresidual, 0.0f);
    ops::rmsnorm_backward(ctx_, acts_.dresidual, head_grads.final_norm, acts_.dlnf, acts_.residual,
                          compute_.final_norm, acts_.lnf_rstd);
    // Each bucket's gradients are final once its layer is done (a tied lm_head's go to
    // the embedding, which the embedding's backward finishes last).
    bucket_done(head_bucket(config_.num_layers));
    for (int l = config_.num_layers - 1; l >= 0; --l) {
        acquire(layer_bucket(l), l > 0 ? layer_bucket(l - 1) : -1);
        layer_backward(l, bucket_gradients(layer_bucket(l)).layers[size_t(l)]);
        bucket_done(layer_bucket(l));
    }
    if (!tied) embedding_grads = bucket_gradients(embedding_bucket());
    ops::embedding_backward(ctx_, embedding_grads.embedding, acts_.dresidual, acts_.tokens);
    bucket_done(embedding_bucket());
    if (grad_sink_) grad_sink_->backward_done();
}

void Transformer::upload_dlogprob(const float* dlogprob, int64_t N) {
    // NTP passes the same constant every micro-batch and step: upload it only when it
    // changed (or the scratch was re-carved, which clears uploaded_dlogprob_).
    if (uploaded_dlogprob_.size() == size_t(N) &&
        std::equal(dlogprob, dlogprob + N, uploaded_dlogprob_.begin(),
                   [](float a, float b) { return std::memcmp(&a, &b, sizeof(float)) == 0; }))
        return;
    copy_from_host(ctx_, acts_.dlogprob, dlogprob);
    uploaded_dlogprob_.assign(dlogprob, dlogprob + N);
}

namespace {
template <typename T>
std::vector<T> host_copy(const OpContext& ctx, const Tensor& t, int64_t n) {
    std::vector<T> out(static_cast<size_t>(n));
    if (n > 0) copy_to_host(ctx, out.data(), t.rows(0, n));
    return out;
}
}  // namespace

void Transformer::accumulate_logprob_sum() {
    if (logprob_sum_buffer_.bytes() == 0)
        logprob_sum_buffer_ = Buffer(ctx_.device, kLogprobSumSlots * sizeof(float), "log-prob sums");
    const Tensor slots = logprob_sum_buffer_.view(DType::f32, 0, {kLogprobSumSlots});
    if (logprob_sums_used_ == kLogprobSumSlots) logprob_sum_folded_ = take_logprob_sum();  // empties the slots
    ops::sum_into(ctx_, slots.rows(logprob_sums_used_, logprob_sums_used_ + 1),
                  acts_.logprob.rows(0, int64_t(acts_.B) * acts_.T));
    ++logprob_sums_used_;
}

double Transformer::take_logprob_sum() {
    double total = logprob_sum_folded_;
    if (logprob_sums_used_ > 0) {
        std::vector<float> sums(static_cast<size_t>(logprob_sums_used_));
        copy_to_host(ctx_, sums.data(), logprob_sum_buffer_.view(DType::f32, 0, {logprob_sums_used_}));
        for (float s : sums) total += s;
    }
    logprob_sums_used_ = 0;
    logprob_sum_folded_ = 0;
    return total;
}

std::vector<float> Transformer::logprobs() const {
    return host_copy<float>(ctx_, acts_.logprob, int64_t(acts_.B) * acts_.T);
}
std::vector<float> Transformer::entropies() const {
    if (!last_request_.entropy) throw std::logic_error("entropies() needs HeadRequest::entropy");
    return host_copy<float>(ctx_, acts_.entropy, int64_t(acts_.B) * acts_.T);
}
std::vector<float> Transformer::topk_entropies() const {
    if (last_request_.topk_entropy <= 0) throw std::logic_error("topk_entropies() needs HeadRequest::topk_entropy");
    return host_copy<float>(ctx_, acts_.topk_entropy, int64_t(acts_.B) * acts_.T);
}
std::vector<int32_t> Transformer::argmax_tokens() const {
    if (!last_request_.argmax) throw std::logic_error("argmax_tokens() needs HeadRequest::argmax");
    return host_copy<int32_t>(ctx_, acts_.argmax, int64_t(acts_.B) * acts_.T);
}

}  // namespace rpt
