// The scaling model of an RPT step (`rpt plan --run train --step-time`, and the README's
// table): the expected seconds of one step on a GPU cluster, from the model's shape, the
// run's settings (model/memory_plan.h's PlanSettings: ranks = GPUs, ZeRO level,
// recomputation, contexts x rollouts, prompt and response lengths, micro-batch) and a
// handful of throughputs that are measured, not derived: the achieved training
// TFLOP/s per GPU, the HBM bandwidth the decode step reaches, and the collectives' bus
// bandwidth within and across nodes. The defaults are public H100 SXM figures, stated
// as assumptions (ClusterThroughputs); gpu-check measures the same quantities on a lent
// GPU, and a user replaces them with their own.
//
// The step, in phases (what each costs, per GPU, data-parallel over N GPUs):
//   rollout   S_local = contexts * rollouts / N sequences, decoded in waves of c
//             concurrent sequences, c limited by the memory left for keys and values
//             (device memory - what `rpt plan` counts besides the KV cache, with
//             ZeRO-2/3's gradient and parameter buffers sharded as designed (rpt keeps
//             them whole today; the plan counts what rpt does), the
//             update's activations included since the model keeps them between steps -
//             the gathered bf16 weights under ZeRO-3), each sequence holding its own
//             generated tokens' keys and values plus 1/G of its group's shared prompt,
//             at the mean response length (the paged cache allocates as tokens
//             arrive). A wave runs max_new_tokens decode steps (its longest response
//             ends it). A decode step reads the bf16 weights once and every sequence's
//             keys and values, or is bound by its matmul FLOPs, whichever is slower;
//             the prompts' prefill is compute-bound.
//   update    forward + backward of every response behind its group's shared prompt
//             (model/flops.h), plus one more forward under --recompute layer, at the
//             achieved training throughput; exactly on-policy (one update per batch) and
//             every group counted (none skipped for equal rewards: the worst case).
//   comm      gradients: an allreduce (ZeRO 0/1, ZeRO-1's being a reduce-scatter plus a
//             parameter all-gather of the same volume) or one reduce-scatter per
//             micro-batch and a parameter all-gather after the update (ZeRO-2/3);
//             ZeRO-3 adds the bf16 parameters all-gathered for the forward and again for
//             the backward of every micro-batch, and once for the rollout. Ring
//             collectives move (N-1)/N of the buffer (allreduce twice that) at the bus
//             bandwidth of the slowest link they cross. Overlapped with the backward and
//             prefetched ahead of the forward, only what exceeds the update's compute is
//             exposed.
//   optimizer AdamW streams its shard: 30 bytes per parameter (read master, gradient, two
//             moments; write master, moments and the bf16 copy) at HBM bandwidth.
// Left out, and said so: pipeline bubbles, kernel launch gaps, host work between
// phases, stragglers, and tensor parallelism (rpt has none: each GPU decodes with the
// whole model).
#pragma once

#include <string>
#include <vector>

#include "model/config.h"
#include "model/memory_plan.h"

namespace rpt {

struct ClusterThroughputs {
    int gpus_per_node = 8;
    double peak_tflops = 989;           // dense bf16 tensor-core peak per GPU (H100 SXM), for MFU
    double train_tflops = 400;          // achieved by a training step per GPU: about 40% MFU
    double hbm_gbps = 3350;             // HBM3 bandwidth per GPU (H100 SXM)
    double decode_efficiency = 0.7;     // share of it a decode step reaches
    double intra_node_busbw_gbps = 360; // NCCL bus bandwidth over NVLink within a node
    double inter_node_busbw_gbps = 45;  // across nodes: 400 Gb/s InfiniBand per GPU, about 90%
    double device_memory_gib = 80;
};

struct StepTimeEstimate {
    // The rollout's shape.
    int sequences_per_gpu = 0;        // S_local
    int concurrent_sequences = 0;     // c, per GPU (0: not even one sequence fits)
    int waves = 0;
    double kv_room_bytes = 0;         // memory left for keys and values per GPU
    double decode_step_s = 0;         // one decode step of a full wave
    bool decode_memory_bound = false; // the decode step is bound by bytes, not FLOPs
    // Seconds per phase (per step; every GPU in parallel).
    double prefill_s = 0;
    double rollout_s = 0;             // prefill + decoding
    double update_s = 0;              // forward + backward (+ recomputation)
    double comm_s = 0;                // every collective of the step
    double exposed_comm_s = 0;        // what the overlap leaves on the critical path
    double optimizer_s = 0;
    double total_s = 0;
    // Work.
    double update_flops = 0;          // per GPU
    double rollout_flops = 0;         // per GPU
    double generated_tokens = 0;      // all GPUs, at the mean response length
    double mfu() const;               // (update + rollout FLOPs) / (total * peak), per GPU
    double peak_tflops = 0;
};

// The estimate for settings.run == PlanRun::rpt on settings.ranks GPUs, with responses
// of mean_response_tokens (<= settings.max_new_tokens) on average. Throws
// std::invalid_argument naming the flag for a non-RPT run, a mean above the budget, or
// contexts that do not divide over the GPUs.
StepTimeEstimate estimate_rpt_step(const ModelConfig& config, const PlanSettings& settings, int mean_response_tokens,
                                   const ClusterThroughputs& cluster);

// The estimate as report lines: the assumptions, the rollout's shape and the seconds per phase.
std::vector<std::string> step_time_lines(const PlanSettings& settings, int mean_response_tokens,
                                         const ClusterThroughputs& cluster, const StepTimeEstimate& e);

}  // namespace rpt
