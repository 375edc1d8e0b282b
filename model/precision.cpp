#include "model/precision.h"

#include <stdexcept>

#include <fmt/format.h>

namespace rpt {

const char* precision_name(Precision precision) { return precision == Precision::bf16 ? "bf16" : "f32"; }

Precision parse_precision(const std::string& name) {
    for (Precision p : {Precision::f32, Precision::bf16})
        if (name == precision_name(p)) return p;
    throw std::invalid_argument(fmt::format("--precision: unknown value '{}' (bf16 or f32)", name));
}

Precision default_precision(DeviceKind device) {
    return device == DeviceKind::cuda ? Precision::bf16 : Precision::f32;
}

DType activation_dtype(Precision precision) { return precision == Precision::bf16 ? DType::bf16 : DType::f32; }

}  // namespace rpt
