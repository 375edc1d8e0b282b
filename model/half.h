// half: scalar conversions between fp32 and the 16-bit float formats used in
// checkpoints — bfloat16 (8-bit exponent, 7-bit mantissa) and IEEE fp16 (5/10).
//
// Header-only and branch-light, so the CPU loader can convert millions of weights in a
// loop. The bf16 pair (f32_to_bf16 rounds to nearest, ties to even, as PyTorch and the
// CUDA intrinsics do, so a checkpoint round-trips bit-identically with transformers)
// lives in kernels/bf16.h, shared with the CPU twins that store bf16.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/bf16.h"

namespace rpt {

// IEEE binary16 -> fp32, exact for every input (normals, subnormals, inf, NaN).
inline float f16_to_f32(uint16_t h) {
  constexpr uint32_t kF16ExpMask = 0x7c00u, kF16MantMask = 0x03ffu;
  constexpr int kExpBiasDelta = 127 - 15;
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h & kF16ExpMask) >> 10;
  uint32_t mant = h & kF16MantMask;
  if (exp == 0x1f) return f32_from_bits(sign | 0x7f800000u | (mant << 13));  // inf / NaN
  if (exp == 0) {
    if (mant == 0) return f32_from_bits(sign);  // signed zero
    // Subnormal: value = mant * 2^-24, exactly representable as a normal fp32.
    float v = static_cast<float>(mant) * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  return f32_from_bits(sign | ((exp + kExpBiasDelta) << 23) | (mant << 13));
}

// fp32 -> IEEE binary16, round to nearest even; overflow goes to inf, tiny values to
// (subnormal or) zero. Used by tests and by anyone who wants to write F16 weights.
inline uint16_t f32_to_f16(float f) {
  uint32_t u = f32_bits(f);
  uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65536: inf
  if (abs < 0x38800000u) {
    // Result is subnormal (or zero) in fp16: scale into units of 2^-24 and round.
    float a = f32_from_bits(abs);
    float scaled = a * 16777216.0f;  // value in units of 2^-24; < 1024
    // Adding and subtracting 2^23 rounds to an integer with the FPU's ties-to-even.
    float r = (scaled + 8388608.0f) - 8388608.0f;
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(r));
  }
  // Normal: rebias exponent, then round the 13 dropped mantissa bits to nearest even.
  uint32_t v = abs - (static_cast<uint32_t>(127 - 15) << 23);
  v += 0x0fffu + ((v >> 13) & 1u);
  return static_cast<uint16_t>(sign | (v >> 13));
}

}  // namespace rpt
