// `rpt plan --run train --step-time`: the RPT step-time model (model/step_time.h) with
// its throughputs as flags, so a user puts in what gpu-check measured on their GPUs.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "model/config.h"
#include "model/memory_plan.h"
#include "model/step_time.h"

namespace rpt::cli {

struct StepTimeFlags {
    bool enabled = false;
    int mean_response_tokens = 0;  // 0: half of --max-new-tokens
    ClusterThroughputs cluster;
};

void add_step_time_flags(CLI::App& command, StepTimeFlags& flags);
// The estimate's report lines (std::invalid_argument naming the flag for settings it
// cannot model); `device_memory_gib` > 0 (plan's --device-memory) replaces the
// cluster's default device memory.
std::vector<std::string> step_time_report(const ModelConfig& config, const PlanSettings& settings,
                                          const StepTimeFlags& flags, double device_memory_gib);

}  // namespace rpt::cli
