// bf16 <-> fp32 scalar conversions on the host: bfloat16 is the top half of an fp32
// (8-bit exponent, 7-bit mantissa), so widening is a shift and narrowing rounds the 16
// dropped bits.
//
// Here in kernels/ because the CPU twins store bf16 (the KV cache) and must round exactly
// as the CUDA kernels do (`__float2bfloat16_rn`); model/half.h re-exports these for the
// checkpoint loaders. Header-only and branch-light, so loops over millions of values
// vectorise.
#pragma once

#include <cstdint>
#include <cstring>

namespace rpt {

inline uint32_t f32_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

inline float f32_from_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

// bf16 is the top half of an fp32, so widening is a shift.
inline float bf16_to_f32(uint16_t h) { return f32_from_bits(static_cast<uint32_t>(h) << 16); }

// Round to nearest, ties to even, on the 16 dropped bits (what PyTorch and the CUDA
// intrinsics do). NaN stays NaN (quiet bit forced, since rounding could otherwise carry
// a NaN mantissa into infinity); overflow rounds to infinity.
inline uint16_t f32_to_bf16(float f) {
    const uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
    const uint32_t rounding_bias = 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>((u + rounding_bias) >> 16);
}

}  // namespace rpt
