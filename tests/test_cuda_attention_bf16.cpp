// The bf16 tensor-core attention (kernels/cuda/attention_bf16.cu) against the fp32 CPU
// twin run on the widened bf16 inputs (the bf16 emulation of the op: widening is exact,
// so the twin sees exactly the GPU's inputs) and against the fp32 CUDA kernel on the same
// widened inputs. Random bf16 inputs, outputs poisoned with NaN first (bf16 NaN on the
// device), shapes with odd T, head_dim 64 and 128 (and 32, 72 on the padded widths), GQA
// ratios 1, 2, 4, 6, with and without packed segments, and one misaligned view (the
// kernels' scalar-load path).
//
// Tolerances (tests/attention_bf16_tolerances.h; what bf16 storage allows, the products
// accumulate in fp32):
//   out        ||gpu - ref|| / (||ref|| + 4e-3 sqrt(n)) < 1e-2 and
//              max |gpu - ref| < 1e-2 * max |ref| + 4e-3:
//              out is rounded to bf16 (2^-9 relative) and P feeds P V as bf16;
//   lse        ||gpu - ref|| / ||ref|| < 1e-5 (fp32 statistics of fp32 scores);
//   dq, dk, dv max |gpu - ref| < 2e-2 * max |ref| + 1e-5 and
//              ||gpu - ref|| / (||ref|| + 1e-5 sqrt(n)) < 2e-2:
//              dS and P are rounded to bf16 before their products, the results once more.
// The same bounds hold against the fp32 CUDA kernel. A second backward must give the same
// bits (deterministic, atomic-free). Every test skips without a GPU; RPT_TEST_SMALL=1
// shrinks the shapes (compute-sanitizer).
#ifdef RPT_WITH_CUDA

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/attention_args.h"
#include "kernels/bf16.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cuda/cuda_mixed_ops.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device.h"
#include "tests/attention_bf16_tolerances.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

#define SKIP_WITHOUT_GPU() \
    if (::rpt::cuda_device_count() == 0) GTEST_SKIP() << "no GPU"

using namespace test::attention_bf16;  // kOutRel ... kGradAbs
constexpr uint16_t kBf16NaN = 0x7fc0;

struct Case {
    int64_t B, T, H, KVH, D;
    int64_t prompt = -1;     // packed rows: prompt length (segment 0), then sequences; -1: plain
    int64_t seq_len = 0;     // packed rows: every sequence's length (0: varied 1..37)
    size_t misalign = 0;     // elements by which every tensor view is shifted (0: aligned)
    std::string name() const {
        std::string s = "B=" + std::to_string(B) + " T=" + std::to_string(T) + " H=" + std::to_string(H) +
                        " KVH=" + std::to_string(KVH) + " D=" + std::to_string(D);
        if (prompt >= 0) s += " packed(prompt " + std::to_string(prompt) + ")";
        if (misalign) s += " misaligned";
        return s;
    }
};

// bf16 values on the host (bits and their exact widening) and on the device.
struct Bf16Tensor {
    std::vector<int64_t> shape;
    std::vector<uint16_t> bits;
    std::vector<float> wide;  // bf16_to_f32(bits)
    DeviceBuffer dev;
    size_t offset = 0;  // elements

    int64_t numel() const { return static_cast<int64_t>(bits.size()); }
    uint16_t* device_ptr() const { return dev.as<uint16_t>() + offset; }
    Tensor view() const {
        Tensor t;
        t.data = device_ptr();
        t.dtype = DType::bf16;
        t.device = DeviceKind::cuda;
        t.ndim = static_cast<int>(shape.size());
        for (size_t a = 0; a < shape.size(); ++a) t.shape[a] = shape[a];
        return t;
    }
    void upload() { copy_host_to_device(device_ptr(), bits.data(), bits.size() * sizeof(uint16_t)); }
    std::vector<float> download() const {
        std::vector<uint16_t> b(bits.size());
        copy_device_to_host(b.data(), device_ptr(), b.size() * sizeof(uint16_t));
        std::vector<float> f(b.size());
        for (size_t i = 0; i < b.size(); ++i) f[i] = bf16_to_f32(b[i]);
        return f;
    }
};

int64_t product(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

Bf16Tensor make_bf16(std::vector<int64_t> shape, size_t misalign, std::mt19937& rng, bool poison) {
    Bf16Tensor t;
    t.shape = std::move(shape);
    const int64_t n = product(t.shape);
    t.bits.resize(static_cast<size_t>(n));
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (uint16_t& b : t.bits) b = poison ? kBf16NaN : f32_to_bf16(u(rng));
    t.wide.resize(t.bits.size());
    for (size_t i = 0; i < t.bits.size(); ++i) t.wide[i] = bf16_to_f32(t.bits[i]);
    t.offset = misalign;
    t.dev = DeviceBuffer((t.bits.size() + misalign + 1) * sizeof(uint16_t), "bf16 test tensor");
    t.upload();
    return t;
}

// An fp32 tensor on the device (lse, and the fp32 CUDA kernel's operands).
struct F32Device {
    DeviceBuffer dev;
    size_t n = 0;
    explicit F32Device(const std::vector<float>& host) : dev((host.size() + 1) * sizeof(float), "f32 test tensor") {
        n = host.size();
        copy_host_to_device(dev.data(), host.data(), n * sizeof(float));
    }
    float* ptr() const { return dev.as<float>(); }
    std::vector<float> download() const {
        std::vector<float> out(n);
        copy_device_to_host(out.data(), dev.data(), n * sizeof(float));
        return out;
    }
};

double max_abs(const std::vector<float>& v) {
    double m = 0.0;
    for (float x : v) m = std::max(m, std::fabs(double(x)));
    return m;
}
double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double m = 0.0;
    for (size_t i = 0; i < a.size(); ++i) {
        const double d = std::fabs(double(a[i]) - double(b[i]));
        if (std::isnan(d)) return std::numeric_limits<double>::infinity();
        m = std::max(m, d);
    }
    return m;
}

void expect_bf16_close(const std::vector<float>& got, const std::vector<float>& ref, double rel, double max_rel,
                       double abs, const std::string& what) {
    ASSERT_EQ(got.size(), ref.size()) << what;
    const double r = rel_l2(got, ref, abs), m = max_abs_diff(got, ref), bound = max_rel * max_abs(ref) + abs;
    EXPECT_LT(r, rel) << what << ": relative L2 error";
    EXPECT_LE(m, bound) << what << ": max abs error (bound " << bound << ")";
}

std::vector<int32_t> packed_segments(const Case& c) {
    std::vector<int32_t> seg(size_t(c.B * c.T), 0);
    for (int64_t b = 0; b < c.B; ++b) {
        if (b == 1) continue;  // row 1 stays plain causal (all ids 0)
        int32_t id = 1;
        for (int64_t t = c.prompt, len = c.seq_len ? c.seq_len : 1; t < c.T;
             ++id, len = c.seq_len ? c.seq_len : len * 3 % 37 + 1)
            for (int64_t i = 0; i < len && t < c.T; ++i) seg[size_t(b * c.T + t++)] = id;
    }
    return seg;
}

// Runs the bf16 kernels and both references on one case and checks every output.
void check_case(const Case& c, uint32_t seed) {
    SCOPED_TRACE(c.name());
    std::mt19937 rng(seed);
    CudaStream stream;
    const std::vector<int64_t> qs{c.B, c.T, c.H, c.D}, ks{c.B, c.T, c.KVH, c.D};
    Bf16Tensor q = make_bf16(qs, c.misalign, rng, false), k = make_bf16(ks, c.misalign, rng, false),
               v = make_bf16(ks, c.misalign, rng, false), dout = make_bf16(qs, c.misalign, rng, false);
    Bf16Tensor out = make_bf16(qs, c.misalign, rng, true), dq = make_bf16(qs, c.misalign, rng, true),
               dk = make_bf16(ks, c.misalign, rng, true), dv = make_bf16(ks, c.misalign, rng, true);
    const size_t n_lse = size_t(c.B * c.H * c.T);
    F32Device lse(test::poisoned(n_lse));
    const Tensor lse_view = make_tensor(lse.ptr(), DType::f32, DeviceKind::cuda, {c.B, c.H, c.T});

    std::vector<int32_t> seg_host;
    DeviceBuffer seg_dev;
    Tensor seg_view;
    if (c.prompt >= 0) {
        seg_host = packed_segments(c);
        seg_dev = DeviceBuffer(seg_host.size() * sizeof(int32_t), "segments");
        copy_host_to_device(seg_dev.data(), seg_host.data(), seg_host.size() * sizeof(int32_t));
        seg_view = make_tensor(seg_dev.data(), DType::i32, DeviceKind::cuda, {c.B, c.T});
    }
    const int32_t* seg_cpu = seg_host.empty() ? nullptr : seg_host.data();
    const attn::Shape shape{c.B, c.T, c.H, c.KVH, c.D};

    // ---- forward: bf16 kernel, CPU twin on the widened inputs, fp32 CUDA kernel ----
    cuda::mixed::attention_forward(stream.handle(), out.view(), lse_view, q.view(), k.view(), v.view(), seg_view);
    stream.synchronize();
    const std::vector<float> out_gpu = out.download(), lse_gpu = lse.download();

    std::vector<float> out_ref = test::poisoned(q.wide.size()), lse_ref = test::poisoned(n_lse);
    cpu::attention_forward({out_ref.data(), lse_ref.data(), q.wide.data(), k.wide.data(), v.wide.data(), seg_cpu, shape});
    expect_bf16_close(out_gpu, out_ref, kOutRel, kOutMax, kOutAbs, "out vs CPU twin");
    EXPECT_LT(test::rel_error(lse_gpu, lse_ref), kLseRel) << "lse vs CPU twin";

    F32Device q32(q.wide), k32(k.wide), v32(v.wide), out32(test::poisoned(q.wide.size())), lse32(test::poisoned(n_lse));
    const int32_t* seg_gpu = seg_host.empty() ? nullptr : seg_dev.as<int32_t>();
    cuda::attention_forward(stream.handle(), {out32.ptr(), lse32.ptr(), q32.ptr(), k32.ptr(), v32.ptr(), seg_gpu, shape});
    stream.synchronize();
    expect_bf16_close(out_gpu, out32.download(), kOutRel, kOutMax, kOutAbs, "out vs fp32 CUDA");
    EXPECT_LT(test::rel_error(lse_gpu, lse32.download()), kLseRel) << "lse vs fp32 CUDA";

    // ---- backward: from the bf16 forward's out and lse, as in training ----
    cuda::mixed::attention_backward(stream.handle(), dq.view(), dk.view(), dv.view(), dout.view(), q.view(), k.view(),
                                    v.view(), out.view(), lse_view, seg_view);
    stream.synchronize();
    const std::vector<float> dq_gpu = dq.download(), dk_gpu = dk.download(), dv_gpu = dv.download();

    // The twin differentiates the function the GPU forward computed: its out is the GPU's
    // bf16 out (widened), its lse the GPU's lse.
    std::vector<float> dq_ref = test::poisoned(q.wide.size()), dk_ref = test::poisoned(k.wide.size()),
                       dv_ref = test::poisoned(v.wide.size());
    cpu::attention_backward({dq_ref.data(), dk_ref.data(), dv_ref.data(), dout.wide.data(), q.wide.data(),
                             k.wide.data(), v.wide.data(), out_gpu.data(), lse_gpu.data(), seg_cpu, shape});
    expect_bf16_close(dq_gpu, dq_ref, kGradRel, kGradMax, kGradAbs, "dq vs CPU twin");
    expect_bf16_close(dk_gpu, dk_ref, kGradRel, kGradMax, kGradAbs, "dk vs CPU twin");
    expect_bf16_close(dv_gpu, dv_ref, kGradRel, kGradMax, kGradAbs, "dv vs CPU twin");

    F32Device dout32(dout.wide), dq32(test::poisoned(q.wide.size())), dk32(test::poisoned(k.wide.size())),
        dv32(test::poisoned(v.wide.size()));
    cuda::attention_backward(stream.handle(), {dq32.ptr(), dk32.ptr(), dv32.ptr(), dout32.ptr(), q32.ptr(), k32.ptr(),
                                               v32.ptr(), out32.ptr(), lse32.ptr(), seg_gpu, shape});
    stream.synchronize();
    expect_bf16_close(dq_gpu, dq32.download(), kGradRel, kGradMax, kGradAbs, "dq vs fp32 CUDA");
    expect_bf16_close(dk_gpu, dk32.download(), kGradRel, kGradMax, kGradAbs, "dk vs fp32 CUDA");
    expect_bf16_close(dv_gpu, dv32.download(), kGradRel, kGradMax, kGradAbs, "dv vs fp32 CUDA");

    // ---- deterministic: the same bits again ----
    cuda::mixed::attention_backward(stream.handle(), dq.view(), dk.view(), dv.view(), dout.view(), q.view(), k.view(),
                                    v.view(), out.view(), lse_view, seg_view);
    stream.synchronize();
    EXPECT_TRUE(test::bitwise_equal(dq.download(), dq_gpu)) << "dq not deterministic";
    EXPECT_TRUE(test::bitwise_equal(dk.download(), dk_gpu)) << "dk not deterministic";
    EXPECT_TRUE(test::bitwise_equal(dv.download(), dv_gpu)) << "dv not deterministic";
}

TEST(CudaAttentionBf16, MatchesCpuTwinAndFp32Kernel) {
    SKIP_WITHOUT_GPU();
    const std::vector<Case> cases =
        test::small_mode()
            ? std::vector<Case>{{1, 5, 2, 1, 64}, {1, 70, 2, 2, 128}}
            : std::vector<Case>{{1, 1, 1, 1, 64},    {2, 17, 4, 2, 64},   {1, 100, 8, 2, 128}, {2, 257, 4, 4, 128},
                                {1, 130, 6, 3, 64},  {1, 65, 4, 2, 32},   {1, 40, 2, 2, 72},   {2, 300, 12, 2, 128},
                                {1, 129, 4, 1, 64}};
    uint32_t seed = 100;
    for (const Case& c : cases) check_case(c, seed++);
}

// GRPO's packed rows: a shared prompt (id 0), then sequences that see the prompt and
// themselves; row 1 of each batch stays plain causal. Long sequences make whole key tiles
// invisible to later query tiles (the skipped blocks), short ones straddle tile borders.
TEST(CudaAttentionBf16, PackedSegmentsMatchCpuTwin) {
    SKIP_WITHOUT_GPU();
    Case small{1, 90, 2, 1, 128};
    small.prompt = 1;
    Case varied{2, 150, 4, 2, 64};
    varied.prompt = 70;
    Case long_seqs{2, 400, 4, 1, 128};
    long_seqs.prompt = 64;
    long_seqs.seq_len = 90;
    Case ratio4{1, 257, 8, 2, 64};
    ratio4.prompt = 33;
    ratio4.seq_len = 70;
    const std::vector<Case> cases = test::small_mode() ? std::vector<Case>{small} : std::vector<Case>{small, varied, long_seqs, ratio4};
    uint32_t seed = 200;
    for (const Case& c : cases) check_case(c, seed++);
}

// Views that are not 16-byte aligned take the kernels' scalar loads.
TEST(CudaAttentionBf16, MisalignedViewsMatchCpuTwin) {
    SKIP_WITHOUT_GPU();
    Case c = test::small_mode() ? Case{1, 20, 2, 1, 64} : Case{1, 77, 4, 2, 64};
    c.misalign = 1;
    check_case(c, 300);
}

TEST(CudaAttentionBf16, RejectsOtherDtypes) {
    SKIP_WITHOUT_GPU();
    std::mt19937 rng(1);
    Bf16Tensor q = make_bf16({1, 4, 2, 64}, 0, rng, false), out = make_bf16({1, 4, 2, 64}, 0, rng, true);
    F32Device lse(test::poisoned(8));
    const Tensor f32_out = make_tensor(lse.ptr(), DType::f32, DeviceKind::cuda, {1, 4, 2, 1});
    const Tensor lse_view = make_tensor(lse.ptr(), DType::f32, DeviceKind::cuda, {1, 2, 4});
    EXPECT_THROW(cuda::mixed::attention_forward(nullptr, f32_out, lse_view, q.view(), q.view(), q.view(), {}),
                 std::invalid_argument);
    EXPECT_THROW(cuda::mixed::attention_forward(nullptr, out.view(), out.view(), q.view(), q.view(), q.view(), {}),
                 std::invalid_argument);
}

}  // namespace
}  // namespace rpt

#endif  // RPT_WITH_CUDA
