// The CUDA device layer (see device.h): error checks, device discovery, RAII owners.
#include "kernels/cuda/device.h"

#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>

namespace rpt {

namespace {

constexpr double kBytesPerMiB = 1024.0 * 1024.0;
constexpr double kBytesPerGiB = kBytesPerMiB * 1024.0;

std::string where(const char* call, const char* file, int line) {
    return std::string(file) + ":" + std::to_string(line) + ": " + call;
}

}  // namespace

void cuda_check(cudaError_t status, const char* call, const char* file, int line) {
    if (status == cudaSuccess) return;
    throw std::runtime_error("CUDA error at " + where(call, file, line) + ": " + cudaGetErrorName(status) + " (" +
                             cudaGetErrorString(status) + ")");
}

void cublas_check(cublasStatus_t status, const char* call, const char* file, int line) {
    if (status == CUBLAS_STATUS_SUCCESS) return;
    throw std::runtime_error("cuBLAS error at " + where(call, file, line) + ": " + cublasLtGetStatusName(status) +
                             " (" + cublasLtGetStatusString(status) + ")");
}

int cuda_device_count() {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
        // No driver, no device, or a driver older than the runtime: clear the error so
        // later runtime calls are not poisoned by it, and report "no GPU".
        (void)cudaGetLastError();
        return 0;
    }
    return count;
}

void cuda_select_device(int index) {
    const int count = cuda_device_count();
    if (index < 0 || index >= count)
        throw std::runtime_error("CUDA device " + std::to_string(index) + " requested, but " + std::to_string(count) +
                                 " device(s) are visible");
    RPT_CUDA_CHECK(cudaSetDevice(index));
}

std::string cuda_device_description() {
    int device = 0;
    RPT_CUDA_CHECK(cudaGetDevice(&device));
    cudaDeviceProp prop{};
    RPT_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    char size[64];
    std::snprintf(size, sizeof size, "%.1f GiB", static_cast<double>(prop.totalGlobalMem) / kBytesPerGiB);
    return std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ", " + size +
           ")";
}

// ---- CudaStream ----------------------------------------------------------------------

CudaStream::CudaStream() { RPT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }

CudaStream::~CudaStream() {
    // Destructors must not throw; a failure here means the context is already gone.
    if (stream_) (void)cudaStreamDestroy(stream_);
}

CudaStream::CudaStream(CudaStream&& other) noexcept : stream_(std::exchange(other.stream_, nullptr)) {}

CudaStream& CudaStream::operator=(CudaStream&& other) noexcept {
    if (this != &other) {
        if (stream_) (void)cudaStreamDestroy(stream_);
        stream_ = std::exchange(other.stream_, nullptr);
    }
    return *this;
}

void CudaStream::synchronize() const { RPT_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

// ---- DeviceBuffer --------------------------------------------------------------------

namespace {

[[noreturn]] void throw_out_of_memory(const char* kind, const char* what, size_t bytes, cudaError_t status) {
    size_t free_bytes = 0, total_bytes = 0;
    const bool have_info = cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess;
    (void)cudaGetLastError();  // cudaMalloc errors are not sticky; clear them for the caller
    char text[1024];
    if (have_info)
        std::snprintf(text, sizeof text, "%s of %zu bytes (%.1f MiB) for %s failed: %s; %.1f MiB free of %.1f MiB", kind,
                      bytes, static_cast<double>(bytes) / kBytesPerMiB, what, cudaGetErrorString(status),
                      static_cast<double>(free_bytes) / kBytesPerMiB, static_cast<double>(total_bytes) / kBytesPerMiB);
    else
        std::snprintf(text, sizeof text, "%s of %zu bytes (%.1f MiB) for %s failed: %s", kind, bytes,
                      static_cast<double>(bytes) / kBytesPerMiB, what, cudaGetErrorString(status));
    throw std::runtime_error(text);
}

}  // namespace

DeviceBuffer::DeviceBuffer(size_t bytes, const char* what) : bytes_(bytes) {
    if (bytes == 0) return;
    const cudaError_t status = cudaMalloc(&data_, bytes);
    if (status != cudaSuccess) {
        data_ = nullptr;
        throw_out_of_memory("cudaMalloc", what, bytes, status);
    }
}

DeviceBuffer::~DeviceBuffer() {
    if (data_) (void)cudaFree(data_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
        if (data_) (void)cudaFree(data_);
        data_ = std::exchange(other.data_, nullptr);
        bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
}

// ---- ScratchBuffer -------------------------------------------------------------------

ScratchBuffer::ScratchBuffer(size_t bytes, cudaStream_t stream, const char* what) : stream_(stream) {
    if (bytes == 0) return;
    const cudaError_t status = cudaMallocAsync(&data_, bytes, stream);
    if (status != cudaSuccess) {
        data_ = nullptr;
        throw_out_of_memory("cudaMallocAsync", what, bytes, status);
    }
}

ScratchBuffer::~ScratchBuffer() {
    if (data_) (void)cudaFreeAsync(data_, stream_);
}

// ---- copies --------------------------------------------------------------------------

void copy_host_to_device(void* dst, const void* src, size_t bytes, cudaStream_t stream) {
    if (bytes == 0) return;
    RPT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream));
    RPT_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void copy_device_to_host(void* dst, const void* src, size_t bytes, cudaStream_t stream) {
    if (bytes == 0) return;
    RPT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream));
    RPT_CUDA_CHECK(cudaStreamSynchronize(stream));
}

// ---- CublasLtHandle ------------------------------------------------------------------

CublasLtHandle::CublasLtHandle() { RPT_CUBLAS_CHECK(cublasLtCreate(&handle_)); }

CublasLtHandle::~CublasLtHandle() {
    if (handle_) (void)cublasLtDestroy(handle_);
}

}  // namespace rpt
