// The bf16 CUDA kernels (kernels/cuda/cuda_mixed_ops.h, attention aside) against the CPU
// twins of kernels/cpu/cpu_ops.h, called directly: the reference widens the bf16 inputs
// (exact), runs the fp32 twin and rounds the outputs that the recipe stores in bf16 once
// (to nearest even), which is what the GPU kernels claim to do. Random inputs are drawn
// already representable in bf16, at several shapes including odd ones and tails that are
// not a multiple of the 8-wide vector; outputs the kernels overwrite are NaN-poisoned
// first.
//
// Tolerances, per output:
//   stored in bf16 (elementwise, norms, RoPE, SwiGLU, GEMM outputs, logits gradients):
//     every element within one bf16 ulp of the reference, plus 1e-5 of the reference's
//     largest magnitude (the two sides compute the same fp32 value up to summation order
//     and library ulps, so they round to the same bf16 or to a neighbour), and the
//     tensor's relative error below kBf16RelTolerance;
//   exact copies (embedding forward, add/accumulate, argmax, AdamW's working copy): bitwise;
//   stored in fp32 (rstd, lse, logprob, entropy, dweight, dbias, dwte, AdamW state):
//     relative error below 1e-5, the fp32 kernels' tolerance (tensor-core GEMM outputs in
//     fp32: 1e-4, their accumulation order being cuBLAS's).
//
// The matmul's tests are in tests/test_cuda_bf16_matmul.cpp, the shared helpers in
// tests/cuda_bf16_util.h. Every test skips without a GPU, except the dtype checks, which
// throw before any device work. RPT_TEST_SMALL=1 shrinks the shapes (compute-sanitizer).
#ifdef RPT_WITH_CUDA

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "kernels/bf16.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cuda/cuda_mixed_ops.h"
#include "kernels/cuda/device.h"
#include "tests/cuda_bf16_util.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

using namespace bf16_test;
using test::small_mode;

// ---- elementwise -----------------------------------------------------------------------

TEST(CudaBf16Kernels, AddAndAccumulate) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(101);
    const std::vector<int64_t> sizes = small_mode() ? std::vector<int64_t>{1, 13, 1027}
                                                    : std::vector<int64_t>{1, 7, 8, 1001, 4099, 1 << 20};
    for (int64_t n : sizes) {
        const std::string at = dims({n});
        const std::vector<float> a = bf16_values(n, rng), b = bf16_values(n, rng, 3.0f);
        Dev da = upload(DType::bf16, {n}, a), db = upload(DType::bf16, {n}, b), out = poisoned(DType::bf16, {n});
        cuda::mixed::add(gpu.handle(), out.view(), da.view(), db.view());
        std::vector<float> ref(static_cast<size_t>(n));
        cpu::add(ref.data(), a.data(), b.data(), n);
        gpu.sync();
        expect_bitwise(out, round_bf16(ref), "add" + at);  // one fp32 add, one rounding: exact

        cuda::mixed::accumulate(gpu.handle(), da.view(), db.view());
        gpu.sync();
        expect_bitwise(da, round_bf16(ref), "accumulate" + at);
    }
}

// ---- embedding ---------------------------------------------------------------------------

TEST(CudaBf16Kernels, Embedding) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(102);
    struct Shape { int64_t N, V, C; };
    const std::vector<Shape> shapes = small_mode() ? std::vector<Shape>{{7, 11, 5}, {40, 9, 16}}
                                                   : std::vector<Shape>{{1, 1, 1}, {7, 11, 5}, {64, 50, 40},
                                                                        {4096, 1000, 256}, {777, 64, 896}};
    for (const Shape& s : shapes) {
        const std::string at = dims({s.N, s.V, s.C});
        const std::vector<int32_t> tokens = random_ints(s.N, rng, 0, static_cast<int32_t>(s.V - 1));
        const std::vector<float> wte = bf16_values(s.V * s.C, rng);
        Dev dtokens = upload_i32({s.N}, tokens), dwte_table = upload(DType::bf16, {s.V, s.C}, wte);
        Dev out = poisoned(DType::bf16, {s.N, s.C});
        cuda::mixed::embedding_forward(gpu.handle(), out.view(), dtokens.view(), dwte_table.view());
        std::vector<float> ref(static_cast<size_t>(s.N * s.C));
        cpu::embedding_forward(ref.data(), tokens.data(), wte.data(), s.N, s.V, s.C);
        gpu.sync();
        expect_bitwise(out, ref, "embedding_forward" + at);

        const std::vector<float> dout = bf16_values(s.N * s.C, rng);
        std::vector<float> dwte = bf16_values(s.V * s.C, rng);  // accumulated into, fp32
        Dev ddout = upload(DType::bf16, {s.N, s.C}, dout), ddwte = upload(DType::f32, {s.V, s.C}, dwte);
        Dev again = upload(DType::f32, {s.V, s.C}, dwte);
        cuda::mixed::embedding_backward(gpu.handle(), ddwte.view(), ddout.view(), dtokens.view());
        cuda::mixed::embedding_backward(gpu.handle(), again.view(), ddout.view(), dtokens.view());
        cpu::embedding_backward(dwte.data(), dout.data(), tokens.data(), s.N, s.V, s.C);
        gpu.sync();
        expect_f32_close(ddwte, dwte, "embedding_backward" + at);
        expect_bitwise(again, ddwte.floats(), "embedding_backward determinism" + at);
    }
}

// ---- RMSNorm -----------------------------------------------------------------------------

struct RowShape { int64_t N, C; };

std::vector<RowShape> norm_shapes() {
    return small_mode() ? std::vector<RowShape>{{3, 7}, {9, 40}}
                        : std::vector<RowShape>{{1, 1}, {3, 7}, {33, 64}, {100, 900}, {1000, 896}, {4100, 1536}};
}

TEST(CudaBf16Kernels, RmsnormForwardAndBackward) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(103);
    const float eps = 1e-6f;
    for (const RowShape& s : norm_shapes()) {
        for (const DType out_type : {DType::bf16, DType::f32}) {
            const std::string at = dims({s.N, s.C}) + (out_type == DType::bf16 ? " out bf16" : " out f32");
            const std::vector<float> in = bf16_values(s.N * s.C, rng, 2.0f), weight = bf16_values(s.C, rng);
            Dev din_ = upload(DType::bf16, {s.N, s.C}, in), dweight_ = upload(DType::bf16, {s.C}, weight);
            Dev out = poisoned(out_type, {s.N, s.C}), rstd = poisoned(DType::f32, {s.N});
            cuda::mixed::rmsnorm_forward(gpu.handle(), out.view(), rstd.view(), din_.view(), dweight_.view(), eps);
            std::vector<float> ref(static_cast<size_t>(s.N * s.C)), ref_rstd(static_cast<size_t>(s.N));
            cpu::rmsnorm_forward(ref.data(), ref_rstd.data(), in.data(), weight.data(), s.N, s.C, eps);
            gpu.sync();
            expect_close(out, ref, "rmsnorm_forward" + at);
            expect_f32_close(rstd, ref_rstd, "rmsnorm_forward rstd" + at);

            // Backward from the reference rstd, dout in the forward's output type.
            const std::vector<float> dout = bf16_values(s.N * s.C, rng);
            std::vector<float> din = bf16_values(s.N * s.C, rng), dweight = bf16_values(s.C, rng);  // accumulated
            Dev ddout = upload(out_type, {s.N, s.C}, dout), drstd = upload(DType::f32, {s.N}, ref_rstd);
            Dev ddin = upload(DType::bf16, {s.N, s.C}, din), ddweight = upload(DType::f32, {s.C}, dweight);
            cuda::mixed::rmsnorm_backward(gpu.handle(), ddin.view(), ddweight.view(), ddout.view(), din_.view(),
                                          dweight_.view(), drstd.view());
            cpu::rmsnorm_backward(din.data(), dweight.data(), dout.data(), in.data(), weight.data(), ref_rstd.data(),
                                  s.N, s.C);
            gpu.sync();
            expect_bf16_close(ddin, round_bf16(din), "rmsnorm_backward din" + at);
            expect_f32_close(ddweight, dweight, "rmsnorm_backward dweight" + at);
        }
    }
}

TEST(CudaBf16Kernels, AddRmsnormForward) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(104);
    const float eps = 1e-5f;
    for (const RowShape& s : norm_shapes()) {
        const std::string at = dims({s.N, s.C});
        const std::vector<float> res = bf16_values(s.N * s.C, rng, 4.0f), branch = bf16_values(s.N * s.C, rng);
        const std::vector<float> weight = bf16_values(s.C, rng);
        Dev dres = upload(DType::bf16, {s.N, s.C}, res), dbranch = upload(DType::bf16, {s.N, s.C}, branch);
        Dev dweight = upload(DType::bf16, {s.C}, weight);
        Dev res_out = poisoned(DType::bf16, {s.N, s.C}), out = poisoned(DType::bf16, {s.N, s.C});
        Dev rstd = poisoned(DType::f32, {s.N});
        cuda::mixed::add_rmsnorm_forward(gpu.handle(), res_out.view(), out.view(), rstd.view(), dres.view(),
                                         dbranch.view(), dweight.view(), eps);
        std::vector<float> sum(res.size());
        cpu::add(sum.data(), res.data(), branch.data(), s.N * s.C);
        sum = round_bf16(sum);  // the residual as stored: the norm reads it rounded
        std::vector<float> ref(sum.size()), ref_rstd(static_cast<size_t>(s.N));
        cpu::rmsnorm_forward(ref.data(), ref_rstd.data(), sum.data(), weight.data(), s.N, s.C, eps);
        gpu.sync();
        expect_bitwise(res_out, sum, "add_rmsnorm_forward residual_out" + at);
        expect_bf16_close(out, round_bf16(ref), "add_rmsnorm_forward out" + at);
        expect_f32_close(rstd, ref_rstd, "add_rmsnorm_forward rstd" + at);
    }
}

// ---- RoPE, SwiGLU --------------------------------------------------------------------------

TEST(CudaBf16Kernels, RopeForwardAndBackward) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(105);
    const float theta = 1000000.0f;
    struct Shape { int64_t N, heads, D; };
    const std::vector<Shape> shapes = small_mode() ? std::vector<Shape>{{5, 3, 8}}
                                                   : std::vector<Shape>{{1, 1, 2}, {5, 3, 8}, {37, 2, 6},
                                                                        {512, 14, 64}, {300, 4, 128}};
    for (const Shape& s : shapes) {
        const std::string at = dims({s.N, s.heads, s.D});
        const std::vector<int32_t> positions = random_ints(s.N, rng, 0, 32767);
        std::vector<float> x = bf16_values(s.N * s.heads * s.D, rng);
        Dev dpos = upload_i32({s.N}, positions), dx = upload(DType::bf16, {s.N, s.heads, s.D}, x);
        cuda::mixed::rope_forward(gpu.handle(), dx.view(), dpos.view(), theta);
        cpu::rope_forward(x.data(), positions.data(), s.N, s.heads, s.D, theta);
        x = round_bf16(x);
        gpu.sync();
        expect_bf16_close(dx, x, "rope_forward" + at);

        // Backward from the same (rounded) input on both sides.
        Dev dg = upload(DType::bf16, {s.N, s.heads, s.D}, x);
        cuda::mixed::rope_backward(gpu.handle(), dg.view(), dpos.view(), theta);
        cpu::rope_backward(x.data(), positions.data(), s.N, s.heads, s.D, theta);
        gpu.sync();
        expect_bf16_close(dg, round_bf16(x), "rope_backward" + at);
    }
}

TEST(CudaBf16Kernels, SwigluForwardAndBackward) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(106);
    const std::vector<int64_t> sizes = small_mode() ? std::vector<int64_t>{5, 1027}
                                                    : std::vector<int64_t>{1, 7, 8, 4099, 3 * 4864 + 5, 1 << 20};
    for (int64_t n : sizes) {
        const std::string at = dims({n});
        const std::vector<float> gate = bf16_values(n, rng, 4.0f), up = bf16_values(n, rng), dout = bf16_values(n, rng);
        Dev dgate_in = upload(DType::bf16, {n}, gate), dup_in = upload(DType::bf16, {n}, up);
        Dev ddout = upload(DType::bf16, {n}, dout);
        Dev out = poisoned(DType::bf16, {n}), dgate = poisoned(DType::bf16, {n}), dup = poisoned(DType::bf16, {n});
        cuda::mixed::swiglu_forward(gpu.handle(), out.view(), dgate_in.view(), dup_in.view());
        cuda::mixed::swiglu_backward(gpu.handle(), dgate.view(), dup.view(), ddout.view(), dgate_in.view(),
                                     dup_in.view());
        std::vector<float> ref(static_cast<size_t>(n)), ref_dgate(ref.size()), ref_dup(ref.size());
        cpu::swiglu_forward(ref.data(), gate.data(), up.data(), n);
        cpu::swiglu_backward(ref_dgate.data(), ref_dup.data(), dout.data(), gate.data(), up.data(), n);
        gpu.sync();
        expect_bf16_close(out, round_bf16(ref), "swiglu_forward" + at);
        expect_bf16_close(dgate, round_bf16(ref_dgate), "swiglu_backward dgate" + at);
        expect_bf16_close(dup, round_bf16(ref_dup), "swiglu_backward dup" + at);
    }
}

// ---- log-softmax family ------------------------------------------------------------------

struct VocabShape { int64_t N, V; };

std::vector<VocabShape> vocab_shapes() {
    return small_mode() ? std::vector<VocabShape>{{3, 17}, {4, 256}}
                        : std::vector<VocabShape>{{1, 1}, {3, 17}, {16, 1000}, {64, 4096}, {9, 151936}, {5, 50257}};
}

TEST(CudaBf16Kernels, LogsoftmaxForwardAndBackward) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(107);
    for (const VocabShape& s : vocab_shapes()) {
        for (const float inv_temperature : {1.0f, 0.7f}) {
            const std::string at = dims({s.N, s.V}) + " inv_t=" + std::to_string(inv_temperature);
            const std::vector<float> logits = bf16_values(s.N * s.V, rng, 8.0f);
            std::vector<int32_t> targets = random_ints(s.N, rng, 0, static_cast<int32_t>(s.V - 1));
            if (s.N > 1) targets[1] = -1;  // an ignored position
            Dev dlogits = upload(DType::bf16, {s.N, s.V}, logits), dtargets = upload_i32({s.N}, targets);
            Dev logprob = poisoned(DType::f32, {s.N}), entropy = poisoned(DType::f32, {s.N});
            Dev lse = poisoned(DType::f32, {s.N});
            cuda::mixed::logsoftmax_forward(gpu.handle(), logprob.view(), entropy.view(), lse.view(), dlogits.view(),
                                            dtargets.view(), inv_temperature);
            std::vector<float> ref_lp(static_cast<size_t>(s.N)), ref_h(ref_lp.size()), ref_lse(ref_lp.size());
            cpu::logsoftmax_forward(ref_lp.data(), ref_h.data(), ref_lse.data(), logits.data(), targets.data(), s.N,
                                    s.V, inv_temperature);
            gpu.sync();
            expect_f32_close(logprob, ref_lp, "logsoftmax_forward logprob" + at);
            expect_f32_close(entropy, ref_h, "logsoftmax_forward entropy" + at);
            expect_f32_close(lse, ref_lse, "logsoftmax_forward lse" + at);

            std::vector<float> dlogprob = bf16_values(s.N, rng);
            if (s.N > 2) dlogprob[2] = 0.0f;  // a row without gradient
            Dev ddlogprob = upload(DType::f32, {s.N}, dlogprob), dlse = upload(DType::f32, {s.N}, ref_lse);
            cuda::mixed::logsoftmax_backward(gpu.handle(), dlogits.view(), ddlogprob.view(), dlse.view(),
                                             dtargets.view(), inv_temperature);
            std::vector<float> grad = logits;
            cpu::logsoftmax_backward(grad.data(), dlogprob.data(), ref_lse.data(), targets.data(), s.N, s.V,
                                     inv_temperature);
            gpu.sync();
            expect_bf16_close(dlogits, round_bf16(grad), "logsoftmax_backward" + at);
        }
    }
}

TEST(CudaBf16Kernels, TopkEntropyAndArgmax) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(108);
    for (const VocabShape& s : vocab_shapes()) {
        // Few distinct values: bf16 logits tie often, and argmax must pick the first.
        const std::vector<float> logits = bf16_values(s.N * s.V, rng, 6.0f);
        Dev dlogits = upload(DType::bf16, {s.N, s.V}, logits);
        Dev out = allocate(DType::i32, {s.N});
        cuda::mixed::argmax(gpu.handle(), out.view(), dlogits.view());
        std::vector<int32_t> ref(static_cast<size_t>(s.N));
        cpu::argmax(ref.data(), logits.data(), s.N, s.V);
        gpu.sync();
        EXPECT_EQ(out.ints(), ref) << "argmax" << dims({s.N, s.V});

        for (const int k : {1, 5, 32}) {
            if (k > s.V) continue;
            const std::string at = dims({s.N, s.V}) + " k=" + std::to_string(k);
            Dev entropy = poisoned(DType::f32, {s.N});
            cuda::mixed::topk_entropy(gpu.handle(), entropy.view(), dlogits.view(), k);
            std::vector<float> ref_h(static_cast<size_t>(s.N));
            cpu::topk_entropy(ref_h.data(), logits.data(), s.N, s.V, k);
            gpu.sync();
            expect_f32_close(entropy, ref_h, "topk_entropy" + at);
        }
    }
}

// ---- AdamW ---------------------------------------------------------------------------------

TEST(CudaBf16Kernels, AdamwWritesTheWorkingCopy) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(109);
    ops::AdamWSettings settings;
    settings.lr = 3e-3f;
    settings.weight_decay = 0.1f;
    settings.step = 7;
    settings.grad_scale = 0.5f;
    const std::vector<int64_t> sizes = small_mode() ? std::vector<int64_t>{5, 1029}
                                                    : std::vector<int64_t>{1, 3, 4, 1001, 4099, 1 << 20};
    for (int64_t n : sizes) {
        const std::string at = dims({n});
        std::vector<float> params = bf16_values(n, rng), grads = bf16_values(n, rng), m = bf16_values(n, rng, 0.1f);
        std::vector<float> v = bf16_values(n, rng, 0.01f);
        for (float& x : v) x = x * x;  // second moments are non-negative
        Dev dparams = upload(DType::f32, {n}, params), dgrads = upload(DType::f32, {n}, grads);
        Dev dm = upload(DType::f32, {n}, m), dv = upload(DType::f32, {n}, v), working = poisoned(DType::bf16, {n});
        cuda::mixed::adamw_update(gpu.handle(), dparams.view(), dgrads.view(), dm.view(), dv.view(), working.view(),
                                  settings);
        cpu::adamw_update(params.data(), grads.data(), m.data(), v.data(), n, settings);
        gpu.sync();
        expect_f32_close(dparams, params, "adamw params" + at);
        expect_f32_close(dm, m, "adamw m" + at);
        expect_f32_close(dv, v, "adamw v" + at);
        expect_bitwise(working, round_bf16(dparams.floats()), "adamw working copy = round(updated params)" + at);
    }
}

// ---- dtype checks (no device work: they throw first) -------------------------------------

TEST(CudaBf16Checks, WrongDtypesThrowNamingTheOpAndTensor) {
    float f = 0.0f;
    uint16_t h = 0;
    auto view = [](void* p, DType dtype) {
        Tensor t = make_tensor(p, dtype, DeviceKind::cuda, {1});
        return t;
    };
    const Tensor f32 = view(&f, DType::f32), bf = view(&h, DType::bf16);
    auto message = [](auto&& call) -> std::string {
        try {
            call();
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "no throw";
    };
    const std::string add = message([&] { cuda::mixed::add(nullptr, bf, bf, f32); });
    EXPECT_NE(add.find("add"), std::string::npos) << add;
    EXPECT_NE(add.find("b must be bf16"), std::string::npos) << add;
    const std::string mm = message([&] { cuda::mixed::matmul_forward(nullptr, bf, bf, f32, Tensor{}); });
    EXPECT_NE(mm.find("weight must be bf16"), std::string::npos) << mm;
    const std::string adam = message([&] { cuda::mixed::adamw_update(nullptr, f32, f32, f32, f32, f32, {}); });
    EXPECT_NE(adam.find("working must be bf16"), std::string::npos) << adam;
    const std::string norm = message([&] { cuda::mixed::rmsnorm_backward(nullptr, f32, f32, bf, bf, bf, f32); });
    EXPECT_NE(norm.find("din must be bf16"), std::string::npos) << norm;
}

}  // namespace
}  // namespace rpt

#endif  // RPT_WITH_CUDA
