// Elementwise ops on flat fp32 arrays: fill, add, accumulate, scale, copy (and copy's
// fp32 <-> bf16 conversions, bf16 as raw bits).
// Each is one streaming loop, split across threads in static chunks; the compiler turns
// the bodies into full-width SIMD loads/stores, so they run at memory bandwidth.
#include <algorithm>

#include "kernels/bf16.h"
#include "kernels/cpu/cpu_ops.h"

namespace rpt::cpu {

void fill(float* dst, int64_t n, float value) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) dst[i] = value;
}

void add(float* out, const float* a, const float* b, int64_t n) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void accumulate(float* dst, const float* src, int64_t n) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

void scale(float* x, int64_t n, float factor) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) x[i] *= factor;
}

void copy(float* dst, const float* src, int64_t n) {
    if (dst == src) return;
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
}

void copy(uint16_t* dst, const float* src, int64_t n) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}

void copy(float* dst, const uint16_t* src, int64_t n) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

void copy(uint16_t* dst, const uint16_t* src, int64_t n) {
    if (dst == src) return;
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
}

}  // namespace rpt::cpu
