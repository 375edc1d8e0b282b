#include "tools/cli/precision_flag.h"

namespace rpt::cli {

void add_precision_flag(CLI::App& command, std::string& value) {
    command
        .add_option("--precision", value,
                    "bf16 (fp32 master weights, bf16 weights and activations, fp32 LM head and log-probs) or f32; "
                    "default auto: bf16 on a GPU, f32 on the CPU")
        ->check(CLI::IsMember({kAutoPrecision, precision_name(Precision::bf16), precision_name(Precision::f32)}));
}

Precision resolve_precision(const std::string& value, DeviceKind device) {
    return value == kAutoPrecision ? default_precision(device) : parse_precision(value);
}

}  // namespace rpt::cli
