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
#include <new>

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

// sum_i x[i] * y[i] in fp32 with fixed-lane accumulation (deterministic, vectorised).
inline float dot(const float* __restrict x, const float* __restrict y, int64_t n) {
    float acc[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int l = 0; l < kLanes; ++l) acc[l] += x[i + l] * y[i + l];
    for (int l = 0; i + l < n; ++l) acc[l] += x[i + l] * y[i + l];
    return fold_lanes(acc);
}

// y[i] += a * x[i]
inline void axpy(float* __restrict y, float a, const float* __restrict x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace rpt::cpu::detail
