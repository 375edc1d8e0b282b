// Helpers of the bf16 CUDA kernel tests (tests/test_cuda_bf16_ops.cpp,
// tests/test_cuda_bf16_matmul.cpp): device tensors of any dtype with NaN poisoning,
// bf16-exact random inputs, and the tolerances those tests state (see the first file's
// header). Included only under RPT_WITH_CUDA.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/bf16.h"
#include "kernels/cuda/device.h"
#include "kernels/tensor.h"
#include "tests/test_util.h"

namespace rpt::bf16_test {

constexpr double kF32Tolerance = 1e-5;
constexpr double kGemmF32Tolerance = 1e-4;
// One bf16 ulp is 2^-8 of the value's binade; a tensor whose elements are each the
// nearest bf16 of the reference, or a neighbour for a few, has a relative error well
// below it.
constexpr double kBf16RelTolerance = 4e-3;
constexpr double kAbsoluteSlack = 1e-5;  // of the reference's largest magnitude
constexpr uint16_t kBf16NaN = 0x7fc0;

#define SKIP_WITHOUT_GPU() \
    if (::rpt::cuda_device_count() == 0) GTEST_SKIP() << "no GPU"

inline float round_bf16(float x) { return bf16_to_f32(f32_to_bf16(x)); }

inline std::vector<float> round_bf16(std::vector<float> v) {
    for (float& x : v) x = round_bf16(x);
    return v;
}

// One bf16 ulp at the magnitude of x.
inline double bf16_ulp(double x) {
    const double a = std::fabs(x);
    if (a < std::numeric_limits<float>::min()) return std::ldexp(1.0, -133);
    return std::ldexp(1.0, std::ilogb(a) - 7);
}

// A device tensor: its dtype, shape and memory.
struct Dev {
    DType dtype = DType::f32;
    std::vector<int64_t> shape;
    DeviceBuffer buffer;

    int64_t numel() const {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        return n;
    }
    Tensor view() const {
        Tensor t;
        t.data = buffer.data();
        t.dtype = dtype;
        t.device = DeviceKind::cuda;
        t.ndim = static_cast<int>(shape.size());
        for (size_t a = 0; a < shape.size(); ++a) t.shape[a] = shape[a];
        return t;
    }
    // Widened to fp32 (bf16) or as stored (f32).
    std::vector<float> floats() const {
        const size_t n = static_cast<size_t>(numel());
        std::vector<float> out(n);
        if (dtype == DType::f32) {
            copy_device_to_host(out.data(), buffer.data(), n * sizeof(float));
        } else {
            std::vector<uint16_t> bits(n);
            copy_device_to_host(bits.data(), buffer.data(), n * sizeof(uint16_t));
            for (size_t k = 0; k < n; ++k) out[k] = bf16_to_f32(bits[k]);
        }
        return out;
    }
    std::vector<int32_t> ints() const {
        std::vector<int32_t> out(static_cast<size_t>(numel()));
        copy_device_to_host(out.data(), buffer.data(), out.size() * sizeof(int32_t));
        return out;
    }
};

inline Dev allocate(DType dtype, std::vector<int64_t> shape) {
    Dev d;
    d.dtype = dtype;
    d.shape = std::move(shape);
    d.buffer = DeviceBuffer(static_cast<size_t>(d.numel()) * dtype_size(dtype) + 16, "bf16 test tensor");
    return d;
}

// values are rounded to bf16 for a bf16 tensor (callers pass bf16-exact values).
inline Dev upload(DType dtype, std::vector<int64_t> shape, const std::vector<float>& values) {
    Dev d = allocate(dtype, std::move(shape));
    if (dtype == DType::f32) {
        copy_host_to_device(d.buffer.data(), values.data(), values.size() * sizeof(float));
    } else {
        std::vector<uint16_t> bits(values.size());
        for (size_t k = 0; k < values.size(); ++k) bits[k] = f32_to_bf16(values[k]);
        copy_host_to_device(d.buffer.data(), bits.data(), bits.size() * sizeof(uint16_t));
    }
    return d;
}

inline Dev upload_i32(std::vector<int64_t> shape, const std::vector<int32_t>& values) {
    Dev d = allocate(DType::i32, std::move(shape));
    copy_host_to_device(d.buffer.data(), values.data(), values.size() * sizeof(int32_t));
    return d;
}

// NaN in every element: outputs the kernel must overwrite.
inline Dev poisoned(DType dtype, std::vector<int64_t> shape) {
    Dev d = allocate(dtype, std::move(shape));
    const size_t n = static_cast<size_t>(d.numel());
    if (dtype == DType::f32) {
        const std::vector<float> nan(n, std::numeric_limits<float>::quiet_NaN());
        copy_host_to_device(d.buffer.data(), nan.data(), n * sizeof(float));
    } else {
        const std::vector<uint16_t> nan(n, kBf16NaN);
        copy_host_to_device(d.buffer.data(), nan.data(), n * sizeof(uint16_t));
    }
    return d;
}

// Uniform in [-scale, scale], away from zero, rounded to bf16 (exact in either dtype).
inline std::vector<float> bf16_values(int64_t n, std::mt19937& rng, float scale = 1.0f) {
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) {
        float y = dist(rng);
        if (std::fabs(y) < 1e-3f) y = y < 0 ? -0.5f : 0.5f;
        x = round_bf16(y * scale);
    }
    return v;
}

inline std::vector<int32_t> random_ints(int64_t n, std::mt19937& rng, int32_t lo, int32_t hi) {
    std::uniform_int_distribution<int32_t> dist(lo, hi);
    std::vector<int32_t> v(static_cast<size_t>(n));
    for (int32_t& x : v) x = dist(rng);
    return v;
}

inline void expect_f32_close(const Dev& d, const std::vector<float>& ref, const std::string& what,
                      double tolerance = kF32Tolerance) {
    const std::vector<float> got = d.floats();
    ASSERT_EQ(got.size(), ref.size()) << what;
    EXPECT_LT(test::rel_error(got, ref), tolerance) << what;
}

// A bf16 output against the rounded reference: each element within one ulp (+ slack).
inline void expect_bf16_close(const Dev& d, const std::vector<float>& ref, const std::string& what) {
    ASSERT_EQ(d.dtype, DType::bf16) << what;
    const std::vector<float> got = d.floats();
    ASSERT_EQ(got.size(), ref.size()) << what;
    double largest = 0.0;
    for (float r : ref) largest = std::max(largest, static_cast<double>(std::fabs(r)));
    int64_t bad = 0, first_bad = -1;
    for (size_t k = 0; k < ref.size(); ++k) {
        const double bound = bf16_ulp(ref[k]) + kAbsoluteSlack * largest;
        if (!(std::fabs(static_cast<double>(got[k]) - ref[k]) <= bound)) {
            if (first_bad < 0) first_bad = static_cast<int64_t>(k);
            ++bad;
        }
    }
    const float got_first = first_bad >= 0 ? got[first_bad] : 0.0f, want_first = first_bad >= 0 ? ref[first_bad] : 0.0f;
    EXPECT_EQ(bad, 0) << what << ": " << bad << " elements beyond one bf16 ulp; first at " << first_bad << " got "
                      << got_first << " want " << want_first;
    EXPECT_LT(test::rel_error(got, ref), kBf16RelTolerance) << what;
}

// Either check, by the output's dtype.
inline void expect_close(const Dev& d, const std::vector<float>& ref_unrounded, const std::string& what) {
    if (d.dtype == DType::bf16) expect_bf16_close(d, round_bf16(ref_unrounded), what);
    else expect_f32_close(d, ref_unrounded, what);
}

inline void expect_bitwise(const Dev& d, const std::vector<float>& ref, const std::string& what) {
    const std::vector<float> got = d.floats();
    ASSERT_EQ(got.size(), ref.size()) << what;
    EXPECT_EQ(std::memcmp(got.data(), ref.data(), got.size() * sizeof(float)), 0) << what;
}

struct Gpu {
    CudaStream stream;
    void* handle() const { return stream.handle(); }
    void sync() const { stream.synchronize(); }
};

inline std::string dims(std::initializer_list<int64_t> d) {
    std::string s;
    for (int64_t x : d) s += (s.empty() ? " " : "x") + std::to_string(x);
    return s;
}

}  // namespace rpt::bf16_test
