#include "kernels/buffer.h"

#include <sys/mman.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

#include <fmt/format.h>

#ifdef RPT_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace rpt {
namespace {

constexpr size_t kAlignment = 64;  // a cache line, and the widest vector load
constexpr size_t kHugePage = size_t(2) << 20;  // x86-64's transparent huge page

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

// The length of a large host buffer's mapping (whole huge pages).
size_t mapped_bytes(size_t bytes) { return round_up(bytes, kHugePage); }

std::string gib(size_t bytes) { return fmt::format("{:.2f} GiB", double(bytes) / (1024.0 * 1024.0 * 1024.0)); }

#ifdef RPT_WITH_CUDA
void cuda_check(cudaError_t err, const char* what) {
    if (err != cudaSuccess) throw std::runtime_error(fmt::format("CUDA error in {}: {}", what, cudaGetErrorString(err)));
}
#endif

// Live and peak bytes per device (buffer_statistics): atomics, as Buffers are made
// and freed from any thread.
struct DeviceCounters {
    std::atomic<size_t> live{0};
    std::atomic<size_t> peak{0};
};
DeviceCounters& counters(DeviceKind device) {
    static DeviceCounters per_device[2];
    return per_device[device == DeviceKind::cuda ? 1 : 0];
}

void count_allocation(DeviceKind device, size_t bytes) {
    DeviceCounters& c = counters(device);
    const size_t live = c.live.fetch_add(bytes) + bytes;
    size_t peak = c.peak.load();
    while (live > peak && !c.peak.compare_exchange_weak(peak, live)) {
    }
}

}  // namespace

BufferStatistics buffer_statistics(DeviceKind device) {
    const DeviceCounters& c = counters(device);
    return {c.live.load(), c.peak.load()};
}

void reset_buffer_peak(DeviceKind device) {
    DeviceCounters& c = counters(device);
    c.peak.store(c.live.load());
}

Buffer::Buffer(DeviceKind device, size_t bytes, const char* what) : bytes_(bytes), device_(device) {
    if (bytes == 0) return;
    allocate(what);
    count_allocation(device_, bytes_);
}

void Buffer::allocate(const char* what) {
    const DeviceKind device = device_;
    const size_t bytes = bytes_;
    if (device == DeviceKind::cpu) {
        if (bytes >= kHugePage) {
            // Large buffers (parameters, gradients, moments, activations) are anonymous
            // mappings: the kernel hands out zeroed pages on first touch, so nothing is
            // written twice, and on transparent huge pages where it offers them on request
            // (faulting in gigabytes 4 KiB at a time costs seconds of system time).
            void* p = ::mmap(nullptr, mapped_bytes(bytes), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED)
                throw std::runtime_error(fmt::format("out of host memory allocating {} ({})", what, gib(bytes)));
            ::madvise(p, mapped_bytes(bytes), MADV_HUGEPAGE);  // advice: failure is harmless
            data_ = p;
            return;
        }
        data_ = std::aligned_alloc(kAlignment, round_up(bytes, kAlignment));
        if (!data_) throw std::runtime_error(fmt::format("out of host memory allocating {} ({})", what, gib(bytes)));
        std::memset(data_, 0, bytes);
        return;
    }
#ifdef RPT_WITH_CUDA
    const cudaError_t err = cudaMalloc(&data_, bytes);
    if (err != cudaSuccess) {
        data_ = nullptr;
        throw std::runtime_error(fmt::format("out of GPU memory allocating {} ({}): {}", what, gib(bytes),
                                             cudaGetErrorString(err)));
    }
    cuda_check(cudaMemset(data_, 0, bytes), what);
#else
    throw std::runtime_error(fmt::format("cannot allocate {} on a GPU: this build has no CUDA backend", what));
#endif
}

void Buffer::release() {
    if (!data_) return;
    counters(device_).live.fetch_sub(bytes_);
    if (device_ == DeviceKind::cpu) {
        if (bytes_ >= kHugePage) ::munmap(data_, mapped_bytes(bytes_));
        else std::free(data_);
    } else {
#ifdef RPT_WITH_CUDA
        cudaFree(data_);
#endif
    }
    data_ = nullptr;
}

Buffer::~Buffer() { release(); }

Buffer::Buffer(Buffer&& other) noexcept : data_(other.data_), bytes_(other.bytes_), device_(other.device_) {
    other.data_ = nullptr;
    other.bytes_ = 0;
}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
    if (this != &other) {
        release();
        data_ = other.data_;
        bytes_ = other.bytes_;
        device_ = other.device_;
        other.data_ = nullptr;
        other.bytes_ = 0;
    }
    return *this;
}

Tensor Buffer::view(DType dtype, size_t byte_offset, std::initializer_list<int64_t> shape) const {
    Tensor t = make_tensor(static_cast<char*>(data_) + byte_offset, dtype, device_, shape);
    if (byte_offset + t.nbytes() > bytes_)
        throw std::out_of_range(fmt::format("view {} at byte {} exceeds a buffer of {} bytes", t.describe(),
                                            byte_offset, bytes_));
    return t;
}

void copy_to_host(void* dst, const Tensor& src) {
    if (src.nbytes() == 0) return;  // an empty tensor may have no memory at all (a rank with no rows)
    if (src.device == DeviceKind::cpu) {
        std::memcpy(dst, src.data, src.nbytes());
        return;
    }
#ifdef RPT_WITH_CUDA
    cuda_check(cudaMemcpy(dst, src.data, src.nbytes(), cudaMemcpyDeviceToHost), "copy_to_host");
#else
    throw std::runtime_error("copy_to_host: this build has no CUDA backend");
#endif
}

void copy_from_host(const Tensor& dst, const void* src) {
    if (dst.nbytes() == 0) return;
    if (dst.device == DeviceKind::cpu) {
        std::memcpy(dst.data, src, dst.nbytes());
        return;
    }
#ifdef RPT_WITH_CUDA
    cuda_check(cudaMemcpy(dst.data, src, dst.nbytes(), cudaMemcpyHostToDevice), "copy_from_host");
#else
    throw std::runtime_error("copy_from_host: this build has no CUDA backend");
#endif
}

Tensor Arena::carve(DType dtype, std::initializer_list<int64_t> shape) {
    Tensor t = make_tensor(nullptr, dtype, buffer_ ? buffer_->device() : DeviceKind::cpu, shape);
    const size_t offset = used_;
    used_ = round_up(used_ + t.nbytes(), kAlignment);
    if (buffer_) t = buffer_->view(dtype, offset, shape);
    return t;
}

}  // namespace rpt
