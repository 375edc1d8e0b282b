// The bf16 Linear layer (cuda::mixed::matmul_forward / matmul_backward: cuBLASLt bf16
// GEMMs on tensor cores, fp32 compute) against the fp32 CPU twin on widened inputs, and
// the GEMM plan cache. Conventions and tolerances: tests/test_cuda_bf16_ops.cpp. Skips
// without a GPU; RPT_TEST_SMALL=1 shrinks the shapes.
#ifdef RPT_WITH_CUDA

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "kernels/bf16.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cuda/cuda_mixed_ops.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/gemm.h"
#include "tests/cuda_bf16_util.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

using namespace bf16_test;
using test::small_mode;

// ---- matmul (cuBLASLt on tensor cores) -------------------------------------------------------

struct GemmShape { int64_t N, IC, OC; };

std::vector<GemmShape> gemm_shapes() {
    return small_mode() ? std::vector<GemmShape>{{5, 7, 3}, {33, 16, 24}}
                        : std::vector<GemmShape>{{1, 1, 1},      {7, 13, 5},      {64, 128, 96},
                                                 {513, 300, 257}, {2048, 896, 1152}, {1000, 4864, 896}};
}

TEST(CudaBf16Matmul, ForwardMatchesCpu) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(110);
    for (const GemmShape& s : gemm_shapes()) {
        for (const DType out_type : {DType::bf16, DType::f32}) {
            for (const bool with_bias : {true, false}) {
                const std::string at = dims({s.N, s.IC, s.OC}) + (out_type == DType::bf16 ? " out bf16" : " out f32") +
                                       (with_bias ? " bias" : "");
                const std::vector<float> in = bf16_values(s.N * s.IC, rng), weight = bf16_values(s.OC * s.IC, rng);
                const std::vector<float> bias = bf16_values(s.OC, rng);
                Dev din = upload(DType::bf16, {s.N, s.IC}, in), dweight = upload(DType::bf16, {s.OC, s.IC}, weight);
                Dev dbias = upload(DType::f32, {s.OC}, bias), out = poisoned(out_type, {s.N, s.OC});
                cuda::mixed::matmul_forward(gpu.handle(), out.view(), din.view(), dweight.view(),
                                            with_bias ? dbias.view() : Tensor{});
                std::vector<float> ref(static_cast<size_t>(s.N * s.OC));
                cpu::matmul_forward(ref.data(), in.data(), weight.data(), with_bias ? bias.data() : nullptr, s.N, s.IC,
                                    s.OC);
                gpu.sync();
                if (out_type == DType::bf16) expect_bf16_close(out, round_bf16(ref), "matmul_forward" + at);
                else expect_f32_close(out, ref, "matmul_forward" + at, kGemmF32Tolerance);
            }
        }
    }
}

TEST(CudaBf16Matmul, BackwardMatchesCpu) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(111);
    for (const GemmShape& s : gemm_shapes()) {
        for (const bool with_din : {true, false}) {
            const std::string at = dims({s.N, s.IC, s.OC}) + (with_din ? " din+dbias" : "");
            const std::vector<float> in = bf16_values(s.N * s.IC, rng), weight = bf16_values(s.OC * s.IC, rng);
            const std::vector<float> dout = bf16_values(s.N * s.OC, rng);
            std::vector<float> din = bf16_values(s.N * s.IC, rng), dweight = bf16_values(s.OC * s.IC, rng);
            std::vector<float> dbias = bf16_values(s.OC, rng);  // all three accumulated into
            Dev d_in = upload(DType::bf16, {s.N, s.IC}, in), d_w = upload(DType::bf16, {s.OC, s.IC}, weight);
            Dev d_dout = upload(DType::bf16, {s.N, s.OC}, dout), d_din = upload(DType::bf16, {s.N, s.IC}, din);
            Dev d_dw = upload(DType::f32, {s.OC, s.IC}, dweight), d_db = upload(DType::f32, {s.OC}, dbias);
            cuda::mixed::matmul_backward(gpu.handle(), with_din ? d_din.view() : Tensor{}, d_dw.view(),
                                         with_din ? d_db.view() : Tensor{}, d_dout.view(), d_in.view(), d_w.view());
            cpu::matmul_backward(with_din ? din.data() : nullptr, dweight.data(), with_din ? dbias.data() : nullptr,
                                 dout.data(), in.data(), weight.data(), s.N, s.IC, s.OC);
            gpu.sync();
            expect_f32_close(d_dw, dweight, "matmul_backward dweight" + at, kGemmF32Tolerance);
            if (with_din) {
                expect_bf16_close(d_din, round_bf16(din), "matmul_backward din" + at);
                expect_f32_close(d_db, dbias, "matmul_backward dbias" + at);
            }
        }
    }
}

// The second call of a configuration reuses its plan; a new shape adds one. (The shapes
// are this test's own, so no earlier test of the process built their plans.)
TEST(CudaBf16Matmul, PlansAreCachedPerConfiguration) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(112);
    const int64_t N = 61, IC = 97, OC = 83;
    Dev in = upload(DType::bf16, {N, IC}, bf16_values(N * IC, rng));
    Dev weight = upload(DType::bf16, {OC, IC}, bf16_values(OC * IC, rng));
    Dev out = poisoned(DType::bf16, {N, OC});
    const cudaStream_t stream = gpu.stream.get();
    const size_t before = cuda::lt_gemm_cached_plans(stream);
    cuda::mixed::matmul_forward(gpu.handle(), out.view(), in.view(), weight.view(), Tensor{});
    EXPECT_EQ(cuda::lt_gemm_cached_plans(stream), before + 1);
    cuda::mixed::matmul_forward(gpu.handle(), out.view(), in.view(), weight.view(), Tensor{});
    EXPECT_EQ(cuda::lt_gemm_cached_plans(stream), before + 1);
    Dev fewer_rows = poisoned(DType::bf16, {N - 1, OC});
    Tensor fewer_in = in.view();
    fewer_in.shape[0] = N - 1;
    cuda::mixed::matmul_forward(gpu.handle(), fewer_rows.view(), fewer_in, weight.view(), Tensor{});
    EXPECT_EQ(cuda::lt_gemm_cached_plans(stream), before + 2);
    gpu.sync();
}

}  // namespace
}  // namespace rpt

#endif  // RPT_WITH_CUDA
