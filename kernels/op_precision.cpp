#include "kernels/op_precision.h"

#include <stdexcept>

#include <fmt/format.h>

#include "kernels/cpu/cpu_ops.h"

namespace rpt::ops::precision {
namespace {

bool allows(Allowed allowed, DType dtype) {
    switch (allowed) {
        case Allowed::bf16: return dtype == DType::bf16;
        case Allowed::f32: return dtype == DType::f32;
        case Allowed::either: return dtype == DType::bf16 || dtype == DType::f32;
    }
    return false;
}

const char* allowed_name(Allowed allowed) {
    switch (allowed) {
        case Allowed::bf16: return "bf16";
        case Allowed::f32: return "f32";
        case Allowed::either: return "f32 or bf16";
    }
    return "?";
}

}  // namespace

bool any_bf16(std::initializer_list<Slot> slots) {
    for (const Slot& s : slots)
        if (!s.tensor->empty() && s.tensor->dtype == DType::bf16) return true;
    return false;
}

void check_bf16_dtypes(const char* op, std::initializer_list<Slot> slots) {
    for (const Slot& s : slots)
        if (!s.tensor->empty() && !allows(s.allowed, s.tensor->dtype))
            throw std::invalid_argument(fmt::format("{}: {} must be {} on the bf16 path, got {}", op, s.name,
                                                    allowed_name(s.allowed), s.tensor->describe()));
}

BF16Staging::BF16Staging(std::initializer_list<Slot> slots) {
    scratch_.reserve(slots.size());  // the views below point into these vectors
    for (const Slot& s : slots) {
        Tensor& t = *s.tensor;
        if (t.empty() || t.dtype != DType::bf16) continue;
        std::vector<float>& buf = scratch_.emplace_back(static_cast<size_t>(t.numel()));
        Tensor staged = t;
        staged.data = buf.data();
        staged.dtype = DType::f32;
        if (s.role != Role::out) cpu::copy(buf.data(), t.bf16(), t.numel());  // exact
        if (s.role != Role::in) outputs_.push_back({t, staged});
        t = staged;
    }
}

void BF16Staging::commit() {
    for (const Staged& o : outputs_) cpu::copy(o.bf16.bf16(), o.scratch.f32(), o.bf16.numel());  // round to nearest even
}

}  // namespace rpt::ops::precision
