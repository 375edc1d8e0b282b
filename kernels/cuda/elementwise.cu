// Elementwise ops: fill, add, accumulate, scale, copy.
//
// Each is one pass over memory with no reuse, so the only thing that matters is moving
// bytes at full bandwidth: 4-wide (128-bit) packed loads/stores when the pointers allow,
// a grid-stride loop over a capped grid of 256-thread blocks (see launch_map* in
// common.cuh). copy is cudaMemcpyAsync, which the copy engines/driver already run at
// bandwidth.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_ops.h"

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

}  // namespace rpt::cuda
