// Flags of the RPT commands (filter, train, eval, demo): entropy splits, the template,
// sampling, GRPO and evaluation settings, bound to CLI11 options in one place.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "rl/evaluate.h"
#include "rl/positions.h"
#include "rl/rpt_trainer.h"

namespace rpt::cli {

void add_split_flags(CLI::App& command, EntropySplits& splits);
// --kv-dtype auto|f32|bf16: the element type of the rollouts' KV cache, into `dtype`.
void add_kv_dtype_flag(CLI::App& command, KvDType& dtype);
// --kv-block-tokens N (0 .. 2^20): tokens per block of the rollouts' paged KV cache (0: contiguous).
void add_kv_block_flag(CLI::App& command, int& block_tokens);
// Training-side flags whose text or unit differs from their RptOptions field.
struct RptFlagValues {
    std::string aggregation = "token-mean";
    std::string prompt_layout = "shared";
    std::string reward = "prefix";
    float kv_budget_mb = 4096;
};
// Training-side RPT flags (rollouts, sampling, GRPO, optimizer, schedule).
void add_rpt_flags(CLI::App& command, RptOptions& options, RptFlagValues& values);
// Resolves the named choices and the KV budget into `options`.
void finish_rpt_options(RptOptions& options, const RptFlagValues& values);
void add_eval_flags(CLI::App& command, EvalOptions& options, std::string& mode);

// "easy 123 | medium 45 | hard 6 | total 999" for a positions list.
std::string describe_splits(const std::vector<ScoredPosition>& positions, const EntropySplits& splits);
// Prints the accuracy table of one or more evaluated checkpoints.
void print_eval_table(const std::vector<std::pair<std::string, EvalReport>>& rows, bool reasoning);

}  // namespace rpt::cli
