// The memory plan of a run (`rpt plan`, and the same lines at the start of pretrain and
// train): the bytes one rank holds on its device for parameters, gradients, optimizer
// state, the frozen reference, activations, the logits chunk, backward scratch, the KV
// cache and ops' workspace, from the model's shape and the run's settings, without
// allocating anything. Activations and the KV cache are measured with the layouts the
// model and cache carve (model/activations.h, KvCache::total_bytes); the rest is P
// times element sizes. Response lengths are taken at their maximum, so the plan is the
// peak of the worst step. Checked against the peak of real CPU runs
// (tests/test_memory_plan.cpp).
//
// ZeRO (model/zero_runtime.h): the moments and a gradient shard are the buckets' padded
// slices (model/zero_shards.h), plus one staging bucket when N divides some bucket
// unevenly. From level 2 the gradients are that shard plus the backward's slots
// (GradientSlotSizes) instead of a whole buffer; the parameter buffer stays whole at
// level 3 in this version, and the plan's first line says so.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "kernels/tensor.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/precision.h"
#include "model/recompute.h"

namespace rpt {

enum class PlanRun { inference, pretrain, rpt };

struct PlanSettings {
    PlanRun run = PlanRun::pretrain;
    DeviceKind device = DeviceKind::cpu;
    Precision precision = Precision::f32;
    Recompute recompute = Recompute::none;
    int ranks = 1;
    int zero = 0;  // 0-3
    // Pretraining (and inference over batches): the global batch, split over the ranks,
    // of seq-token rows; held-out evaluation runs eval_rows rows (forward only).
    int batch = 8;
    int seq = 256;
    int eval_rows = 0;
    // RPT: contexts per step (split over the ranks) x rollouts, the longest prompt and
    // the most new tokens; GRPO micro-batches of micro_batch_rows responses, each group's
    // prompt shared by its responses or repeated per response; the KL reference.
    int contexts = 16;
    int rollouts = 8;
    int prompt_tokens = 64;
    int max_new_tokens = 16;
    int micro_batch_rows = 64;
    bool shared_prompt = true;
    bool kl_reference = false;
    KvDType kv_dtype = KvDType::automatic;
    int kv_block_tokens = kDefaultKvBlockTokens;  // the rollouts' paged suffix (0: contiguous)
    size_t device_memory = 0;  // bytes to fit in; 0: no check
};

struct MemoryPlan {
    size_t parameters = 0;   // fp32 masters
    size_t working = 0;      // the bf16 working copy (bf16 only)
    size_t gradients = 0;    // fp32 (training only)
    size_t optimizer = 0;    // AdamW moments (this rank's shard under ZeRO), ZeRO buffers
    size_t reference = 0;    // the frozen KL reference: parameters, working copy, activations
    size_t activations = 0;  // the forward's saved tensors of the largest batch shape, without the logits
    size_t logits = 0;       // the head's logits chunk (R, V) f32
    size_t backward_scratch = 0;
    size_t kv_cache = 0;     // keys, values and the decode step's rows and logits
    size_t workspace = 0;    // ops' own: the cuBLASLt workspace on the GPU (CPU thread scratch not counted)
    size_t total() const;
};

MemoryPlan plan_memory(const ModelConfig& config, const PlanSettings& settings);

// Rows of one held-out evaluation batch of pretraining: up to `batch` documents at once,
// each rank its share of eval_docs (rl/ntp_trainer.cpp).
int ntp_eval_rows(int batch, int eval_docs, int ranks);

// The plan as report lines: the settings, one line of bytes per kind, the total and,
// with a device memory, whether it fits.
std::vector<std::string> plan_lines(const ModelConfig& config, const PlanSettings& settings, const MemoryPlan& plan);

// When the plan does not fit settings.device_memory: the flag changes that would make it
// fit (each alone, else all together), as lines; empty when it fits or nothing helps.
std::vector<std::string> fitting_suggestions(const ModelConfig& config, const PlanSettings& settings);

}  // namespace rpt
