#include "kernels/op_precision.h"

#include <stdexcept>

#include <fmt/format.h>

#include "kernels/bf16.h"

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

// Plain serial loops: an op's tensors are staged once per call, and a parallel region per
// staged tensor would cost more than the conversion on the model's shapes.
void widen(float* dst, const uint16_t* src, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}
void round_into(uint16_t* dst, const float* src, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
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
        if (s.role != Role::out) widen(buf.data(), t.bf16(), t.numel());  // exact
        if (s.role != Role::in) outputs_.push_back({t, staged});
        t = staged;
    }
}

void BF16Staging::commit() {
    for (const Staged& o : outputs_) round_into(o.bf16.bf16(), o.scratch.f32(), o.bf16.numel());  // nearest even
}

}  // namespace rpt::ops::precision
