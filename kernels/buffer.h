// Owned memory on one device. Parameters, gradients, optimizer moments and activations
// each live in one Buffer (one allocation per kind), carved into tensor views.
#pragma once

#include <cstddef>
#include <memory>

#include "kernels/tensor.h"

namespace rpt {

class Buffer {
public:
    Buffer() = default;
    // Zero-filled. `what` names the buffer in out-of-memory errors and size reports. Host
    // buffers of 2 MiB or more are anonymous mappings on transparent huge pages, zeroed by
    // the kernel as each page is first touched (so untouched memory is not resident).
    Buffer(DeviceKind device, size_t bytes, const char* what);
    ~Buffer();
    Buffer(Buffer&& other) noexcept;
    Buffer& operator=(Buffer&& other) noexcept;
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;

    void* data() const { return data_; }
    size_t bytes() const { return bytes_; }
    DeviceKind device() const { return device_; }

    // A view of elements [offset, offset + numel) as `dtype`, shaped as given.
    Tensor view(DType dtype, size_t byte_offset, std::initializer_list<int64_t> shape) const;

private:
    void allocate(const char* what);  // data_ for bytes_ on device_ (zeroed)
    void release();
    void* data_ = nullptr;
    size_t bytes_ = 0;
    DeviceKind device_ = DeviceKind::cpu;
};

// Bytes held by Buffers on one device, now and at most since the last reset: what
// `rpt plan` is checked against (tests/test_memory_plan.cpp). Counted in the Buffer
// constructor and destructor, so every parameter, gradient, moment, activation and KV
// cache allocation is seen; ops' internal scratch (CPU thread scratch, the CUDA
// cuBLASLt workspace) is not. Process-wide allocation statistics, as malloc keeps its
// own: diagnostics for reports and tests, never read by the program's logic.
struct BufferStatistics {
    size_t live_bytes = 0;
    size_t peak_bytes = 0;
};
BufferStatistics buffer_statistics(DeviceKind device);
// Starts a new peak at the bytes live now.
void reset_buffer_peak(DeviceKind device);

// Copies between host memory and a tensor on any device (synchronous).
void copy_to_host(void* dst, const Tensor& src);
void copy_from_host(const Tensor& dst, const void* src);

// Bump allocator over one Buffer: carve() hands out 64-byte aligned views in order.
// Used to lay out all activations of a batch shape in a single allocation.
class Arena {
public:
    // First pass: measure. Second pass: carve from a buffer of the measured size.
    explicit Arena(const Buffer* buffer) : buffer_(buffer) {}
    Tensor carve(DType dtype, std::initializer_list<int64_t> shape);
    size_t used() const { return used_; }

private:
    const Buffer* buffer_;  // nullptr while measuring
    size_t used_ = 0;
};

}  // namespace rpt
