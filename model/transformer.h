// The Qwen2 decoder: parameters, gradients and activations on one device, forward and
// backward over a (B, T) token batch. Gradients and the backward's scratch exist only
// once training starts (the first zero_grad() or backward()), so a model that only runs
// forward holds its parameters and forward activations alone. Written once against
// kernels/ops.h, so the same code runs on the CPU twins and on the CUDA kernels.
//
// Precision (model/precision.h): in bf16 the forward and backward read the bf16 working
// copy of the weights (biases and the LM head excepted: fp32) and keep activations and
// activation gradients in bf16; statistics, parameter gradients, the final norm's output
// and everything from the logits on are fp32. The code is the same for both precisions
// and both backends: only the dtypes of the tensors carved here differ. Decoding with
// the KV cache follows the same recipe: its prefill is a forward, and decode_step reads
// the same weights on scratch rows of the model's activation dtype (model/kv_cache.h),
// attending over the cache (f32 or bf16) with fp32 statistics.
//
// The loss is not fixed here: forward() yields per-token log-probabilities of the
// targets (and optionally entropies), and backward() takes dL/dlogprob per token. NTP
// passes -weight/sum(weights); the RL trainer passes its GRPO coefficients.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "kernels/buffer.h"
#include "kernels/ops.h"
#include "model/activations.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/parameters.h"
#include "model/precision.h"
#include "model/zero_hooks.h"

namespace rpt {

class ZeroRuntime;

// What the head computes besides the target log-probs.
struct HeadRequest {
    bool entropy = false;  // full-softmax entropy per token
    int topk_entropy = 0;  // > 0: entropy of the top-k renormalised softmax (the proxy score)
    bool argmax = false;   // greedy next token per position
    bool skip_head = false;  // layers only (a prefill for the KV cache): no logits at all
};

// A forward batch whose rows are not one sequence each: several sequences that share a
// prompt packed into one row (the GRPO update of a group, rl/grpo.cpp), so the prompt is
// computed once instead of once per sequence. Null fields take the plain default.
struct PackedLayout {
    const int32_t* positions = nullptr;  // (B*T) RoPE position of each token; default t within the row
    const int32_t* segments = nullptr;   // (B*T) attention segment ids (kernels/ops.h); default causal
};

// The tensors one decoder layer reads and writes for a set of N rows: a training batch
// (N = B * T, the layer's saved activations) or one decoding step (N = active sequences,
// the cache's scratch rows). attn is written by the attention callback; attn_lse is the
// training attention's (decoding leaves it empty).
struct LayerRows : LayerActivations {
    Tensor out;        // (N, C)  the layer's output (the next layer's input)
    Tensor positions;  // (N) i32, RoPE positions
};

// One decoder layer over `rows`; `attention` fills rows.attn from rows.q/k/v (causal
// attention in training, cached attention when decoding). Shared by both paths so the
// layer is written once.
void layer_forward(const OpContext& ctx, const ModelConfig& config, const LayerTensors& weights,
                   const LayerRows& rows, const std::function<void()>& attention);

class Transformer {
public:
    Transformer(const ModelConfig& config, OpContext ctx, Precision precision = Precision::f32);

    const ModelConfig& config() const { return config_; }
    Precision precision() const { return precision_; }
    const ParameterLayout& layout() const { return layout_; }
    const OpContext& context() const { return ctx_; }
    // The fp32 parameters (the masters in bf16). Who writes them from outside (a loader,
    // a copy) calls refresh_working() after; the optimizer writes both in one pass.
    // Sharded (shard_parameters): while a full copy gathered by gather_parameters() is
    // current, its views; else only .flat is set, and it is this rank's shard
    // (shard_size, model/zero_parameters.h), not the (P) buffer.
    const ModelTensors& params() const { return full_copy_current() ? full_copy_.params : params_; }
    // (P) bf16: the working copy of params() in bf16; empty in f32 (sharded: the full
    // copy's, when current, else empty).
    const Tensor& working_params() const { return full_copy_current() ? full_copy_.working.flat : working_.flat; }
    // working = params rounded to bf16 (nothing in f32).
    void refresh_working();
    // The fp32 parameter gradients. Empty until the first zero_grad() or backward(): a
    // model that never trains (inference, the frozen KL reference) holds no gradient
    // memory. Always empty under a sink that lends slots (ZeRO-2/3): the gradients are
    // then the runtime's shard (ZeroRuntime::gradient_shard).
    const ModelTensors& grads() const { return grads_; }
    bool has_gradients() const { return grad_buffer_.bytes() > 0; }
    const Activations& activations() const { return acts_; }

    // What the forward saves for the backward (model/recompute.h); none by default.
    // Changing it re-carves the activations at the next forward.
    void set_recompute(Recompute recompute);
    Recompute recompute() const { return recompute_; }

    // ZeRO (model/zero_hooks.h; not owned, null = everything resident, nothing reduced
    // during the backward): `source` is asked for each bucket before the forward or
    // backward reads its weights, `sink` told of each bucket whose gradients are final
    // (and, when it lends slots, asked where to write each bucket; a gradient buffer
    // the model already had is freed).
    void set_zero_hooks(ParameterSource* source, GradientSink* sink);
    // Brings every parameter into place (collective under ZeRO-3; no-op when resident):
    // what reads the weights outside a training forward calls it first, on every rank
    // (a checkpoint's write, the rollouts' prefill and decode).
    // Sharded: gathers a temporary full copy (P fp32, and P bf16 in bf16) that the
    // forward, prefill, decode_step and params() read without any collective until the
    // next update, after which the next forward frees it. Once per rollout batch, not per
    // layer: decoding runs every layer once per token, a different number of times per
    // rank, so it cannot gather layer by layer.
    void gather_parameters() const;
    // ZeRO-3 that saves parameter memory (opt-in; `--zero 3` does not call it yet): keeps
    // only this rank's fp32 shard (cut from the current parameters) and frees the (P)
    // buffer and working copy; every forward and backward then reads each bucket from
    // the runtime's gather slots (ZeroRuntime::shard_parameters), AdamW::step updates
    // the shard. `runtime` must be this model's ParameterSource (set_zero_hooks) at level
    // 3. Not served on a sharded model yet: loading weights into it (load them first,
    // then shard).
    void shard_parameters(ZeroRuntime& runtime);
    bool sharded() const { return shard_runtime_ != nullptr; }

    void init_weights(uint64_t seed);
    // Allocates the gradients on first use, then sets them to zero (under a sink that
    // lends slots: zeroes the sink's accumulation instead).
    void zero_grad();

    // tokens, targets: host arrays of B*T ids (targets -1 where no loss is taken).
    // Fills activations().logprob and what `request` asks for. A packed layout lets a row
    // hold more tokens than the model's context, as long as every position fits it.
    void forward(const int32_t* tokens, const int32_t* targets, int B, int T, const HeadRequest& request = {},
                 float inv_temperature = 1.0f, const PackedLayout& layout = {});
    // Accumulates parameter gradients of L given dL/dlogprob (host array of B*T, for the
    // batch of the last forward, whose log-probs were taken at inv_temperature: the
    // gradient is taken at the same one, and a different one throws). The head's logits
    // chunk still resident from that forward is reused, not recomputed.
    void backward(const float* dlogprob, float inv_temperature = 1.0f);
    // The same with dL/dlogprob (B*T) f32 already on the model's device (the GRPO update
    // computes it there): no upload, no host synchronisation.
    void backward(const Tensor& dlogprob, float inv_temperature = 1.0f);

    // Runs the layers over each context's prefix (host token lists, right-padded to the
    // longest) and stores their keys and values as the cache's shared prefixes.
    void prefill(KvCache& cache, const std::vector<std::vector<int32_t>>& prefixes);
    // One decoding step for the first A rows of the cache's step tensors (tokens,
    // positions, slots, suffix_index, suffix_len, already filled): appends their KV and
    // leaves next-token logits in cache.logits (A, V, fp32). The cache's rows must be of
    // the model's precision (KvCacheShape::precision; std::invalid_argument otherwise).
    void decode_step(KvCache& cache, int A);

    // A training step's loss without a readback per micro-batch: each call stores the
    // sum of the last forward's target log-probs (ops::sum_into, on the device) in the
    // next of kLogprobSumSlots slots; take_logprob_sum() reads the used slots back in one
    // copy, adds them in double, and starts over. (More forwards than slots fold the
    // slots into the host total with one readback each time they fill.)
    void accumulate_logprob_sum();
    double take_logprob_sum();

    // Host copies of per-token outputs of the last forward.
    std::vector<float> logprobs() const;
    std::vector<float> entropies() const;
    std::vector<float> topk_entropies() const;
    std::vector<int32_t> argmax_tokens() const;

    // Bytes held by parameters (fp32 masters), the bf16 working copy, gradients (0 before
    // training; with ZeRO also the runtime's gradient shard, and from ZeRO-2 its slots
    // instead of the buffer), saved activations and
    // backward scratch (for reports and `rpt plan`).
    // Sharded: the shard and the gather slots (their bf16 twins included).
    // And a gathered full copy while it exists.
    size_t parameter_bytes() const {
        return param_buffer_.bytes() + (param_source_ ? param_source_->parameter_slot_bytes() : 0) +
               full_copy_.buffer.bytes();
    }
    size_t working_bytes() const { return working_buffer_.bytes(); }
    size_t gradient_bytes() const { return grad_buffer_.bytes() + (grad_sink_ ? grad_sink_->gradient_bytes() : 0); }
    size_t activation_bytes() const { return act_buffer_.bytes(); }
    size_t backward_scratch_bytes() const { return scratch_buffer_.bytes(); }

private:
    void ensure_batch(int B, int T);
    void ensure_gradients();
    // Carves the backward scratch of the current batch shape (once per shape).
    void ensure_backward_scratch();
    // Positions and segment ids of the current batch (default: one sequence per row):
    // checks them, stages what changed in batch_upload_, and returns how many rows of
    // Activations::batch_rows the batch's upload covers (2, 3 or 4).
    int stage_layout(const PackedLayout& layout);
    Tensor attention_segments() const;  // (B, T) i32, or empty when not packed
    ActivationSpec activation_spec() const { return {config_, precision_, recompute_}; }
    // The forward in phases: checks and uploads the batch, runs the layers (after_layer,
    // when given, sees each layer's activations as soon as they exist), runs the head.
    void start_batch(const int32_t* tokens, const int32_t* targets, int B, int T, const HeadRequest& request,
                     float inv_temperature, const PackedLayout& layout);
    void forward_layers(const std::function<void(int)>& after_layer);
    void head_forward(const HeadRequest& request, float inv_temperature);
    void layer_forward_batch(int l);
    // `g`: where the layer's gradients accumulate (bucket_gradients of its bucket).
    void layer_backward(int l, const LayerTensors& g);
    // param_source_->acquire, when set; sharded: acquire_slot (issuing `prefetch` ahead),
    // and points the bucket's compute_ views at its slot.
    void acquire(int bucket, int prefetch = -1);
    void bucket_done(int bucket) const;  // grad_sink_->bucket_done, when set
    bool lends_slots() const { return grad_sink_ && grad_sink_->lends_slots(); }
    // Where the backward writes bucket b: grads_, or views of the slot the sink lends
    // (only bucket b's tensors set).
    ModelTensors bucket_gradients(int bucket) const;
    // Checks the weights are readable without a collective; sharded, points compute_ at
    // the full copy (which must be current).
    void require_resident(const char* what);
    bool full_copy_current() const;
    // Sharded: drops a full copy the update made stale (compute_ then holds no views).
    void drop_stale_full_copy();
    void head_chunk_logits(int64_t row_begin, int64_t row_end);
    // acts_.dlogprob = dlogprob (N), uploaded only when it differs from the last upload.
    void upload_dlogprob(const float* dlogprob, int64_t N);
    // The backward in phases: checks and allocations, then (with acts_.dlogprob filled)
    // the head, the layers and the embedding.
    void begin_backward(float inv_temperature);
    void backward_from_dlogprob(float inv_temperature);

    ModelConfig config_;
    OpContext ctx_;
    ParameterLayout layout_;
    Precision precision_;
    Buffer param_buffer_;    // (P) fp32; sharded: (shard_size) fp32, this rank's slices
    Buffer grad_buffer_;     // (P) fp32, allocated by the first zero_grad() or backward()
    Buffer working_buffer_;  // (P) bf16, in bf16 only
    Buffer act_buffer_;      // the forward's activations of the largest batch shape so far
    Buffer scratch_buffer_;  // the backward's scratch (Activations::dlogprob ... dact)
    ModelTensors params_;
    ModelTensors grads_;
    ModelTensors working_;   // views of working_buffer_ (empty in f32)
    // What the forward and backward read: params_ in f32; in bf16 working_, except the
    // biases (added in the matmul's fp32 epilogue) and the LM head, from params_.
    // Sharded: views into the runtime's gather slots, set bucket by bucket by acquire().
    ModelTensors compute_;
    Activations acts_;
    HeadRequest last_request_;
    float last_inv_temperature_ = 1.0f;
    int64_t resident_chunk_begin_ = -1;  // logits rows held in acts_.logits, -1 if none
    Recompute recompute_ = Recompute::none;
    ParameterSource* param_source_ = nullptr;  // ZeRO-3's gathers (not owned)
    GradientSink* grad_sink_ = nullptr;        // ZeRO-2/3's reductions (not owned)
    ZeroRuntime* shard_runtime_ = nullptr;     // sharded: the runtime holding the slots (not owned)
    // Sharded: the whole-model readers' temporary copy (gather_parameters). Mutable: a
    // const reader (a checkpoint's write) gathers it.
    struct FullCopy {
        Buffer buffer;          // (P) fp32, then (P) bf16 in bf16
        ModelTensors params;    // views of the fp32 part
        ModelTensors working;   // views of the bf16 part (empty in f32)
        ModelTensors compute;   // compute_weights of the two
        int64_t generation = -1;  // ZeroRuntime::parameter_generation when gathered
    };
    mutable FullCopy full_copy_;
    int held_layer_ = -1;  // whose activations the layer set holds (the shared one under recompute)
    // accumulate_logprob_sum's device slots and what already came back of them.
    static constexpr int kLogprobSumSlots = 64;
    Buffer logprob_sum_buffer_;   // (kLogprobSumSlots) f32, allocated by the first call
    int logprob_sums_used_ = 0;
    double logprob_sum_folded_ = 0;
    // Host staging of the batch's uploads (kernels/host_sync.h counts each upload).
    std::vector<int32_t> batch_upload_;      // the host image of Activations::batch_rows
    std::vector<float> uploaded_dlogprob_;   // what acts_.dlogprob holds (empty: unknown)
};

}  // namespace rpt
