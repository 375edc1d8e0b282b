// Elementwise ops: fill, add, accumulate, scale, copy (and copy's fp32 <-> bf16
// conversions); add and accumulate also on bf16 tensors (the mixed-precision path).
//
// Each is one pass over memory with no reuse, so the only thing that matters is moving
// bytes at full bandwidth: 4-wide (128-bit) packed loads/stores when the pointers allow,
// a grid-stride loop over a capped grid of 256-thread blocks (see launch_map* in
// common.cuh). copy is cudaMemcpyAsync, which the copy engines/driver already run at
// bandwidth. The conversions move two elements per thread step (float2 <->
// __nv_bfloat162, 8 + 4 bytes) when both pointers are aligned for that, one otherwise.
// The bf16 add/accumulate widen, add in fp32 and round once, 8 bf16 per 16-byte access
// (launch_map2_typed in storage.cuh).
#include <cuda_bf16.h>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_mixed_ops.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/mixed_checks.cuh"

namespace rpt::cuda {

namespace {

struct FillOp {
    float value;
    __device__ float operator()() const { return value; }
};

struct AddOp {
    __device__ float operator()(float a, float b) const { return a + b; }
};

struct ScaleOp {
    float factor;
    __device__ float operator()(float x) const { return x * factor; }
};

// Element conversions, and the same on pairs (round to nearest even into bf16).
__device__ __forceinline__ __nv_bfloat16 convert(float x, __nv_bfloat16*) { return __float2bfloat16_rn(x); }
__device__ __forceinline__ float convert(__nv_bfloat16 x, float*) { return __bfloat162float(x); }
__device__ __forceinline__ __nv_bfloat162 convert(float2 x, __nv_bfloat162*) { return __float22bfloat162_rn(x); }
__device__ __forceinline__ float2 convert(__nv_bfloat162 x, float2*) { return __bfloat1622float2(x); }

// dst[i] = Dst(src[i]) for i < n. kPairs: pair p = elements 2p, 2p + 1 moved as one
// DstPair / SrcPair, and the last element of an odd n by one thread.
template <typename Dst, typename Src, typename DstPair, typename SrcPair, bool kPairs>
__global__ void convert_kernel(Dst* dst, const Src* src, int64_t n) {
    const int64_t first = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
    if constexpr (kPairs) {
        DstPair* dst2 = reinterpret_cast<DstPair*>(dst);
        const SrcPair* src2 = reinterpret_cast<const SrcPair*>(src);
        for (int64_t p = first; p < n / 2; p += stride) dst2[p] = convert(src2[p], static_cast<DstPair*>(nullptr));
        if (n % 2 == 1 && first == 0) dst[n - 1] = convert(src[n - 1], static_cast<Dst*>(nullptr));
    } else {
        for (int64_t i = first; i < n; i += stride) dst[i] = convert(src[i], static_cast<Dst*>(nullptr));
    }
}

bool is_aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

template <typename Dst, typename Src, typename DstPair, typename SrcPair>
void launch_convert(cudaStream_t stream, Dst* dst, const Src* src, int64_t n) {
    if (n <= 0) return;
    if (is_aligned(dst, sizeof(DstPair)) && is_aligned(src, sizeof(SrcPair))) {
        convert_kernel<Dst, Src, DstPair, SrcPair, true>
            <<<grid_for(ceil_div<int64_t>(n, 2), kMapThreads), kMapThreads, 0, stream>>>(dst, src, n);
    } else {
        convert_kernel<Dst, Src, DstPair, SrcPair, false>
            <<<grid_for(n, kMapThreads), kMapThreads, 0, stream>>>(dst, src, n);
    }
    RPT_CUDA_LAUNCH_CHECK();
}

}  // namespace

void fill(void* stream, float* dst, int64_t n, float value) { launch_map0(as_stream(stream), dst, n, FillOp{value}); }

void add(void* stream, float* out, const float* a, const float* b, int64_t n) {
    launch_map2(as_stream(stream), out, a, b, n, AddOp{});
}

void accumulate(void* stream, float* dst, const float* src, int64_t n) {
    launch_map2(as_stream(stream), dst, dst, src, n, AddOp{});
}

void scale(void* stream, float* x, int64_t n, float factor) { launch_map1(as_stream(stream), x, n, ScaleOp{factor}); }

void copy(void* stream, float* dst, const float* src, int64_t n) {
    if (n <= 0 || dst == src) return;
    RPT_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * sizeof(float), cudaMemcpyDeviceToDevice,
                                   as_stream(stream)));
}

void copy(void* stream, uint16_t* dst, const float* src, int64_t n) {
    launch_convert<__nv_bfloat16, float, __nv_bfloat162, float2>(as_stream(stream),
                                                                 reinterpret_cast<__nv_bfloat16*>(dst), src, n);
}

void copy(void* stream, float* dst, const uint16_t* src, int64_t n) {
    launch_convert<float, __nv_bfloat16, float2, __nv_bfloat162>(
        as_stream(stream), dst, reinterpret_cast<const __nv_bfloat16*>(src), n);
}

void copy(void* stream, uint16_t* dst, const uint16_t* src, int64_t n) {
    if (n <= 0 || dst == src) return;
    RPT_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * sizeof(uint16_t), cudaMemcpyDeviceToDevice,
                                   as_stream(stream)));
}

// ---- bf16 ------------------------------------------------------------------------------

namespace mixed {

void add(void* stream, Tensor out, Tensor a, Tensor b) {
    require_dtype("add", out, DType::bf16, "out");
    require_dtype("add", a, DType::bf16, "a");
    require_dtype("add", b, DType::bf16, "b");
    launch_map2_typed(as_stream(stream), as_bf16(out), as_bf16(a), as_bf16(b), out.numel(), AddOp{});
}

void accumulate(void* stream, Tensor dst, Tensor src) {
    require_dtype("accumulate", dst, DType::bf16, "dst");
    require_dtype("accumulate", src, DType::bf16, "src");
    launch_map2_typed(as_stream(stream), as_bf16(dst), as_bf16(dst), as_bf16(src), dst.numel(), AddOp{});
}

}  // namespace mixed

}  // namespace rpt::cuda
