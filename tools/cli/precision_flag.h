// --precision, on every command that runs the model: bf16 or f32 (model/precision.h),
// and "auto" (the default): bf16 on the GPU, f32 on the CPU. Commands keep the flag's
// text (what a run records, so a resume on another device picks its own default) and
// resolve it once the device is known.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "kernels/tensor.h"
#include "model/precision.h"

namespace rpt::cli {

inline constexpr const char* kAutoPrecision = "auto";

// Adds --precision to `command`, stored as text in `value` (which should start as
// kAutoPrecision). A value other than auto, bf16 or f32 is one error line naming the flag.
void add_precision_flag(CLI::App& command, std::string& value);
// The precision `value` means on `device`.
Precision resolve_precision(const std::string& value, DeviceKind device);

}  // namespace rpt::cli
