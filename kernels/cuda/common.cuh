// Building blocks shared by the kernels of this folder: launch checks, ceil_div, warp and
// block reductions, 128-bit packed loads/stores, and the elementwise "map" launcher.
// Included only by .cu files.
#pragma once

#include <cfloat>
#include <cstdint>
#include <stdexcept>
#include <string>

#include <cuda_runtime.h>

#include "kernels/cuda/device.h"

// After every kernel launch: launch-configuration errors surface here, at the call site,
// instead of at some later unrelated synchronisation.
#define RPT_CUDA_LAUNCH_CHECK() RPT_CUDA_CHECK(cudaGetLastError())

namespace rpt::cuda {

constexpr int kWarpSize = 32;
constexpr unsigned kFullMask = 0xffffffffu;
// Grid-stride kernels never need more blocks than this to fill any current GPU many times
// over; capping keeps the block count within every launch limit.
constexpr int64_t kMaxGridBlocks = 1 << 16;
// The hardware limit of gridDim.y and gridDim.z.
constexpr int64_t kMaxGridY = 65535;

inline cudaStream_t as_stream(void* stream) { return static_cast<cudaStream_t>(stream); }

template <typename T>
__host__ __device__ constexpr T ceil_div(T a, T b) {
    return (a + b - 1) / b;
}

// Blocks for a grid-stride loop over `work` items with `threads` per block.
inline unsigned grid_for(int64_t work, int threads) {
    const int64_t blocks = ceil_div<int64_t>(work, threads);
    return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > kMaxGridBlocks ? kMaxGridBlocks : blocks));
}

// ---- warp and block reductions -------------------------------------------------------
// Butterfly (xor) reductions: every lane ends with the result, and the order of additions
// is fixed by the lane pattern, so results are bitwise reproducible run to run.

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullMask, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
    return v;
}

// Sum over the whole block; every thread gets the result. `scratch` holds one T per warp
// (kWarpSize entries covers any block). Ends with a __syncthreads, so it can be called
// repeatedly with the same scratch.
template <typename T>
__device__ T block_sum(T v, T* scratch) {
    const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
    const int warps = ceil_div<int>(blockDim.x, kWarpSize);
    v = warp_sum(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    T total = lane < warps ? scratch[lane] : T(0);
    total = warp_sum(total);
    __syncthreads();
    return total;
}

__device__ inline float block_max(float v, float* scratch) {
    const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
    const int warps = ceil_div<int>(blockDim.x, kWarpSize);
    v = warp_max(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float total = lane < warps ? scratch[lane] : -FLT_MAX;
    total = warp_max(total);
    __syncthreads();
    return total;
}

// ---- 128-bit packed access -----------------------------------------------------------
// One 16-byte load moves four floats per instruction: fewer instructions in flight for
// the same bandwidth, which is what memory-bound kernels are limited by.

template <int W>
struct alignas(sizeof(float) * W) Pack {
    float v[W];
};

template <int W>
__device__ __forceinline__ Pack<W> load_pack(const float* p, int64_t pack_index) {
    return reinterpret_cast<const Pack<W>*>(p)[pack_index];
}

template <int W>
__device__ __forceinline__ void store_pack(float* p, int64_t pack_index, const Pack<W>& value) {
    reinterpret_cast<Pack<W>*>(p)[pack_index] = value;
}

inline bool is_aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// ---- elementwise map launcher ----------------------------------------------------------
// out[i] = f(a[i], b[i]) (map2), x[i] = f(x[i]) (map1), out[i] = f() (map0).
// When every pointer is 16-byte aligned the bulk runs on 4-wide packs and a second tiny
// launch covers the n % 4 tail; otherwise everything runs scalar. Grid-stride loops.

constexpr int kMapThreads = 256;
constexpr int kPackWidth = 4;

template <int W, typename F>
__global__ void map0_kernel(float* out, int64_t packs, F f) {
    for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < packs; p += int64_t(gridDim.x) * blockDim.x) {
        Pack<W> r;
#pragma unroll
        for (int l = 0; l < W; ++l) r.v[l] = f();
        store_pack<W>(out, p, r);
    }
}

template <int W, typename F>
__global__ void map1_kernel(float* x, int64_t packs, F f) {
    for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < packs; p += int64_t(gridDim.x) * blockDim.x) {
        Pack<W> r = load_pack<W>(x, p);
#pragma unroll
        for (int l = 0; l < W; ++l) r.v[l] = f(r.v[l]);
        store_pack<W>(x, p, r);
    }
}

template <int W, typename F>
__global__ void map2_kernel(float* out, const float* a, const float* b, int64_t packs, F f) {
    for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < packs; p += int64_t(gridDim.x) * blockDim.x) {
        const Pack<W> x = load_pack<W>(a, p), y = load_pack<W>(b, p);
        Pack<W> r;
#pragma unroll
        for (int l = 0; l < W; ++l) r.v[l] = f(x.v[l], y.v[l]);
        store_pack<W>(out, p, r);
    }
}

template <typename F>
void launch_map0(cudaStream_t stream, float* out, int64_t n, F f) {
    if (n <= 0) return;
    const int64_t packs = is_aligned16(out) ? n / kPackWidth : 0, done = packs * kPackWidth;
    if (packs > 0) {
        map0_kernel<kPackWidth><<<grid_for(packs, kMapThreads), kMapThreads, 0, stream>>>(out, packs, f);
        RPT_CUDA_LAUNCH_CHECK();
    }
    if (done < n) {
        map0_kernel<1><<<grid_for(n - done, kMapThreads), kMapThreads, 0, stream>>>(out + done, n - done, f);
        RPT_CUDA_LAUNCH_CHECK();
    }
}

template <typename F>
void launch_map1(cudaStream_t stream, float* x, int64_t n, F f) {
    if (n <= 0) return;
    const int64_t packs = is_aligned16(x) ? n / kPackWidth : 0, done = packs * kPackWidth;
    if (packs > 0) {
        map1_kernel<kPackWidth><<<grid_for(packs, kMapThreads), kMapThreads, 0, stream>>>(x, packs, f);
        RPT_CUDA_LAUNCH_CHECK();
    }
    if (done < n) {
        map1_kernel<1><<<grid_for(n - done, kMapThreads), kMapThreads, 0, stream>>>(x + done, n - done, f);
        RPT_CUDA_LAUNCH_CHECK();
    }
}

template <typename F>
void launch_map2(cudaStream_t stream, float* out, const float* a, const float* b, int64_t n, F f) {
    if (n <= 0) return;
    const bool aligned = is_aligned16(out) && is_aligned16(a) && is_aligned16(b);
    const int64_t packs = aligned ? n / kPackWidth : 0, done = packs * kPackWidth;
    if (packs > 0) {
        map2_kernel<kPackWidth><<<grid_for(packs, kMapThreads), kMapThreads, 0, stream>>>(out, a, b, packs, f);
        RPT_CUDA_LAUNCH_CHECK();
    }
    if (done < n) {
        map2_kernel<1><<<grid_for(n - done, kMapThreads), kMapThreads, 0, stream>>>(out + done, a + done, b + done,
                                                                                    n - done, f);
        RPT_CUDA_LAUNCH_CHECK();
    }
}

// ---- deterministic column sums ---------------------------------------------------------
// dst[c] += sum_n term(n, c) over rows n < N, for (N, C) row-major operands, without
// atomics and in a fixed order: stage 1 gives each block a 32-column slice and a fixed
// chunk of kColumnChunkRows rows (row sub-lanes ty sum rows ty, ty + 8, ...; the 8 lanes
// are then added in order) and writes partials[chunk, c]; stage 2 sums the chunks of
// each column in chunk order. The chunking depends only on N, so the result is the same
// on every GPU and every run. Reads are coalesced along c.

constexpr int kColumnSliceWidth = kWarpSize;
constexpr int kColumnRowLanes = 8;
constexpr int64_t kColumnChunkRows = 256;

template <typename Term>
__global__ void column_partial_sums_kernel(float* partials, int64_t N, int64_t C, Term term) {
    __shared__ float lanes[kColumnRowLanes][kColumnSliceWidth];
    const int64_t c = blockIdx.x * int64_t(kColumnSliceWidth) + threadIdx.x;
    const int64_t chunk = blockIdx.y;
    const int64_t row_begin = chunk * kColumnChunkRows;
    const int64_t row_end = row_begin + kColumnChunkRows < N ? row_begin + kColumnChunkRows : N;
    float acc = 0.0f;
    if (c < C)
        for (int64_t n = row_begin + threadIdx.y; n < row_end; n += kColumnRowLanes) acc += term(n, c);
    lanes[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        float total = 0.0f;
#pragma unroll
        for (int l = 0; l < kColumnRowLanes; ++l) total += lanes[l][threadIdx.x];
        partials[chunk * C + c] = total;
    }
}

// (A template so that every .cu file including this header may instantiate it.)
template <typename T>
__global__ void column_finish_kernel(T* dst, const T* partials, int64_t chunks, int64_t C) {
    const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (c >= C) return;
    T total = 0;
    for (int64_t k = 0; k < chunks; ++k) total += partials[k * C + c];
    dst[c] += total;
}

template <typename Term>
void column_sums_accumulate(cudaStream_t stream, float* dst, int64_t N, int64_t C, Term term, const char* what) {
    if (N <= 0 || C <= 0) return;
    const int64_t chunks = ceil_div<int64_t>(N, kColumnChunkRows);
    if (chunks > kMaxGridY)
        throw std::invalid_argument(std::string(what) + ": too many rows for the column reduction grid");
    ScratchBuffer partials(static_cast<size_t>(chunks * C) * sizeof(float), stream, what);
    const dim3 grid(static_cast<unsigned>(ceil_div<int64_t>(C, kColumnSliceWidth)), static_cast<unsigned>(chunks));
    const dim3 block(kColumnSliceWidth, kColumnRowLanes);
    column_partial_sums_kernel<<<grid, block, 0, stream>>>(partials.as<float>(), N, C, term);
    RPT_CUDA_LAUNCH_CHECK();
    constexpr int kFinishThreads = 256;
    column_finish_kernel<<<static_cast<unsigned>(ceil_div<int64_t>(C, kFinishThreads)), kFinishThreads, 0, stream>>>(
        dst, partials.as<float>(), chunks, C);
    RPT_CUDA_LAUNCH_CHECK();
}

}  // namespace rpt::cuda
