// Storage types of the kernels: fp32 (`float`) or bf16 (`__nv_bfloat16`) in memory, fp32
// in registers. Kernels templated on the storage type widen every load with to_f32 and
// round every store once with from_f32<T> (round to nearest even, what the CPU twin's
// f32_to_bf16 does), so one kernel body serves the fp32 reference path and the bf16
// mixed-precision path. Included only by .cu files.
#pragma once

#include <cstdint>

#include <cuda_bf16.h>

#include "kernels/cuda/common.cuh"

namespace rpt::cuda {

using bf16 = __nv_bfloat16;

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(bf16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T from_f32(float x);
template <>
__device__ __forceinline__ float from_f32<float>(float x) {
    return x;
}
template <>
__device__ __forceinline__ bf16 from_f32<bf16>(float x) {
    return __float2bfloat16_rn(x);
}

// Elements of T in one 16-byte (128-bit) access: 4 floats or 8 bf16.
template <typename T>
constexpr int kVecWidth = static_cast<int>(16 / sizeof(T));

// W consecutive elements of T moved as one access: 16 bytes (one LDG.128/STG.128) when
// W * sizeof(T) == 16, two when it is 32 (8 floats beside 8 bf16 in a mixed kernel), one
// narrower access below that. The chunk must be aligned to min(16, W * sizeof(T)).
template <typename T, int W>
constexpr size_t kChunkAlign = W * sizeof(T) < 16 ? W * sizeof(T) : 16;

template <typename T, int W>
struct alignas(kChunkAlign<T, W>) Chunk {
    T v[W];
};

// out[0..W) = widened p[chunk * W .. chunk * W + W)
template <int W, typename T>
__device__ __forceinline__ void load_chunk(const T* p, int64_t chunk, float (&out)[W]) {
    const Chunk<T, W> c = reinterpret_cast<const Chunk<T, W>*>(p)[chunk];
#pragma unroll
    for (int l = 0; l < W; ++l) out[l] = to_f32(c.v[l]);
}

// p[chunk * W .. chunk * W + W) = in[0..W), each rounded once into T
template <int W, typename T>
__device__ __forceinline__ void store_chunk(T* p, int64_t chunk, const float (&in)[W]) {
    Chunk<T, W> c;
#pragma unroll
    for (int l = 0; l < W; ++l) c.v[l] = from_f32<T>(in[l]);
    reinterpret_cast<Chunk<T, W>*>(p)[chunk] = c;
}

// Whether p may be read in chunks of W elements of T.
template <int W, typename T>
inline bool chunk_aligned(const T* p) {
    return reinterpret_cast<uintptr_t>(p) % kChunkAlign<T, W> == 0;
}

// ---- typed elementwise map -------------------------------------------------------------
// out[i] = round(f(widen(a[i]), widen(b[i]))) for i < n, all three of storage type T:
// 16-byte chunks (8 bf16) when every pointer allows, and a scalar launch for the n % W
// tail (or for everything when a pointer is misaligned). Grid-stride, like launch_map2.
template <int W, typename T, typename F>
__global__ void map2_typed_kernel(T* out, const T* a, const T* b, int64_t chunks, F f) {
    for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < chunks; p += int64_t(gridDim.x) * blockDim.x) {
        float x[W], y[W], r[W];
        load_chunk<W>(a, p, x);
        load_chunk<W>(b, p, y);
#pragma unroll
        for (int l = 0; l < W; ++l) r[l] = f(x[l], y[l]);
        store_chunk<W>(out, p, r);
    }
}

template <typename T, typename F>
void launch_map2_typed(cudaStream_t stream, T* out, const T* a, const T* b, int64_t n, F f) {
    constexpr int W = kVecWidth<T>;
    if (n <= 0) return;
    const bool aligned = chunk_aligned<W>(out) && chunk_aligned<W>(a) && chunk_aligned<W>(b);
    const int64_t chunks = aligned ? n / W : 0, done = chunks * W;
    if (chunks > 0) {
        map2_typed_kernel<W><<<grid_for(chunks, kMapThreads), kMapThreads, 0, stream>>>(out, a, b, chunks, f);
        RPT_CUDA_LAUNCH_CHECK();
    }
    if (done < n) {
        map2_typed_kernel<1><<<grid_for(n - done, kMapThreads), kMapThreads, 0, stream>>>(out + done, a + done,
                                                                                         b + done, n - done, f);
        RPT_CUDA_LAUNCH_CHECK();
    }
}

}  // namespace rpt::cuda
