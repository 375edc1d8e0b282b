// Host-side helpers of the bf16 entry points (cuda_mixed_ops.h): each family accepts only
// the dtype combinations of the precision recipe and throws std::invalid_argument naming
// the op and the tensor on any other; typed device pointers from tensor views. Shapes are
// validated by the dispatch (kernels/ops.cpp) before these are called. Included only by
// .cu files.
#pragma once

#include <stdexcept>
#include <string>

#include "kernels/cuda/storage.cuh"
#include "kernels/tensor.h"

namespace rpt::cuda::mixed {

inline void require_dtype(const char* op, const Tensor& t, DType dtype, const char* name) {
    if (t.dtype != dtype)
        throw std::invalid_argument(std::string(op) + " (CUDA bf16 path): " + name + " must be " + dtype_name(dtype) +
                                    ", got " + t.describe());
}

inline void require_f32_or_bf16(const char* op, const Tensor& t, const char* name) {
    if (t.dtype != DType::f32 && t.dtype != DType::bf16)
        throw std::invalid_argument(std::string(op) + " (CUDA bf16 path): " + name + " must be f32 or bf16, got " +
                                    t.describe());
}

inline bf16* as_bf16(const Tensor& t) { return static_cast<bf16*>(t.data); }
inline float* as_f32(const Tensor& t) { return static_cast<float*>(t.data); }
inline const int32_t* as_i32(const Tensor& t) { return static_cast<const int32_t*>(t.data); }
// nullptr for an empty (optional) tensor.
inline float* opt_f32(const Tensor& t) { return t.empty() ? nullptr : static_cast<float*>(t.data); }

}  // namespace rpt::cuda::mixed
