// The model's numeric precision (the recipe: kernels/README.md, "Precision").
//   f32   every tensor fp32: the exact reference, the CPU default.
//   bf16  fp32 master weights and AdamW moments, a bf16 working copy of every weight
//         that the forward and backward read; bf16 activations and activation
//         gradients; fp32 statistics, parameter gradients, LM head and logits (the RL
//         log-probs stay fp32 end to end). The GPU default (tensor cores); on the CPU the
//         ops emulate it exactly at the bf16 stores (kernels/ops.h).
// Checkpoints hold the fp32 masters and moments either way, so a run may change
// precision on resume.
#pragma once

#include <cstdint>
#include <string>

#include "kernels/tensor.h"

namespace rpt {

enum class Precision : uint8_t { f32, bf16 };

const char* precision_name(Precision precision);  // "f32", "bf16"
// Parses "f32" or "bf16"; throws std::invalid_argument naming --precision.
Precision parse_precision(const std::string& name);
// bf16 on the GPU, f32 on the CPU.
Precision default_precision(DeviceKind device);
// The dtype of activations and working weights under `precision`.
DType activation_dtype(Precision precision);

}  // namespace rpt
