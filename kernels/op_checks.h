// Argument checks shared by the dispatch files of the op APIs (kernels/ops.cpp,
// kernels/rl_ops.cpp): each failure is an std::invalid_argument naming the op and the
// argument. Internal to kernels/.
#pragma once

#include <initializer_list>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "kernels/ops.h"

namespace rpt::ops::checks {

[[noreturn]] inline void fail(const char* op, const std::string& why) {
    throw std::invalid_argument(fmt::format("{}: {}", op, why));
}

inline void expect(bool ok, const char* op, const std::string& why) {
    if (!ok) fail(op, why);
}

// Every tensor of a call must live where the context says ops run.
inline void expect_device(const OpContext& ctx, const char* op, std::initializer_list<const Tensor*> tensors) {
    for (const Tensor* t : tensors)
        if (!t->empty() && t->device != ctx.device)
            fail(op, fmt::format("tensor {} is not on the context's device ({})", t->describe(),
                                 device_name(ctx.device)));
}

inline void expect_numel(const char* op, const Tensor& t, int64_t n, const char* name) {
    expect(t.numel() == n, op, fmt::format("{} has {} elements, expected {}", name, t.numel(), n));
}

inline void expect_dtype(const char* op, const Tensor& t, DType dtype, const char* name) {
    expect(t.dtype == dtype, op, fmt::format("{} must be {}, got {}", name, dtype_name(dtype), t.describe()));
}

// Storage of floating-point data that ops may keep in either precision (the KV cache).
inline void expect_f32_or_bf16(const char* op, const Tensor& t, const char* name) {
    expect(t.dtype == DType::f32 || t.dtype == DType::bf16, op,
           fmt::format("{} must be f32 or bf16, got {}", name, t.describe()));
}

inline bool on_gpu(const OpContext& ctx) { return ctx.device == DeviceKind::cuda; }

}  // namespace rpt::ops::checks
