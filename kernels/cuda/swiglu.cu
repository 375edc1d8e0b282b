// SwiGLU: out = silu(gate) * up, silu(g) = g * sigmoid(g), and its backward.
//
// Memory-bound elementwise kernels: forward reads 2 floats and writes 1 per element,
// backward reads 3 and writes 2. Both use 128-bit packed access when every pointer is
// 16-byte aligned (the common case: rows of an activation buffer), with a scalar tail.
// expf (not __expf) keeps fp32 agreement with the CPU twin at ~1e-7.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_ops.h"

namespace rpt::cuda {

namespace {

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

struct SwigluOp {
    __device__ float operator()(float gate, float up) const { return gate * sigmoid(gate) * up; }
};

// dgate = dout * up * s * (1 + g (1 - s)),  dup = dout * g * s,  s = sigmoid(g).
template <int W>
__global__ void swiglu_backward_kernel(float* dgate, float* dup, const float* dout, const float* gate,
                                       const float* up, int64_t packs) {
    for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < packs; p += int64_t(gridDim.x) * blockDim.x) {
        const Pack<W> d = load_pack<W>(dout, p), g = load_pack<W>(gate, p), u = load_pack<W>(up, p);
        Pack<W> dg, du;
#pragma unroll
        for (int l = 0; l < W; ++l) {
            const float s = sigmoid(g.v[l]);
            dg.v[l] = d.v[l] * u.v[l] * s * (1.0f + g.v[l] * (1.0f - s));
            du.v[l] = d.v[l] * g.v[l] * s;
        }
        store_pack<W>(dgate, p, dg);
        store_pack<W>(dup, p, du);
    }
}

}  // namespace

void swiglu_forward(void* stream, float* out, const float* gate, const float* up, int64_t n) {
    launch_map2(as_stream(stream), out, gate, up, n, SwigluOp{});
}

void swiglu_backward(void* stream, float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                     int64_t n) {
    if (n <= 0) return;
    cudaStream_t s = as_stream(stream);
    const bool aligned = is_aligned16(dgate) && is_aligned16(dup) && is_aligned16(dout) && is_aligned16(gate) &&
                         is_aligned16(up);
    const int64_t packs = aligned ? n / kPackWidth : 0, done = packs * kPackWidth;
    if (packs > 0) {
        swiglu_backward_kernel<kPackWidth><<<grid_for(packs, kMapThreads), kMapThreads, 0, s>>>(dgate, dup, dout, gate,
                                                                                                up, packs);
        RPT_CUDA_LAUNCH_CHECK();
    }
    if (done < n) {
        swiglu_backward_kernel<1><<<grid_for(n - done, kMapThreads), kMapThreads, 0, s>>>(
            dgate + done, dup + done, dout + done, gate + done, up + done, n - done);
        RPT_CUDA_LAUNCH_CHECK();
    }
}

}  // namespace rpt::cuda
