#include "kernels/tensor.h"

#include <stdexcept>

#include <fmt/format.h>

namespace rpt {

size_t dtype_size(DType dtype) {
    switch (dtype) {
        case DType::f32: return 4;
        case DType::bf16: return 2;
        case DType::i32: return 4;
        case DType::u8: return 1;
    }
    return 0;
}

const char* dtype_name(DType dtype) {
    switch (dtype) {
        case DType::f32: return "f32";
        case DType::bf16: return "bf16";
        case DType::i32: return "i32";
        case DType::u8: return "u8";
    }
    return "?";
}

const char* device_name(DeviceKind device) { return device == DeviceKind::cpu ? "cpu" : "cuda"; }

int64_t Tensor::numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return ndim == 0 ? 0 : n;
}

int64_t Tensor::dim(int axis) const {
    const int a = axis < 0 ? ndim + axis : axis;
    if (a < 0 || a >= ndim) throw std::out_of_range(fmt::format("axis {} out of range for {}", axis, describe()));
    return shape[a];
}

float* Tensor::f32() const {
    if (dtype != DType::f32) throw std::logic_error("expected an f32 tensor, got " + describe());
    return static_cast<float*>(data);
}

int32_t* Tensor::i32() const {
    if (dtype != DType::i32) throw std::logic_error("expected an i32 tensor, got " + describe());
    return static_cast<int32_t*>(data);
}

uint16_t* Tensor::bf16() const {
    if (dtype != DType::bf16) throw std::logic_error("expected a bf16 tensor, got " + describe());
    return static_cast<uint16_t*>(data);
}

uint8_t* Tensor::u8() const {
    if (dtype != DType::u8) throw std::logic_error("expected a u8 tensor, got " + describe());
    return static_cast<uint8_t*>(data);
}

Tensor make_tensor(void* data, DType dtype, DeviceKind device, std::initializer_list<int64_t> shape) {
    if (shape.size() > static_cast<size_t>(kMaxTensorDims)) throw std::logic_error("too many tensor dimensions");
    Tensor t;
    t.data = data;
    t.dtype = dtype;
    t.device = device;
    t.ndim = static_cast<int>(shape.size());
    int i = 0;
    for (int64_t s : shape) t.shape[i++] = s;
    return t;
}

Tensor Tensor::reshaped(std::initializer_list<int64_t> new_shape) const {
    Tensor t = make_tensor(data, dtype, device, new_shape);
    if (t.numel() != numel())
        throw std::logic_error(fmt::format("cannot reshape {} to {} elements", describe(), t.numel()));
    return t;
}

Tensor Tensor::rows(int64_t begin, int64_t end) const {
    if (ndim < 1 || begin < 0 || end > shape[0] || begin > end)
        throw std::out_of_range(fmt::format("rows [{}, {}) out of range for {}", begin, end, describe()));
    Tensor t = *this;
    const int64_t row_elems = numel() / shape[0];
    t.data = static_cast<char*>(data) + static_cast<size_t>(begin * row_elems) * dtype_size(dtype);
    t.shape[0] = end - begin;
    return t;
}

std::string Tensor::describe() const {
    std::string dims;
    for (int i = 0; i < ndim; ++i) dims += (i ? ", " : "") + std::to_string(shape[i]);
    return fmt::format("{}[{}] on {}", dtype_name(dtype), dims, device_name(device));
}

}  // namespace rpt
