// The bounds the bf16 tensor-core attention is held to (tests/test_cuda_attention_bf16.cpp
// on a GPU, tests/test_attention_tiles.cpp's emulation of its tile algorithm on the CPU),
// against the fp32 twin run on the widened bf16 inputs. The products accumulate in fp32;
// what bf16 costs is the rounding of P and dS before their second products and of every
// stored output (2^-9 relative each).
#pragma once

#include <cmath>
#include <vector>

namespace rpt::test::attention_bf16 {

// out: rel_l2(got, ref, kOutAbs) < kOutRel and max |got - ref| <= kOutMax * max |ref| + kOutAbs.
constexpr double kOutRel = 1e-2, kOutMax = 1e-2, kOutAbs = 4e-3;
// lse: fp32 statistics of fp32 scores, ||got - ref|| / ||ref|| < kLseRel.
constexpr double kLseRel = 1e-5;
// dq, dk, dv: rel_l2(got, ref, kGradAbs) < kGradRel and max |got - ref| <= kGradMax *
// max |ref| + kGradAbs (the absolute floor covers gradients that cancel to about zero,
// e.g. T = 1, where a relative error means nothing).
constexpr double kGradRel = 2e-2, kGradMax = 2e-2, kGradAbs = 1e-5;

// ||got - ref|| / (||ref|| + floor * sqrt(n)): the relative L2 error with an absolute
// floor per element. NaN anywhere gives NaN, which fails every `<` check.
inline double rel_l2(const std::vector<float>& got, const std::vector<float>& ref, double floor) {
    if (got.size() != ref.size()) return INFINITY;
    double diff = 0.0, norm = 0.0;
    for (size_t i = 0; i < ref.size(); ++i) {
        const double d = double(got[i]) - double(ref[i]);
        diff += d * d;
        norm += double(ref[i]) * double(ref[i]);
    }
    return std::sqrt(diff) / (std::sqrt(norm) + floor * std::sqrt(double(ref.size())));
}

}  // namespace rpt::test::attention_bf16
