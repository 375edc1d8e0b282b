// Tensor views: a pointer, an element type, a device and a shape. A view owns nothing;
// buffers are owned by whoever allocated them (model parameters, activations, scratch).
// Ops take views so that one call site serves the CPU twin and the CUDA kernel alike.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

namespace rpt {

enum class DeviceKind : uint8_t { cpu, cuda };
enum class DType : uint8_t { f32, bf16, i32, u8 };

constexpr int kMaxTensorDims = 4;

// Size in bytes of one element of `dtype`.
size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
const char* device_name(DeviceKind device);

struct Tensor {
    void* data = nullptr;
    DType dtype = DType::f32;
    DeviceKind device = DeviceKind::cpu;
    int ndim = 0;
    std::array<int64_t, kMaxTensorDims> shape{};

    bool empty() const { return data == nullptr; }
    int64_t numel() const;
    size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
    // dim(-1) is the last dimension.
    int64_t dim(int axis) const;
    // Typed access; throws if the dtype does not match.
    float* f32() const;
    int32_t* i32() const;
    uint16_t* bf16() const;
    uint8_t* u8() const;
    // The same memory seen with another shape of equal element count.
    Tensor reshaped(std::initializer_list<int64_t> new_shape) const;
    // Rows [begin, end) along the first dimension.
    Tensor rows(int64_t begin, int64_t end) const;
    std::string describe() const;  // e.g. "f32[8, 256] on cpu"
};

// A view of existing memory.
Tensor make_tensor(void* data, DType dtype, DeviceKind device, std::initializer_list<int64_t> shape);
inline Tensor cpu_f32(float* data, std::initializer_list<int64_t> shape) {
    return make_tensor(data, DType::f32, DeviceKind::cpu, shape);
}
inline Tensor cpu_i32(int32_t* data, std::initializer_list<int64_t> shape) {
    return make_tensor(data, DType::i32, DeviceKind::cpu, shape);
}

}  // namespace rpt
