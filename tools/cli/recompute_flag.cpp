#include "tools/cli/recompute_flag.h"

namespace rpt::cli {

void add_recompute_flag(CLI::App& command, std::string& value) {
    command
        .add_option("--recompute", value,
                    "activations kept for backward: none (all), layer (each layer's input; the backward "
                    "recomputes the rest, same gradients, less memory)")
        ->check(CLI::IsMember({"none", "layer"}));
}

}  // namespace rpt::cli
