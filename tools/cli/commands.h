// The `rpt` command line: each file registers one subcommand (or a group) on the app.
#pragma once

#include <CLI/CLI.hpp>

namespace rpt::cli {

void add_data_command(CLI::App& app);       // rpt data synth
void add_tokenizer_command(CLI::App& app);  // rpt tokenizer train
void add_pretrain_command(CLI::App& app);   // rpt pretrain

}  // namespace rpt::cli
