// Token embedding: forward gather and deterministic, atomic-free backward scatter, in fp32
// and in bf16 (wte and out bf16; dout bf16 scattered into the fp32 dwte). The kernels are
// templated on the storage types (storage.cuh).
#include <cub/device/device_radix_sort.cuh>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_mixed_ops.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/mixed_checks.cuh"
#include "kernels/cuda/storage.cuh"

namespace rpt::cuda {

namespace {

constexpr int kGatherThreads = 256;
constexpr int kScatterThreads = 256;
constexpr int kIotaThreads = 256;
constexpr int kTokenKeyBits = 32;  // sort on every bit: out-of-range tokens still group correctly

// out[n, :] = wte[tokens[n], :], one thread per W-wide chunk of one row (W = 16 bytes: 4
// floats or 8 bf16, when C and the pointers allow 128-bit access). Pure bandwidth: each
// row is a contiguous copy, no conversion.
template <int W, typename T>
__global__ void embedding_forward_kernel(T* out, const int32_t* tokens, const T* wte, int64_t N, int64_t V,
                                         int64_t C) {
    const int64_t packs_per_row = C / W;
    const int64_t total = N * packs_per_row;
    for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < total; p += int64_t(gridDim.x) * blockDim.x) {
        const int64_t n = p / packs_per_row, j = p % packs_per_row;
        const int64_t token = tokens[n];
        Chunk<T, W> r;
        if (token >= 0 && token < V) {
            r = reinterpret_cast<const Chunk<T, W>*>(wte + token * C)[j];
        } else {
#pragma unroll
            for (int l = 0; l < W; ++l) r.v[l] = from_f32<T>(0.0f);  // invalid ids embed to zero, no out-of-bounds read
        }
        reinterpret_cast<Chunk<T, W>*>(out + n * C)[j] = r;
    }
}

__global__ void iota_kernel(int32_t* values, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        values[i] = static_cast<int32_t>(i);
}

// After a stable sort of (token, position) pairs, the occurrences of each token are one
// contiguous run, in increasing position order. Block i handles the run that starts at
// sorted index i (other blocks exit at once): its threads split the C channels, sum the
// run's dout rows in position order, and add the total to dwte[token, :] once. Each
// dwte element has exactly one writer and a fixed summation order: deterministic,
// atomic-free, and all N*C reads of dout are coalesced along C. dout may be bf16 (widened;
// the sum is fp32).
template <typename G>
__global__ void embedding_backward_kernel(float* dwte, const G* dout, const int32_t* sorted_tokens,
                                          const int32_t* sorted_positions, int64_t N, int64_t V, int64_t C) {
    const int64_t start = blockIdx.x;
    const int32_t token = sorted_tokens[start];
    if (start > 0 && sorted_tokens[start - 1] == token) return;  // not the first of its run
    if (token < 0 || token >= V) return;
    int64_t end = start + 1;
    while (end < N && sorted_tokens[end] == token) ++end;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
        float acc = 0.0f;
        for (int64_t j = start; j < end; ++j) acc += to_f32(dout[int64_t(sorted_positions[j]) * C + c]);
        dwte[int64_t(token) * C + c] += acc;
    }
}

template <typename T>
void launch_embedding_forward(cudaStream_t s, T* out, const int32_t* tokens, const T* wte, int64_t N, int64_t V,
                              int64_t C) {
    constexpr int W = kVecWidth<T>;
    if (N <= 0 || C <= 0) return;
    if (C % W == 0 && chunk_aligned<W>(out) && chunk_aligned<W>(wte)) {
        embedding_forward_kernel<W><<<grid_for(N * C / W, kGatherThreads), kGatherThreads, 0, s>>>(out, tokens, wte,
                                                                                                  N, V, C);
    } else {
        embedding_forward_kernel<1><<<grid_for(N * C, kGatherThreads), kGatherThreads, 0, s>>>(out, tokens, wte, N, V,
                                                                                              C);
    }
    RPT_CUDA_LAUNCH_CHECK();
}

// Sort (token, position) pairs with CUB's stable radix sort, then one block per run of
// equal tokens (see embedding_backward_kernel). The sort costs a few passes over 8N
// bytes, negligible next to the N*C values of dout.
template <typename G>
void launch_embedding_backward(cudaStream_t s, float* dwte, const G* dout, const int32_t* tokens, int64_t N, int64_t V,
                               int64_t C) {
    if (N <= 0 || C <= 0) return;
    if (N > INT32_MAX) throw std::invalid_argument("embedding_backward: more than 2^31 tokens");
    const int items = static_cast<int>(N);
    const size_t index_bytes = static_cast<size_t>(N) * sizeof(int32_t);
    ScratchBuffer positions(index_bytes, s, "embedding_backward positions");
    ScratchBuffer sorted_tokens(index_bytes, s, "embedding_backward sorted tokens");
    ScratchBuffer sorted_positions(index_bytes, s, "embedding_backward sorted positions");

    iota_kernel<<<grid_for(N, kIotaThreads), kIotaThreads, 0, s>>>(positions.as<int32_t>(), N);
    RPT_CUDA_LAUNCH_CHECK();

    size_t temp_bytes = 0;
    RPT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, tokens, sorted_tokens.as<int32_t>(),
                                                   positions.as<int32_t>(), sorted_positions.as<int32_t>(), items, 0,
                                                   kTokenKeyBits, s));
    ScratchBuffer temp(temp_bytes, s, "embedding_backward sort workspace");
    RPT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.data(), temp_bytes, tokens, sorted_tokens.as<int32_t>(),
                                                   positions.as<int32_t>(), sorted_positions.as<int32_t>(), items, 0,
                                                   kTokenKeyBits, s));

    const int threads = C < kScatterThreads ? static_cast<int>(ceil_div<int64_t>(C, kWarpSize) * kWarpSize)
                                            : kScatterThreads;
    embedding_backward_kernel<<<static_cast<unsigned>(N), threads, 0, s>>>(
        dwte, dout, sorted_tokens.as<int32_t>(), sorted_positions.as<int32_t>(), N, V, C);
    RPT_CUDA_LAUNCH_CHECK();
}

}  // namespace

void embedding_forward(void* stream, float* out, const int32_t* tokens, const float* wte, int64_t N, int64_t V,
                       int64_t C) {
    launch_embedding_forward(as_stream(stream), out, tokens, wte, N, V, C);
}

void embedding_backward(void* stream, float* dwte, const float* dout, const int32_t* tokens, int64_t N, int64_t V,
                        int64_t C) {
    launch_embedding_backward(as_stream(stream), dwte, dout, tokens, N, V, C);
}

namespace mixed {

// out (N, C) bf16 = wte (V, C) bf16 [tokens (N)]
void embedding_forward(void* stream, Tensor out, Tensor tokens, Tensor wte) {
    require_dtype("embedding_forward", out, DType::bf16, "out");
    require_dtype("embedding_forward", wte, DType::bf16, "wte");
    launch_embedding_forward(as_stream(stream), as_bf16(out), as_i32(tokens), as_bf16(wte), tokens.numel(), wte.dim(0),
                             wte.dim(1));
}

// dwte (V, C) f32 += dout (N, C) bf16 scattered by tokens (N)
void embedding_backward(void* stream, Tensor dwte, Tensor dout, Tensor tokens) {
    require_dtype("embedding_backward", dwte, DType::f32, "dwte");
    require_dtype("embedding_backward", dout, DType::bf16, "dout");
    launch_embedding_backward(as_stream(stream), as_f32(dwte), as_bf16(dout), as_i32(tokens), tokens.numel(),
                              dwte.dim(0), dwte.dim(1));
}

}  // namespace mixed

}  // namespace rpt::cuda
