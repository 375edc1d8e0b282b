// --recompute, on every command that trains (pretrain, train, demo): what the training
// forward keeps for the backward (model/recompute.h). The value stays text until the
// model exists, as --precision does, so every command parses it the same way.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace rpt::cli {

// Adds --recompute to `command`, stored as text in `value` ("none" or "layer"; another
// value is one error line naming the flag).
void add_recompute_flag(CLI::App& command, std::string& value);

}  // namespace rpt::cli
