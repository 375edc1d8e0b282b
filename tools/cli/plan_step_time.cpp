#include "tools/cli/plan_step_time.h"

#include <algorithm>

#include "tools/cli/flag_checks.h"

namespace rpt::cli {

void add_step_time_flags(CLI::App& command, StepTimeFlags& flags) {
    ClusterThroughputs& k = flags.cluster;
    command.add_flag("--step-time", flags.enabled,
                     "train: the expected seconds of one RPT step on GPUs (a model from the throughputs below)");
    command.add_option("--mean-response-tokens", flags.mean_response_tokens,
                       "step time: mean response length (default half of --max-new-tokens)")
        ->check(positive());
    command.add_option("--gpus-per-node", k.gpus_per_node, "step time: GPUs per node (default 8)")->check(positive());
    command.add_option("--train-tflops", k.train_tflops, "step time: achieved training TFLOP/s per GPU (default 400)")
        ->check(positive());
    command.add_option("--peak-tflops", k.peak_tflops, "step time: bf16 peak TFLOP/s per GPU, for MFU (default 989)")
        ->check(positive());
    command.add_option("--hbm-gbps", k.hbm_gbps, "step time: HBM GB/s per GPU (default 3350)")->check(positive());
    command.add_option("--decode-efficiency", k.decode_efficiency,
                       "step time: share of HBM bandwidth a decode step reaches (default 0.7)")
        ->check(CLI::Range(0.01, 1.0));
    command.add_option("--intra-node-gbps", k.intra_node_busbw_gbps,
                       "step time: collective bus bandwidth within a node, GB/s (default 360)")
        ->check(positive());
    command.add_option("--inter-node-gbps", k.inter_node_busbw_gbps,
                       "step time: collective bus bandwidth across nodes, GB/s (default 45)")
        ->check(positive());
}

std::vector<std::string> step_time_report(const ModelConfig& config, const PlanSettings& settings,
                                          const StepTimeFlags& flags, double device_memory_gib) {
    ClusterThroughputs cluster = flags.cluster;
    if (device_memory_gib > 0) cluster.device_memory_gib = device_memory_gib;
    const int mean = flags.mean_response_tokens > 0 ? flags.mean_response_tokens
                                                    : std::max(1, settings.max_new_tokens / 2);
    const StepTimeEstimate e = estimate_rpt_step(config, settings, mean, cluster);
    return step_time_lines(settings, mean, cluster, e);
}

}  // namespace rpt::cli
