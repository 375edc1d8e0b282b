// SwiGLU: out = silu(gate) * up, silu(g) = g * sigmoid(g), and its backward, in fp32 and
// in bf16 (every tensor bf16, computed in fp32, each output rounded once).
//
// Memory-bound elementwise kernels: forward reads 2 values and writes 1 per element,
// backward reads 3 and writes 2. Both move 16 bytes per access (4 floats or 8 bf16) when
// every pointer is 16-byte aligned (the common case: rows of an activation buffer), with
// a scalar tail; one kernel body, templated on the storage type (storage.cuh), serves
// both precisions. expf (not __expf) keeps fp32 agreement with the CPU twin at ~1e-7.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_mixed_ops.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/mixed_checks.cuh"
#include "kernels/cuda/storage.cuh"

namespace rpt::cuda {

namespace {

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

struct SwigluOp {
    __device__ float operator()(float gate, float up) const { return gate * sigmoid(gate) * up; }
};

// dgate = dout * up * s * (1 + g (1 - s)),  dup = dout * g * s,  s = sigmoid(g).
template <int W, typename T>
__global__ void swiglu_backward_kernel(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t chunks) {
    for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < chunks; p += int64_t(gridDim.x) * blockDim.x) {
        float d[W], g[W], u[W], dg[W], du[W];
        load_chunk<W>(dout, p, d);
        load_chunk<W>(gate, p, g);
        load_chunk<W>(up, p, u);
#pragma unroll
        for (int l = 0; l < W; ++l) {
            const float s = sigmoid(g[l]);
            dg[l] = d[l] * u[l] * s * (1.0f + g[l] * (1.0f - s));
            du[l] = d[l] * g[l] * s;
        }
        store_chunk<W>(dgate, p, dg);
        store_chunk<W>(dup, p, du);
    }
}

template <typename T>
void launch_swiglu_backward(cudaStream_t s, T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n) {
    constexpr int W = kVecWidth<T>;
    if (n <= 0) return;
    const bool aligned = chunk_aligned<W>(dgate) && chunk_aligned<W>(dup) && chunk_aligned<W>(dout) &&
                         chunk_aligned<W>(gate) && chunk_aligned<W>(up);
    const int64_t chunks = aligned ? n / W : 0, done = chunks * W;
    if (chunks > 0) {
        swiglu_backward_kernel<W><<<grid_for(chunks, kMapThreads), kMapThreads, 0, s>>>(dgate, dup, dout, gate, up,
                                                                                        chunks);
        RPT_CUDA_LAUNCH_CHECK();
    }
    if (done < n) {
        swiglu_backward_kernel<1><<<grid_for(n - done, kMapThreads), kMapThreads, 0, s>>>(
            dgate + done, dup + done, dout + done, gate + done, up + done, n - done);
        RPT_CUDA_LAUNCH_CHECK();
    }
}

}  // namespace

void swiglu_forward(void* stream, float* out, const float* gate, const float* up, int64_t n) {
    launch_map2(as_stream(stream), out, gate, up, n, SwigluOp{});
}

void swiglu_backward(void* stream, float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                     int64_t n) {
    launch_swiglu_backward(as_stream(stream), dgate, dup, dout, gate, up, n);
}

namespace mixed {

void swiglu_forward(void* stream, Tensor out, Tensor gate, Tensor up) {
    require_dtype("swiglu_forward", out, DType::bf16, "out");
    require_dtype("swiglu_forward", gate, DType::bf16, "gate");
    require_dtype("swiglu_forward", up, DType::bf16, "up");
    launch_map2_typed(as_stream(stream), as_bf16(out), as_bf16(gate), as_bf16(up), out.numel(), SwigluOp{});
}

void swiglu_backward(void* stream, Tensor dgate, Tensor dup, Tensor dout, Tensor gate, Tensor up) {
    const char* op = "swiglu_backward";
    require_dtype(op, dgate, DType::bf16, "dgate");
    require_dtype(op, dup, DType::bf16, "dup");
    require_dtype(op, dout, DType::bf16, "dout");
    require_dtype(op, gate, DType::bf16, "gate");
    require_dtype(op, up, DType::bf16, "up");
    launch_swiglu_backward(as_stream(stream), as_bf16(dgate), as_bf16(dup), as_bf16(dout), as_bf16(gate), as_bf16(up),
                           dout.numel());
}

}  // namespace mixed

}  // namespace rpt::cuda
