// The RPT step-time model (see step_time.h for the phases and their assumptions).
#include "model/step_time.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "model/flops.h"
#include "model/parameters.h"

namespace rpt {
namespace {

constexpr double kGiB = 1073741824.0;
constexpr double kBf16Bytes = 2, kF32Bytes = 4;
constexpr double kAdamWBytesPerParameter = 30;  // read 4+4+4+4, write 4+4+4+2

// Seconds for a ring collective that moves `fraction` of `bytes` through each GPU.
double collective_seconds(double bytes, double fraction, double busbw_gbps) {
    return bytes * fraction / (busbw_gbps * 1e9);
}

struct Shapes {
    int N = 1;                 // GPUs
    int contexts_local = 0;    // B / N
    int sequences_local = 0;   // S_local
    int micro_batches = 0;     // GRPO micro-batches per GPU
    double P = 0;              // parameters
    double kv_per_token = 0;   // bytes of keys and values per token, all layers
    double prompt = 0, mean_response = 0, max_response = 0;
};

Shapes step_shapes(const ModelConfig& c, const PlanSettings& s, int mean_response_tokens) {
    if (s.run != PlanRun::rpt) throw std::invalid_argument("--step-time: needs --run train (an RPT step)");
    if (mean_response_tokens < 1 || mean_response_tokens > s.max_new_tokens)
        throw std::invalid_argument(fmt::format("--mean-response-tokens {}: must be in [1, --max-new-tokens {}]",
                                                mean_response_tokens, s.max_new_tokens));
    Shapes x;
    x.N = std::max(1, s.ranks);
    if (s.contexts % x.N != 0)
        throw std::invalid_argument(fmt::format("--contexts {} must divide over --ranks {}", s.contexts, x.N));
    x.contexts_local = s.contexts / x.N;
    x.sequences_local = x.contexts_local * s.rollouts;
    x.micro_batches = (x.sequences_local + s.micro_batch_rows - 1) / s.micro_batch_rows;
    x.P = double(ParameterLayout(c).total());
    x.kv_per_token = 2.0 * c.num_layers * c.kv_dim() * kBf16Bytes;  // the GPU's cache is bf16
    x.prompt = s.prompt_tokens;
    x.mean_response = mean_response_tokens;
    x.max_response = s.max_new_tokens;
    return x;
}

// Phase 1: the rollout. How many sequences decode at once, in how many waves, and the
// seconds of the prefill and of the decode steps.
void estimate_rollout(const ModelConfig& c, const PlanSettings& s, const Shapes& x, const ClusterThroughputs& k,
                      StepTimeEstimate& e) {
    // Everything the plan counts but the KV cache stays allocated through the rollout:
    // the training state, and the update's activations and scratch (the model keeps its
    // buffers of the largest batch shape between steps).
    const MemoryPlan plan = plan_memory(c, s);
    double resident = double(plan.total() - plan.kv_cache);
    // ZeRO-2/3 as designed: gradients (2) and parameters (3) sharded over the ranks.
    // (rpt's ZeRO-2/3 add the backward's gradient slots, and ZeRO-3 keeps the parameter
    // buffer whole today, which the plan counts.)
    const double N = x.N, bf16_copy = plan.working > 0 ? kBf16Bytes : 0;
    resident -= double(plan.parameters + plan.working + plan.gradients);
    resident += x.P * (s.zero >= 3 ? (kF32Bytes + bf16_copy) / N : kF32Bytes + bf16_copy);
    resident += x.P * kF32Bytes / (s.zero >= 2 ? N : 1);
    if (s.zero >= 3) resident += x.P * kBf16Bytes;  // the whole bf16 model, gathered once for the rollout
    e.kv_room_bytes = std::max(0.0, k.device_memory_gib * kGiB - resident);
    // A sequence holds its own response and its share of the group's prompt.
    const double per_sequence = x.kv_per_token * (x.mean_response + x.prompt / s.rollouts);
    e.sequences_per_gpu = x.sequences_local;
    e.concurrent_sequences = int(std::min<double>(x.sequences_local, std::floor(e.kv_room_bytes / per_sequence)));
    if (e.concurrent_sequences < 1) return;
    e.waves = (x.sequences_local + e.concurrent_sequences - 1) / e.concurrent_sequences;

    const double cseq = e.concurrent_sequences;
    const double context = x.prompt + x.mean_response / 2;  // a step's mean attention span
    const double step_bytes = x.P * kBf16Bytes + cseq * x.kv_per_token * context;
    const double bytes_s = step_bytes / (k.hbm_gbps * 1e9 * k.decode_efficiency);
    const double step_flops = forward_flops(c, cseq, cseq * context);
    const double flops_s = step_flops / (k.train_tflops * 1e12);
    e.decode_step_s = std::max(bytes_s, flops_s);
    e.decode_memory_bound = bytes_s >= flops_s;

    const double prefill_flops = forward_flops(c, x.contexts_local * x.prompt, x.contexts_local * x.prompt * x.prompt / 2);
    e.prefill_s = prefill_flops / (k.train_tflops * 1e12);
    e.rollout_s = e.prefill_s + e.waves * x.max_response * e.decode_step_s;
    e.rollout_flops = prefill_flops + e.waves * x.max_response * step_flops;
}

// Phase 2: the GRPO update's forward and backward over the packed groups.
void estimate_update(const ModelConfig& c, const PlanSettings& s, const Shapes& x, const ClusterThroughputs& k,
                     StepTimeEstimate& e) {
    const double G = s.rollouts, R = x.mean_response, Tp = x.prompt;
    const double tokens = x.contexts_local * (Tp + G * R);
    const double pairs = x.contexts_local * (Tp * Tp / 2 + G * R * (Tp + R / 2));
    e.update_flops = training_flops(c, tokens, pairs);
    if (s.recompute == Recompute::layer) e.update_flops += forward_flops(c, tokens, pairs);
    e.update_s = e.update_flops / (k.train_tflops * 1e12);
}

// Phase 3: the collectives, and what the overlap leaves exposed.
void estimate_comm(const PlanSettings& s, const Shapes& x, const ClusterThroughputs& k, StepTimeEstimate& e) {
    if (x.N == 1) return;
    const double busbw = x.N <= k.gpus_per_node ? k.intra_node_busbw_gbps : k.inter_node_busbw_gbps;
    const double ring = double(x.N - 1) / x.N;
    const double grads = x.P * kF32Bytes, params = x.P * kF32Bytes, working = x.P * kBf16Bytes;
    double seconds = 0;
    if (s.zero <= 1) {
        seconds += collective_seconds(grads, 2 * ring, busbw);  // allreduce (ZeRO-1: reduce-scatter + gather)
    } else {
        seconds += x.micro_batches * collective_seconds(grads, ring, busbw);  // per micro-batch reduce-scatter
        seconds += collective_seconds(params, ring, busbw);                    // updated shards gathered
    }
    if (s.zero >= 3) {
        seconds += 2 * x.micro_batches * collective_seconds(working, ring, busbw);  // forward and backward
        seconds += collective_seconds(working, ring, busbw);                        // once for the rollout
    }
    e.comm_s = seconds;
    e.exposed_comm_s = std::max(0.0, seconds - e.update_s);
}

}  // namespace

double StepTimeEstimate::mfu() const {
    return total_s > 0 ? (update_flops + rollout_flops) / (total_s * peak_tflops * 1e12) : 0;
}

StepTimeEstimate estimate_rpt_step(const ModelConfig& config, const PlanSettings& settings, int mean_response_tokens,
                                   const ClusterThroughputs& cluster) {
    const Shapes x = step_shapes(config, settings, mean_response_tokens);
    StepTimeEstimate e;
    e.peak_tflops = cluster.peak_tflops;
    estimate_rollout(config, settings, x, cluster, e);
    if (e.concurrent_sequences < 1) return e;
    estimate_update(config, settings, x, cluster, e);
    estimate_comm(settings, x, cluster, e);
    const double shard = settings.zero >= 1 ? std::ceil(x.P / x.N) : x.P;
    e.optimizer_s = shard * kAdamWBytesPerParameter / (cluster.hbm_gbps * 1e9);
    e.total_s = e.rollout_s + e.update_s + e.exposed_comm_s + e.optimizer_s;
    e.generated_tokens = double(settings.contexts) * settings.rollouts * mean_response_tokens;
    return e;
}

std::vector<std::string> step_time_lines(const PlanSettings& s, int mean_response_tokens,
                                         const ClusterThroughputs& k, const StepTimeEstimate& e) {
    std::vector<std::string> lines;
    lines.push_back(fmt::format(
        "step time (a model, not a measurement): {} GPUs ({} per node), {} contexts x {} rollouts, prompt {}, "
        "responses {} mean / {} max tokens",
        s.ranks, k.gpus_per_node, s.contexts, s.rollouts, s.prompt_tokens, mean_response_tokens, s.max_new_tokens));
    if (s.zero >= 2)
        lines.push_back(fmt::format("  ZeRO-{} as designed: {} sharded over the GPUs (rpt {}, as the plan above counts)",
                                    s.zero, s.zero >= 3 ? "parameters and gradients" : "gradients",
                                    s.zero >= 3 ? "keeps the parameters whole today and adds the backward's gradient slots"
                                                : "adds the backward's gradient slots"));
    lines.push_back(fmt::format(
        "  assumed per GPU: training {:.0f} TFLOP/s (peak {:.0f}), HBM {:.0f} GB/s x {:.2f} in decode, "
        "{:.0f} GiB; bus bandwidth {:.0f} GB/s in a node, {:.0f} GB/s across nodes",
        k.train_tflops, k.peak_tflops, k.hbm_gbps, k.decode_efficiency, k.device_memory_gib,
        k.intra_node_busbw_gbps, k.inter_node_busbw_gbps));
    if (e.concurrent_sequences < 1) {
        lines.push_back(fmt::format("  rollout: no room for even one sequence's keys and values ({:.1f} GiB left "
                                    "after the training state and the update's activations): more GPUs, a higher --zero or a "
                                    "smaller --micro-batch",
                                    e.kv_room_bytes / kGiB));
        return lines;
    }
    lines.push_back(fmt::format(
        "  rollout   {:8.1f} s  {} sequences per GPU, {} at once ({:.1f} GiB for keys and values) in {} wave(s); "
        "decode step {:.2f} ms, {}-bound",
        e.rollout_s, e.sequences_per_gpu, e.concurrent_sequences, e.kv_room_bytes / kGiB, e.waves,
        e.decode_step_s * 1e3, e.decode_memory_bound ? "memory" : "compute"));
    lines.push_back(fmt::format("  update    {:8.1f} s  {:.2f} PFLOP per GPU{}", e.update_s, e.update_flops * 1e-15,
                                s.recompute == Recompute::layer ? " (with the recomputation)" : ""));
    lines.push_back(fmt::format("  comm      {:8.1f} s  exposed of {:.1f} s (ZeRO-{}), overlapped with the update",
                                e.exposed_comm_s, e.comm_s, s.zero));
    lines.push_back(fmt::format("  optimizer {:8.2f} s", e.optimizer_s));
    lines.push_back(fmt::format("  step      {:8.1f} s  {:.0f} generated tokens/s over the cluster, MFU {:.1f}%",
                                e.total_s, e.generated_tokens / e.total_s, 100 * e.mfu()));
    return lines;
}

}  // namespace rpt
