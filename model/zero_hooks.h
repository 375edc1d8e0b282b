// The two hooks through which the Transformer meets ZeRO without doing any communication
// itself (model/zero_runtime.h implements both; without them everything is resident and
// nothing is reduced during the backward).
//
// Buckets are the units of model/zero_shards.h: the embedding, one per decoder layer,
// the head. The forward acquires them in that order, the backward in the reverse order
// and reports each as soon as its gradients are final.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/tensor.h"

namespace rpt {

inline int embedding_bucket() { return 0; }
inline int layer_bucket(int layer) { return 1 + layer; }
inline int head_bucket(int num_layers) { return 1 + num_layers; }

// One bucket's current weights when the source keeps them in its own slots (sharded
// ZeRO-3, model/zero_parameter_slots.h): views holding flat elements [begin, begin +
// f32.numel()) of the layout (ParameterLayout::views(window, begin) names them).
struct BucketWeights {
    Tensor f32;      // (bucket size) fp32
    Tensor working;  // (bucket size) bf16, empty in f32
    int64_t begin = 0;
};

// Where the weights come from. acquire(b) returns once bucket b of `params` (P, fp32) and
// of `working` (P, bf16, or empty) holds the current weights. Collective under ZeRO-3:
// every rank acquires the same buckets in the same order.
class ParameterSource {
public:
    virtual ~ParameterSource() = default;
    virtual void acquire(int bucket, const Tensor& params, const Tensor& working) = 0;
    // Every bucket in forward order (before decoding, or writing a checkpoint).
    virtual void acquire_all(const Tensor& params, const Tensor& working) = 0;
    // Whether every bucket holds the current weights (no collective needed to read them).
    virtual bool resident() const = 0;
    // Sharded parameters (the model keeps only its shard, Transformer::shard_parameters):
    // acquire_slot(b, prefetch) gathers bucket b into a slot of the source's and returns
    // it, issuing `prefetch` (a bucket or -1) ahead. Collective, as acquire().
    virtual bool sharded() const { return false; }
    virtual BucketWeights acquire_slot(int bucket, int prefetch) = 0;
    // Bytes of those slots (0 unless sharded).
    virtual size_t parameter_slot_bytes() const { return 0; }
};

// A bucket's gradients while the backward writes them: (end - begin) fp32, zero when
// lent, holding flat elements [begin, end) of the layout (model/parameters.h).
struct GradientSlot {
    Tensor grads;
    int64_t begin = 0;
};

// Where gradients go. Two ways:
//   - the model keeps its own (P) fp32 buffer, accumulating every backward into it, and
//     the sink reads it when the step needs it (lends_slots() false: ZeRO-0/1);
//   - the sink lends the backward one slot per bucket (gradient_slot(b), before the
//     backward first writes bucket b) and keeps what bucket_done(b) hands back in its
//     own (sharded) accumulation; the model then holds no gradient buffer (ZeRO-2/3).
//     A slot may be lent to several buckets in turn: the backward asks for bucket b's
//     right before it first writes it (a tied lm_head: the embedding's, at the start).
// bucket_done(b) comes right after the backward last writes bucket b; backward_done()
// at the end of the backward.
class GradientSink {
public:
    virtual ~GradientSink() = default;
    virtual bool lends_slots() const = 0;
    virtual GradientSlot gradient_slot(int bucket) = 0;
    virtual void bucket_done(int bucket) = 0;
    virtual void backward_done() = 0;
    // Starts a new accumulation (Transformer::zero_grad), when the sink keeps it.
    virtual void zero_gradients() = 0;
    // Bytes the sink holds for the model's gradients (its accumulation, or reduction
    // target, and its slots), beside the model's own buffer if any.
    virtual size_t gradient_bytes() const = 0;
};

}  // namespace rpt
