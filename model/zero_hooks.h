// The two hooks through which the Transformer meets ZeRO without doing any communication
// itself (model/zero_runtime.h implements both; without them everything is resident and
// nothing is reduced during the backward).
//
// Buckets are the units of model/zero_shards.h: the embedding, one per decoder layer,
// the head. The forward acquires them in that order, the backward in the reverse order
// and reports each as soon as its gradients are final.
#pragma once

#include "kernels/tensor.h"

namespace rpt {

inline int embedding_bucket() { return 0; }
inline int layer_bucket(int layer) { return 1 + layer; }
inline int head_bucket(int num_layers) { return 1 + num_layers; }

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
};

// Where finished gradients go. bucket_done(b) comes right after the backward last writes
// bucket b of `grads` (P, fp32); backward_done() at the end of the backward, before the
// gradient buffer may be written again.
class GradientSink {
public:
    virtual ~GradientSink() = default;
    virtual void bucket_done(int bucket, const Tensor& grads) = 0;
    virtual void backward_done() = 0;
};

}  // namespace rpt
