// ZeRO-3's parameter shard (issue 15): the conversions between the flat (P) fp32
// parameter buffer of model/parameters.h and one rank's (shard_size) slices of it, laid
// out as model/zero_shards.h says (the layout of the AdamW moments and of the gradient
// shard). They are the pieces a model that keeps only its shard needs:
//   - cut_shard / cut_shard_host: this rank's slices of full parameters (a fresh init,
//     a loaded checkpoint's tensors), padding zero;
//   - gather_bucket_into: one bucket of every rank's shard into a padded slot (what the
//     forward reads a layer from; the slot is padded, so no staging is needed);
//   - gather_full: every bucket into a full (P) buffer (the whole-model readers: a
//     checkpoint write, the rollouts' prefill and decode, the KL reference copy).
// AdamW::step_shard (model/optimizer.h) updates parameters held in this layout.
//
// Not wired into `--zero 3` yet: the Transformer still reads the whole buffer
// (model/zero_runtime.h says what stays full size).
#pragma once

#include "comm/comm.h"
#include "kernels/ops.h"
#include "model/zero_shards.h"

namespace rpt {

// shard (shard_size) = this rank's slices of full (P); the padding is zeroed. Not collective.
void cut_shard(const OpContext& ctx, const ZeroShards& shards, const Tensor& full, const Tensor& shard);
// The same on host arrays (full: P floats, shard: shard_size floats).
void cut_shard_host(const ZeroShards& shards, const float* full, float* shard);

// slot (>= bucket b's padded size, fp32) rows [0, padded) = bucket b of every rank's
// `shard`, in flat order, padding last. Collective (`comm` may be null on one rank).
void gather_bucket_into(const OpContext& ctx, const ZeroShards& shards, Comm* comm, const Tensor& shard, int bucket,
                        const Tensor& slot);

// full (P) = every rank's `shard` in flat order. `staging` (>= max_padded fp32) is
// needed only when some bucket is padded (N does not divide it). Collective.
void gather_full(const OpContext& ctx, const ZeroShards& shards, Comm* comm, const Tensor& shard, const Tensor& full,
                 const Tensor& staging);

}  // namespace rpt
