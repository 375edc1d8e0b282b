// The CUDA device layer: error checks, device discovery, and RAII owners for streams,
// device memory and the cuBLASLt handle. Host-only: usable from .cpp files compiled by
// g++ with -DRPT_WITH_CUDA -I$CUDA_HOME/include, and from the .cu files of this folder.
//
// Errors never pass silently: every CUDA and cuBLAS call goes through RPT_CUDA_CHECK /
// RPT_CUBLAS_CHECK, which throw std::runtime_error naming the call, file:line and the
// error string; every kernel launch is followed by RPT_CUDA_CHECK(cudaGetLastError()).
#pragma once

// nvcc builds of this folder do not pass -DRPT_WITH_CUDA; __CUDACC__ stands in for it.
#if defined(RPT_WITH_CUDA) || defined(__CUDACC__)

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <cublasLt.h>
#include <cuda_runtime.h>

namespace rpt {

// Throws std::runtime_error("CUDA error at file:line: <call>: <error string>") unless ok.
void cuda_check(cudaError_t status, const char* call, const char* file, int line);
void cublas_check(cublasStatus_t status, const char* call, const char* file, int line);

#define RPT_CUDA_CHECK(expr) ::rpt::cuda_check((expr), #expr, __FILE__, __LINE__)
#define RPT_CUBLAS_CHECK(expr) ::rpt::cublas_check((expr), #expr, __FILE__, __LINE__)

// Number of usable CUDA devices; 0 when there is no driver, no GPU, or the runtime
// cannot initialise. Never throws: a GPU-less machine simply runs on the CPU.
int cuda_device_count();
// Makes device `index` current for this host thread (throws when out of range).
void cuda_select_device(int index);
// "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)" for the current device.
std::string cuda_device_description();

// A non-blocking CUDA stream, destroyed with its owner. handle() is what OpContext
// carries (a cudaStream_t seen as void*).
class CudaStream {
public:
    CudaStream();
    ~CudaStream();
    CudaStream(CudaStream&& other) noexcept;
    CudaStream& operator=(CudaStream&& other) noexcept;
    CudaStream(const CudaStream&) = delete;
    CudaStream& operator=(const CudaStream&) = delete;

    cudaStream_t get() const { return stream_; }
    void* handle() const { return static_cast<void*>(stream_); }
    void synchronize() const;

private:
    cudaStream_t stream_ = nullptr;
};

// Device memory from cudaMalloc, freed with its owner. `what` names the allocation in
// the out-of-memory error ("activations", "kv cache", ...), together with the size
// requested and the memory free on the device.
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    DeviceBuffer(size_t bytes, const char* what);
    ~DeviceBuffer();
    DeviceBuffer(DeviceBuffer&& other) noexcept;
    DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;

    void* data() const { return data_; }
    size_t bytes() const { return bytes_; }
    template <typename T>
    T* as() const { return static_cast<T*>(data_); }

private:
    void* data_ = nullptr;
    size_t bytes_ = 0;
};

// Stream-ordered scratch memory (cudaMallocAsync / cudaFreeAsync on one stream): the
// temporary buffers of multi-kernel ops (partial sums, sort keys). Freed on the stream
// when the owner goes out of scope, so the kernels enqueued before still see it.
class ScratchBuffer {
public:
    ScratchBuffer(size_t bytes, cudaStream_t stream, const char* what);
    ~ScratchBuffer();
    ScratchBuffer(const ScratchBuffer&) = delete;
    ScratchBuffer& operator=(const ScratchBuffer&) = delete;

    void* data() const { return data_; }
    template <typename T>
    T* as() const { return static_cast<T*>(data_); }

private:
    void* data_ = nullptr;
    cudaStream_t stream_ = nullptr;
};

// Copies that complete before returning (enqueued on `stream`, then synchronised):
// for setup, tests and checkpoints, not for the training hot loop.
void copy_host_to_device(void* dst, const void* src, size_t bytes, cudaStream_t stream = nullptr);
void copy_device_to_host(void* dst, const void* src, size_t bytes, cudaStream_t stream = nullptr);

template <typename T>
void upload(const DeviceBuffer& dst, const std::vector<T>& src, cudaStream_t stream = nullptr) {
    copy_host_to_device(dst.data(), src.data(), src.size() * sizeof(T), stream);
}
template <typename T>
std::vector<T> download(const DeviceBuffer& src, size_t count, cudaStream_t stream = nullptr) {
    std::vector<T> out(count);
    copy_device_to_host(out.data(), src.data(), count * sizeof(T), stream);
    return out;
}

// A cuBLASLt handle, destroyed with its owner.
class CublasLtHandle {
public:
    CublasLtHandle();
    ~CublasLtHandle();
    CublasLtHandle(const CublasLtHandle&) = delete;
    CublasLtHandle& operator=(const CublasLtHandle&) = delete;

    cublasLtHandle_t get() const { return handle_; }

private:
    cublasLtHandle_t handle_ = nullptr;
};

}  // namespace rpt

#endif  // RPT_WITH_CUDA || __CUDACC__
