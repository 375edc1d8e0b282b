// The `rpt` command line: each file registers one subcommand (or a group) on the app.
#pragma once

#include <CLI/CLI.hpp>

namespace rpt::cli {

void add_data_command(CLI::App& app);       // rpt data synth
void add_tokenizer_command(CLI::App& app);  // rpt tokenizer train
void add_pretrain_command(CLI::App& app);   // rpt pretrain
void add_rpt_commands(CLI::App& app);       // rpt filter, rpt train, rpt eval
void add_demo_command(CLI::App& app);       // rpt demo
void add_plot_command(CLI::App& app);       // rpt plot

}  // namespace rpt::cli
