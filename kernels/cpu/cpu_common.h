// Small helpers shared by the CPU twins (kernels/cpu/*.cpp); internal to kernels/cpu.
//
// The one idea here is the fixed-lane reduction: a float reduction written as a plain
// `acc += x[i] * y[i]` loop is not vectorised without -ffast-math (reassociation), and
// `omp simd reduction` leaves the order to the compiler. Summing into kLanes independent
// accumulators, then folding them in a fixed tree, vectorises to one SIMD register and
// gives the same bits on every call, whatever the thread count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "kernels/bf16.h"

namespace rpt::cpu::detail {

// One AVX-512 register of floats; also fine (two registers) on AVX2.
constexpr int kLanes = 16;
// Alignment of scratch buffers: a cache line, and a full AVX-512 vector.
constexpr size_t kAlignBytes = 64;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Owning, 64-byte-aligned float scratch (uninitialised).
class AlignedBuffer {
public:
    explicit AlignedBuffer(int64_t count) {
        const size_t bytes = static_cast<size_t>(round_up(count > 0 ? count : 1, kAlignBytes / sizeof(float))) *
                             sizeof(float);
        data_ = static_cast<float*>(std::aligned_alloc(kAlignBytes, bytes));
        if (!data_) throw std::bad_alloc();
    }
    ~AlignedBuffer() { std::free(data_); }
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    float* get() const { return data_; }

private:
    float* data_ = nullptr;
};

// Per-thread scratch that survives between calls and only grows. Why not allocate per
// call: large blocks come from mmap, and every call would then page-fault its scratch
// in again; on virtual machines each such fault can cost milliseconds. A thread's
// buffers are reused by the next op that thread runs (OpenMP keeps its threads), so the
// contents never carry meaning across calls. Each caller uses its own slot so that
// buffers in use at the same time never alias.
enum class ScratchSlot : int { gemm_a, gemm_b, row, count };

inline float* thread_scratch(ScratchSlot slot, int64_t count) {
    struct Arena {
        float* data = nullptr;
        int64_t capacity = 0;
        ~Arena() { std::free(data); }
    };
    thread_local Arena arenas[static_cast<int>(ScratchSlot::count)];
    Arena& a = arenas[static_cast<int>(slot)];
    if (count > a.capacity) {
        std::free(a.data);
        a.capacity = round_up(count, kAlignBytes / sizeof(float));
        a.data = static_cast<float*>(std::aligned_alloc(kAlignBytes, static_cast<size_t>(a.capacity) * sizeof(float)));
        if (!a.data) {
            a.capacity = 0;
            throw std::bad_alloc();
        }
    }
    return a.data;
}

// Folds kLanes partial sums pairwise in a fixed order.
inline float fold_lanes(float* acc) {
    for (int width = kLanes / 2; width > 0; width /= 2)
        for (int l = 0; l < width; ++l) acc[l] += acc[l + width];
    return acc[0];
}

// One stored element as fp32: the identity for fp32, a 16-bit shift for bf16 bits
// (uint16_t), which vectorises to a zero-extend and a shift per SIMD register.
inline float widen(float x) { return x; }
inline float widen(uint16_t h) { return bf16_to_f32(h); }

// sum_i x[i] * y[i] in fp32 with fixed-lane accumulation (deterministic, vectorised).
// y is fp32 or bf16 (uint16_t), widened as it is read.
template <typename T>
inline float dot(const float* __restrict x, const T* __restrict y, int64_t n) {
    float acc[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int l = 0; l < kLanes; ++l) acc[l] += x[i + l] * widen(y[i + l]);
    for (int l = 0; i + l < n; ++l) acc[l] += x[i + l] * widen(y[i + l]);
    return fold_lanes(acc);
}

// exp(x) in fp32, within ~2 ulp, branch-free so that loops calling it vectorise (std::exp
// is a libm call per element). Cephes-style: x = n ln2 + r, |r| <= ln2 / 2, a degree-6
// polynomial for e^r, times 2^(n-1) built in the exponent bits, times 2. Returns 0 below
// -86.9 (true value < 2e-38: denormal range; x = -inf gives 0), +inf above 88.72 (the
// float overflow point is 88.7228), NaN for NaN.
inline float exp_poly(float x) {
    const float xc = x < -86.9f ? -86.9f : (x > 88.72f ? 88.72f : x);
    const float fn = __builtin_nearbyintf(xc * 1.44269504088896341f);  // -125 .. 128
    float r = xc - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    const int32_t bits = (static_cast<int32_t>(fn) + 126) << 23;
    float half_two_n;
    std::memcpy(&half_two_n, &bits, sizeof(float));
    const float e = p * half_two_n * 2.0f;
    const float big = x > 88.72f ? __builtin_inff() : e;
    return x < -86.9f ? 0.0f : (x != x ? x : big);
}

// y[i] += a * x[i]; x is fp32 or bf16 (uint16_t), widened as it is read.
template <typename T>
inline void axpy(float* __restrict y, float a, const T* __restrict x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] += a * widen(x[i]);
}

}  // namespace rpt::cpu::detail
