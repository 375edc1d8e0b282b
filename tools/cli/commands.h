// The `rpt` command line: each file registers one subcommand (or a group) on the app.
#pragma once

#include <CLI/CLI.hpp>

#include "comm/comm.h"

namespace rpt::cli {

void add_data_command(CLI::App& app);       // rpt data synth
void add_tokenizer_command(CLI::App& app);  // rpt tokenizer train
// `runtime` (MPI, when launched by mpirun/srun) outlives the parse that runs the command.
void add_pretrain_command(CLI::App& app, const MpiRuntime& runtime);  // rpt pretrain
void add_rpt_commands(CLI::App& app, const MpiRuntime& runtime);  // rpt filter, train, eval
void add_demo_command(CLI::App& app);       // rpt demo
void add_plot_command(CLI::App& app);       // rpt plot
void add_generate_command(CLI::App& app);   // rpt generate
void add_convert_command(CLI::App& app);    // rpt convert
void add_plan_command(CLI::App& app);       // rpt plan

}  // namespace rpt::cli
