// --overwrite and the output checks of each writing command (the rules are in
// model/output_guard.h). Every check runs before the command loads or computes
// anything, so a refusal is immediate and leaves everything as it was.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace rpt::cli {

// What a command's --out is, for the --overwrite help.
enum class OutputRule {
    checkpoint,  // convert: a checkpoint directory
    training,    // pretrain, train: a checkpoint directory and --metrics
    demo,        // demo: a directory the demo writes into
    file,        // data synth, tokenizer train, filter, plot: one file
};

void add_overwrite_flag(CLI::App& command, bool& overwrite, OutputRule rule);

// pretrain and train: --out, a checkpoint (writing back into the --resume checkpoint
// is always allowed), and --metrics, which a resumed run appends to. Under MPI only
// the rank that writes calls this; its error ends every rank.
void claim_training_outputs(const std::string& out, const std::string& resume, const std::string& metrics,
                            bool overwrite);

}  // namespace rpt::cli
