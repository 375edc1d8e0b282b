// CUDA kernels against their CPU twins: every op in kernels/ops.h, called through the op
// API on a CUDA OpContext and on the CPU, on random non-zero inputs in several shapes
// (odd sizes, tails that are not multiples of any tile), with fp32 tolerance
// ||gpu - cpu|| / ||cpu|| < 1e-5. Overwritten outputs are poisoned with NaN first, so an
// element a kernel forgets to write fails the test.
//
// Every test skips when no GPU is present. RPT_TEST_SMALL=1 shrinks the shapes (for
// compute-sanitizer). RPT_CUDA_TIMINGS=FILE appends one JSON line per timed GPU op.
#ifdef RPT_WITH_CUDA

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/device.h"
#include "kernels/ops.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

constexpr double kTolerance = 1e-5;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr int kTimedRepeats = 5;

using test::small_mode;

#define SKIP_WITHOUT_GPU() \
    if (::rpt::cuda_device_count() == 0) GTEST_SKIP() << "no GPU"

// A tensor mirrored on host and device.
struct Mirror {
    DType dtype = DType::f32;
    std::vector<int64_t> shape;
    std::vector<float> f;    // host values (f32)
    std::vector<int32_t> i;  // host values (i32)
    DeviceBuffer dev;

    int64_t numel() const {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        return n;
    }
    Tensor view(void* data, DeviceKind device) const {
        Tensor t;
        t.data = data;
        t.dtype = dtype;
        t.device = device;
        t.ndim = static_cast<int>(shape.size());
        for (size_t a = 0; a < shape.size(); ++a) t.shape[a] = shape[a];
        return t;
    }
    Tensor cpu() { return view(dtype == DType::f32 ? static_cast<void*>(f.data()) : i.data(), DeviceKind::cpu); }
    Tensor gpu() const { return view(dev.data(), DeviceKind::cuda); }
    void upload() {
        if (dtype == DType::f32) copy_host_to_device(dev.data(), f.data(), f.size() * sizeof(float));
        else copy_host_to_device(dev.data(), i.data(), i.size() * sizeof(int32_t));
    }
    std::vector<float> download_f32() const {
        std::vector<float> out(static_cast<size_t>(numel()));
        copy_device_to_host(out.data(), dev.data(), out.size() * sizeof(float));
        return out;
    }
    std::vector<int32_t> download_i32() const {
        std::vector<int32_t> out(static_cast<size_t>(numel()));
        copy_device_to_host(out.data(), dev.data(), out.size() * sizeof(int32_t));
        return out;
    }
};

// Uniform in [-scale, scale], never (close to) zero.
std::vector<float> random_values(int64_t n, std::mt19937& rng, float scale = 1.0f) {
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) {
        float y = dist(rng);
        if (std::fabs(y) < 1e-3f) y = y < 0 ? -0.5f : 0.5f;
        x = y * scale;
    }
    return v;
}

Mirror f32_tensor(std::vector<int64_t> shape, std::vector<float> values) {
    Mirror m;
    m.dtype = DType::f32;
    m.shape = std::move(shape);
    m.f = std::move(values);
    m.dev = DeviceBuffer(m.f.size() * sizeof(float) + 1, "test tensor");
    m.upload();
    return m;
}

Mirror random_f32(std::vector<int64_t> shape, std::mt19937& rng, float scale = 1.0f) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return f32_tensor(std::move(shape), random_values(n, rng, scale));
}

// NaN on both host and device: outputs the op must overwrite.
Mirror poisoned_f32(std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return f32_tensor(std::move(shape), std::vector<float>(static_cast<size_t>(n), kNaN));
}

Mirror i32_tensor(std::vector<int64_t> shape, std::vector<int32_t> values) {
    Mirror m;
    m.dtype = DType::i32;
    m.shape = std::move(shape);
    m.i = std::move(values);
    m.dev = DeviceBuffer(m.i.size() * sizeof(int32_t) + 1, "test tensor");
    m.upload();
    return m;
}

Mirror random_i32(std::vector<int64_t> shape, std::mt19937& rng, int32_t lo, int32_t hi) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::uniform_int_distribution<int32_t> dist(lo, hi);
    std::vector<int32_t> v(static_cast<size_t>(n));
    for (int32_t& x : v) x = dist(rng);
    return i32_tensor(std::move(shape), std::move(v));
}

// The GPU result of `m` matches the CPU reference held in m.f.
void expect_close(const Mirror& m, const std::string& what, double tolerance = kTolerance) {
    const std::vector<float> got = m.download_f32();
    ASSERT_EQ(got.size(), m.f.size());
    const double err = test::rel_error(got, m.f);
    EXPECT_LT(err, tolerance) << what;
}

struct Gpu {
    CudaStream stream;
    OpContext ctx() const { return OpContext{DeviceKind::cuda, stream.handle()}; }
    void sync() const { stream.synchronize(); }
};

const OpContext kCpu{};

// Times `run` (already warmed up by the correctness call) on the stream and appends a JSON
// line {"op", "shape", "ms", "work", "unit"} to $RPT_CUDA_TIMINGS when set, where work is
// the bytes the op must move (unit "B") or the FLOPs it must do (unit "FLOP").
void record_timing(const Gpu& gpu, const std::string& op, const std::string& shape, double work, const char* unit,
                   const std::function<void()>& run) {
    const char* path = std::getenv("RPT_CUDA_TIMINGS");
    if (!path || !*path || small_mode()) return;
    cudaEvent_t start, stop;
    RPT_CUDA_CHECK(cudaEventCreate(&start));
    RPT_CUDA_CHECK(cudaEventCreate(&stop));
    RPT_CUDA_CHECK(cudaEventRecord(start, gpu.stream.get()));
    for (int r = 0; r < kTimedRepeats; ++r) run();
    RPT_CUDA_CHECK(cudaEventRecord(stop, gpu.stream.get()));
    RPT_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.0f;
    RPT_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    RPT_CUDA_CHECK(cudaEventDestroy(start));
    RPT_CUDA_CHECK(cudaEventDestroy(stop));
    if (FILE* f = std::fopen(path, "a")) {
        std::fprintf(f, "{\"op\": \"%s\", \"shape\": \"%s\", \"ms\": %.6f, \"work\": %.0f, \"unit\": \"%s\"}\n",
                     op.c_str(), shape.c_str(), ms / kTimedRepeats, work, unit);
        std::fclose(f);
    }
}

std::string shape_name(std::initializer_list<int64_t> dims) {
    std::string s;
    for (int64_t d : dims) s += (s.empty() ? "" : "x") + std::to_string(d);
    return s;
}

// ---- device layer ----------------------------------------------------------------------

TEST(CudaDevice, OutOfMemoryNamesTheAllocation) {
    SKIP_WITHOUT_GPU();
    constexpr size_t kAbsurdBytes = size_t(1) << 52;  // 4 PiB
    try {
        DeviceBuffer buffer(kAbsurdBytes, "the test's absurd buffer");
        FAIL() << "allocation of 4 PiB succeeded";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("the test's absurd buffer"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(std::to_string(kAbsurdBytes)), std::string::npos) << e.what();
    }
    // The failed allocation must not poison later calls.
    DeviceBuffer ok(1024, "after oom");
    EXPECT_NE(ok.data(), nullptr);
}

// ---- elementwise -----------------------------------------------------------------------

TEST(CudaElementwise, MatchesCpu) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(1);
    const std::vector<int64_t> sizes = small_mode() ? std::vector<int64_t>{1, 5, 1027}
                                                    : std::vector<int64_t>{1, 3, 4, 1000, 4097, 1 << 22};
    for (int64_t n : sizes) {
        const std::string at = " n=" + std::to_string(n);
        Mirror a = random_f32({n}, rng), b = random_f32({n}, rng);
        Mirror out = poisoned_f32({n});
        ops::add(kCpu, out.cpu(), a.cpu(), b.cpu());
        ops::add(gpu.ctx(), out.gpu(), a.gpu(), b.gpu());
        gpu.sync();
        expect_close(out, "add" + at);

        Mirror dst = random_f32({n}, rng);
        ops::accumulate(kCpu, dst.cpu(), a.cpu());
        ops::accumulate(gpu.ctx(), dst.gpu(), a.gpu());
        gpu.sync();
        expect_close(dst, "accumulate" + at);

        ops::scale(kCpu, dst.cpu(), -1.75f);
        ops::scale(gpu.ctx(), dst.gpu(), -1.75f);
        gpu.sync();
        expect_close(dst, "scale" + at);

        Mirror filled = poisoned_f32({n});
        ops::fill(kCpu, filled.cpu(), 0.25f);
        ops::fill(gpu.ctx(), filled.gpu(), 0.25f);
        gpu.sync();
        expect_close(filled, "fill" + at);

        Mirror copied = poisoned_f32({n});
        ops::copy(kCpu, copied.cpu(), b.cpu());
        ops::copy(gpu.ctx(), copied.gpu(), b.gpu());
        gpu.sync();
        expect_close(copied, "copy" + at);

        if (n == sizes.back())
            record_timing(gpu, "add", shape_name({n}), 12.0 * n, "B",
                          [&] { ops::add(gpu.ctx(), out.gpu(), a.gpu(), b.gpu()); });
    }
}

TEST(CudaElementwise, MisalignedViewsUseTheScalarPath) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(2);
    const int64_t n = 1001;
    Mirror a = random_f32({n + 1}, rng), b = random_f32({n + 1}, rng), out = poisoned_f32({n + 1});
    auto offset_view = [](const Mirror& m, int64_t len) {
        Tensor t = m.gpu();
        t.data = static_cast<float*>(t.data) + 1;
        t.shape[0] = len;
        return t;
    };
    ops::add(gpu.ctx(), offset_view(out, n), offset_view(a, n), offset_view(b, n));
    gpu.sync();
    const std::vector<float> got = out.download_f32();
    for (int64_t k = 0; k < n; ++k) ASSERT_EQ(got[k + 1], a.f[k + 1] + b.f[k + 1]) << k;
    EXPECT_TRUE(std::isnan(got[0]));  // the element before the view is untouched
}

// ---- embedding ----------------------------------------------------------------------------

TEST(CudaEmbedding, ForwardBackwardMatchCpu) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(3);
    struct Shape { int64_t N, V, C; };
    const std::vector<Shape> shapes = small_mode() ? std::vector<Shape>{{7, 11, 5}, {40, 9, 12}}
                                                   : std::vector<Shape>{{1, 1, 1}, {7, 11, 5}, {64, 50, 32},
                                                                        {4096, 1000, 256}, {8192, 64, 768}};
    for (const Shape& s : shapes) {
        const std::string at = " N=" + std::to_string(s.N) + " V=" + std::to_string(s.V) + " C=" + std::to_string(s.C);
        Mirror tokens = random_i32({s.N}, rng, 0, static_cast<int32_t>(s.V - 1));  // repeats guaranteed
        Mirror wte = random_f32({s.V, s.C}, rng);
        Mirror out = poisoned_f32({s.N, s.C});
        ops::embedding_forward(kCpu, out.cpu(), tokens.cpu(), wte.cpu());
        ops::embedding_forward(gpu.ctx(), out.gpu(), tokens.gpu(), wte.gpu());
        gpu.sync();
        expect_close(out, "embedding_forward" + at);

        Mirror dout = random_f32({s.N, s.C}, rng);
        Mirror dwte = random_f32({s.V, s.C}, rng);  // backward accumulates
        ops::embedding_backward(kCpu, dwte.cpu(), dout.cpu(), tokens.cpu());
        ops::embedding_backward(gpu.ctx(), dwte.gpu(), dout.gpu(), tokens.gpu());
        gpu.sync();
        expect_close(dwte, "embedding_backward" + at);

        // Deterministic: a second run from the same start is bitwise identical.
        Mirror again = f32_tensor({s.V, s.C}, std::vector<float>(static_cast<size_t>(s.V * s.C), 0.0f));
        Mirror again2 = f32_tensor({s.V, s.C}, std::vector<float>(static_cast<size_t>(s.V * s.C), 0.0f));
        ops::embedding_backward(gpu.ctx(), again.gpu(), dout.gpu(), tokens.gpu());
        ops::embedding_backward(gpu.ctx(), again2.gpu(), dout.gpu(), tokens.gpu());
        gpu.sync();
        EXPECT_EQ(again.download_f32(), again2.download_f32()) << "embedding_backward not deterministic" << at;

        if (&s == &shapes.back())
            record_timing(gpu, "embedding_backward", shape_name({s.N, s.V, s.C}), 8.0 * s.N * s.C, "B",
                          [&] { ops::embedding_backward(gpu.ctx(), again.gpu(), dout.gpu(), tokens.gpu()); });
    }
}

// ---- RMSNorm -----------------------------------------------------------------------------

TEST(CudaRmsnorm, ForwardBackwardMatchCpu) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(4);
    const float eps = 1e-6f;
    struct Shape { int64_t N, C; };
    const std::vector<Shape> shapes = small_mode() ? std::vector<Shape>{{3, 7}, {9, 40}}
                                                   : std::vector<Shape>{{1, 1}, {3, 7}, {33, 64}, {1000, 768},
                                                                        {4100, 1536}};
    for (const Shape& s : shapes) {
        const std::string at = " N=" + std::to_string(s.N) + " C=" + std::to_string(s.C);
        Mirror in = random_f32({s.N, s.C}, rng), weight = random_f32({s.C}, rng);
        Mirror out = poisoned_f32({s.N, s.C}), rstd = poisoned_f32({s.N});
        ops::rmsnorm_forward(kCpu, out.cpu(), rstd.cpu(), in.cpu(), weight.cpu(), eps);
        ops::rmsnorm_forward(gpu.ctx(), out.gpu(), rstd.gpu(), in.gpu(), weight.gpu(), eps);
        gpu.sync();
        expect_close(out, "rmsnorm_forward out" + at);
        expect_close(rstd, "rmsnorm_forward rstd" + at);

        Mirror dout = random_f32({s.N, s.C}, rng);
        Mirror din = random_f32({s.N, s.C}, rng), dweight = random_f32({s.C}, rng);  // accumulated
        ops::rmsnorm_backward(kCpu, din.cpu(), dweight.cpu(), dout.cpu(), in.cpu(), weight.cpu(), rstd.cpu());
        ops::rmsnorm_backward(gpu.ctx(), din.gpu(), dweight.gpu(), dout.gpu(), in.gpu(), weight.gpu(), rstd.gpu());
        gpu.sync();
        expect_close(din, "rmsnorm_backward din" + at);
        expect_close(dweight, "rmsnorm_backward dweight" + at);

        if (&s == &shapes.back()) {
            record_timing(gpu, "rmsnorm_forward", shape_name({s.N, s.C}), 8.0 * s.N * s.C, "B", [&] {
                ops::rmsnorm_forward(gpu.ctx(), out.gpu(), rstd.gpu(), in.gpu(), weight.gpu(), eps);
            });
            record_timing(gpu, "rmsnorm_backward", shape_name({s.N, s.C}), 16.0 * s.N * s.C, "B", [&] {
                ops::rmsnorm_backward(gpu.ctx(), din.gpu(), dweight.gpu(), dout.gpu(), in.gpu(), weight.gpu(),
                                      rstd.gpu());
            });
        }
    }
}

// ---- matmul ------------------------------------------------------------------------------

TEST(CudaMatmul, ForwardBackwardMatchCpu) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(5);
    struct Shape { int64_t N, IC, OC; };
    const std::vector<Shape> shapes = small_mode() ? std::vector<Shape>{{5, 7, 3}, {33, 16, 20}}
                                                   : std::vector<Shape>{{1, 1, 1}, {7, 13, 5}, {64, 128, 96},
                                                                        {513, 300, 257}, {2048, 768, 2304}};
    for (const Shape& s : shapes) {
        for (const bool with_bias : {true, false}) {
            const std::string at = " N=" + std::to_string(s.N) + " IC=" + std::to_string(s.IC) +
                                   " OC=" + std::to_string(s.OC) + (with_bias ? " bias" : " no bias");
            Mirror in = random_f32({s.N, s.IC}, rng), weight = random_f32({s.OC, s.IC}, rng);
            Mirror bias = random_f32({s.OC}, rng);
            Mirror out = poisoned_f32({s.N, s.OC});
            ops::matmul_forward(kCpu, out.cpu(), in.cpu(), weight.cpu(), with_bias ? bias.cpu() : Tensor{});
            ops::matmul_forward(gpu.ctx(), out.gpu(), in.gpu(), weight.gpu(), with_bias ? bias.gpu() : Tensor{});
            gpu.sync();
            expect_close(out, "matmul_forward" + at);

            Mirror dout = random_f32({s.N, s.OC}, rng);
            Mirror din = random_f32({s.N, s.IC}, rng), dweight = random_f32({s.OC, s.IC}, rng);
            Mirror dbias = random_f32({s.OC}, rng);  // all accumulated
            ops::matmul_backward(kCpu, with_bias ? din.cpu() : Tensor{}, dweight.cpu(),
                                 with_bias ? dbias.cpu() : Tensor{}, dout.cpu(), in.cpu(), weight.cpu());
            ops::matmul_backward(gpu.ctx(), with_bias ? din.gpu() : Tensor{}, dweight.gpu(),
                                 with_bias ? dbias.gpu() : Tensor{}, dout.gpu(), in.gpu(), weight.gpu());
            gpu.sync();
            expect_close(din, "matmul_backward din" + at);
            expect_close(dweight, "matmul_backward dweight" + at);
            expect_close(dbias, "matmul_backward dbias" + at);

            if (&s == &shapes.back() && with_bias) {
                const double flops = 2.0 * s.N * s.IC * s.OC;
                record_timing(gpu, "matmul_forward", shape_name({s.N, s.IC, s.OC}), flops, "FLOP", [&] {
                    ops::matmul_forward(gpu.ctx(), out.gpu(), in.gpu(), weight.gpu(), bias.gpu());
                });
            }
        }
    }
}

// ---- RoPE --------------------------------------------------------------------------------

TEST(CudaRope, ForwardBackwardMatchCpu) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(6);
    const float theta = 10000.0f;
    struct Shape { int64_t N, heads, D; };
    const std::vector<Shape> shapes = small_mode() ? std::vector<Shape>{{5, 3, 8}}
                                                   : std::vector<Shape>{{1, 1, 2}, {5, 3, 8}, {37, 2, 6},
                                                                        {512, 12, 128}};
    for (const Shape& s : shapes) {
        const std::string at = " N=" + std::to_string(s.N) + " heads=" + std::to_string(s.heads) +
                               " D=" + std::to_string(s.D);
        // Long positions too: both backends compute the angle in double.
        Mirror positions = random_i32({s.N}, rng, 0, 32767);
        Mirror x = random_f32({s.N, s.heads, s.D}, rng);
        ops::rope_forward(kCpu, x.cpu(), positions.cpu(), theta);
        ops::rope_forward(gpu.ctx(), x.gpu(), positions.gpu(), theta);
        gpu.sync();
        expect_close(x, "rope_forward" + at);
        ops::rope_backward(kCpu, x.cpu(), positions.cpu(), theta);
        ops::rope_backward(gpu.ctx(), x.gpu(), positions.gpu(), theta);
        gpu.sync();
        expect_close(x, "rope_backward" + at);
    }
}

// ---- attention ---------------------------------------------------------------------------

TEST(CudaAttention, ForwardBackwardMatchCpu) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(7);
    struct Shape { int64_t B, T, H, KVH, D; };
    const std::vector<Shape> shapes =
        small_mode() ? std::vector<Shape>{{1, 5, 2, 1, 8}, {1, 70, 2, 2, 64}}
                     : std::vector<Shape>{{1, 1, 1, 1, 8},   {2, 17, 4, 2, 16},  {1, 100, 6, 2, 64},
                                          {2, 130, 4, 1, 128}, {1, 65, 3, 3, 80}, {1, 33, 2, 1, 5},
                                          {1, 257, 4, 4, 32}, {2, 300, 12, 2, 128}};
    for (const Shape& s : shapes) {
        const std::string at = " B=" + std::to_string(s.B) + " T=" + std::to_string(s.T) + " H=" +
                               std::to_string(s.H) + " KVH=" + std::to_string(s.KVH) + " D=" + std::to_string(s.D);
        Mirror q = random_f32({s.B, s.T, s.H, s.D}, rng), k = random_f32({s.B, s.T, s.KVH, s.D}, rng);
        Mirror v = random_f32({s.B, s.T, s.KVH, s.D}, rng);
        Mirror out = poisoned_f32({s.B, s.T, s.H, s.D}), lse = poisoned_f32({s.B, s.H, s.T});
        ops::attention_forward(kCpu, out.cpu(), lse.cpu(), q.cpu(), k.cpu(), v.cpu());
        ops::attention_forward(gpu.ctx(), out.gpu(), lse.gpu(), q.gpu(), k.gpu(), v.gpu());
        gpu.sync();
        expect_close(out, "attention_forward out" + at);
        expect_close(lse, "attention_forward lse" + at);

        Mirror dout = random_f32({s.B, s.T, s.H, s.D}, rng);
        Mirror dq = poisoned_f32({s.B, s.T, s.H, s.D}), dk = poisoned_f32({s.B, s.T, s.KVH, s.D});
        Mirror dv = poisoned_f32({s.B, s.T, s.KVH, s.D});
        ops::attention_backward(kCpu, dq.cpu(), dk.cpu(), dv.cpu(), dout.cpu(), q.cpu(), k.cpu(), v.cpu(), out.cpu(),
                                lse.cpu());
        // The GPU backward reads the GPU forward's out/lse, as in training.
        ops::attention_backward(gpu.ctx(), dq.gpu(), dk.gpu(), dv.gpu(), dout.gpu(), q.gpu(), k.gpu(), v.gpu(),
                                out.gpu(), lse.gpu());
        gpu.sync();
        expect_close(dq, "attention_backward dq" + at);
        expect_close(dk, "attention_backward dk" + at);
        expect_close(dv, "attention_backward dv" + at);

        // Deterministic: a second backward is bitwise identical.
        const std::vector<float> dk_first = dk.download_f32();
        ops::attention_backward(gpu.ctx(), dq.gpu(), dk.gpu(), dv.gpu(), dout.gpu(), q.gpu(), k.gpu(), v.gpu(),
                                out.gpu(), lse.gpu());
        gpu.sync();
        EXPECT_EQ(dk.download_f32(), dk_first) << "attention_backward not deterministic" << at;

        if (&s == &shapes.back()) {
            // Causal attention FLOPs: 2 matmuls of (T x T x D) halved by the mask, per head.
            const double flops = 2.0 * 2.0 * s.B * s.H * s.T * s.T * s.D / 2.0;
            const std::string name = shape_name({s.B, s.T, s.H, s.KVH, s.D});
            record_timing(gpu, "attention_forward", name, flops, "FLOP", [&] {
                ops::attention_forward(gpu.ctx(), out.gpu(), lse.gpu(), q.gpu(), k.gpu(), v.gpu());
            });
            record_timing(gpu, "attention_backward", name, 2.5 * flops, "FLOP", [&] {
                ops::attention_backward(gpu.ctx(), dq.gpu(), dk.gpu(), dv.gpu(), dout.gpu(), q.gpu(), k.gpu(),
                                        v.gpu(), out.gpu(), lse.gpu());
            });
        }
    }
}

// Packed rows (GRPO's shared-prompt update): a prompt then sequences that do not see each
// other, straddling the 64-query and 32-key tiles; row 1 stays plain causal.
TEST(CudaAttention, PackedSegmentsMatchCpu) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(17);
    struct Shape { int64_t B, T, H, KVH, D, prompt; };
    for (const Shape& s : {Shape{2, 150, 4, 2, 64, 70}, Shape{1, 90, 2, 1, 128, 1}}) {
        const std::string at = " T=" + std::to_string(s.T) + " D=" + std::to_string(s.D);
        std::vector<int32_t> seg(size_t(s.B * s.T), 0);
        int32_t id = 1;
        for (int64_t t = s.prompt, len = 1; t < s.T; ++id, len = len * 3 % 37 + 1)
            for (int64_t i = 0; i < len && t < s.T; ++i) seg[size_t(t++)] = id;
        Mirror segments = i32_tensor({s.B, s.T}, seg);
        Mirror q = random_f32({s.B, s.T, s.H, s.D}, rng), k = random_f32({s.B, s.T, s.KVH, s.D}, rng);
        Mirror v = random_f32({s.B, s.T, s.KVH, s.D}, rng), dout = random_f32({s.B, s.T, s.H, s.D}, rng);
        Mirror out = poisoned_f32({s.B, s.T, s.H, s.D}), lse = poisoned_f32({s.B, s.H, s.T});
        ops::attention_forward(kCpu, out.cpu(), lse.cpu(), q.cpu(), k.cpu(), v.cpu(), segments.cpu());
        ops::attention_forward(gpu.ctx(), out.gpu(), lse.gpu(), q.gpu(), k.gpu(), v.gpu(), segments.gpu());
        gpu.sync();
        expect_close(out, "packed attention_forward out" + at);
        expect_close(lse, "packed attention_forward lse" + at);
        Mirror dq = poisoned_f32({s.B, s.T, s.H, s.D}), dk = poisoned_f32({s.B, s.T, s.KVH, s.D});
        Mirror dv = poisoned_f32({s.B, s.T, s.KVH, s.D});
        ops::attention_backward(kCpu, dq.cpu(), dk.cpu(), dv.cpu(), dout.cpu(), q.cpu(), k.cpu(), v.cpu(), out.cpu(),
                                lse.cpu(), segments.cpu());
        ops::attention_backward(gpu.ctx(), dq.gpu(), dk.gpu(), dv.gpu(), dout.gpu(), q.gpu(), k.gpu(), v.gpu(),
                                out.gpu(), lse.gpu(), segments.gpu());
        gpu.sync();
        expect_close(dq, "packed attention_backward dq" + at);
        expect_close(dk, "packed attention_backward dk" + at);
        expect_close(dv, "packed attention_backward dv" + at);
    }
}

// ---- SwiGLU ------------------------------------------------------------------------------

TEST(CudaSwiglu, ForwardBackwardMatchCpu) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(8);
    const std::vector<int64_t> sizes = small_mode() ? std::vector<int64_t>{7, 1030}
                                                    : std::vector<int64_t>{1, 7, 1030, 4096 * 2048 + 3};
    for (int64_t n : sizes) {
        const std::string at = " n=" + std::to_string(n);
        Mirror gate = random_f32({n}, rng, 4.0f), up = random_f32({n}, rng), out = poisoned_f32({n});
        ops::swiglu_forward(kCpu, out.cpu(), gate.cpu(), up.cpu());
        ops::swiglu_forward(gpu.ctx(), out.gpu(), gate.gpu(), up.gpu());
        gpu.sync();
        expect_close(out, "swiglu_forward" + at);

        Mirror dout = random_f32({n}, rng), dgate = poisoned_f32({n}), dup = poisoned_f32({n});
        ops::swiglu_backward(kCpu, dgate.cpu(), dup.cpu(), dout.cpu(), gate.cpu(), up.cpu());
        ops::swiglu_backward(gpu.ctx(), dgate.gpu(), dup.gpu(), dout.gpu(), gate.gpu(), up.gpu());
        gpu.sync();
        expect_close(dgate, "swiglu_backward dgate" + at);
        expect_close(dup, "swiglu_backward dup" + at);

        if (n == sizes.back())
            record_timing(gpu, "swiglu_backward", shape_name({n}), 20.0 * n, "B", [&] {
                ops::swiglu_backward(gpu.ctx(), dgate.gpu(), dup.gpu(), dout.gpu(), gate.gpu(), up.gpu());
            });
    }
}

// ---- log-softmax, top-k entropy, argmax --------------------------------------------------

TEST(CudaLogsoftmax, ForwardBackwardMatchCpu) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(9);
    const float inv_temperature = 1.0f / 0.8f;
    struct Shape { int64_t N, V; };
    const std::vector<Shape> shapes = small_mode() ? std::vector<Shape>{{3, 7}, {4, 1001}}
                                                   : std::vector<Shape>{{1, 1}, {3, 7}, {17, 1000}, {8, 50001},
                                                                        {64, 151936}};
    for (const Shape& s : shapes) {
        for (const bool with_entropy : {true, false}) {
            const std::string at = " N=" + std::to_string(s.N) + " V=" + std::to_string(s.V);
            Mirror logits = random_f32({s.N, s.V}, rng, 8.0f);
            Mirror targets = random_i32({s.N}, rng, 0, static_cast<int32_t>(s.V - 1));
            if (s.N > 1) {  // one ignored row
                targets.i[1] = -1;
                targets.upload();
            }
            Mirror logprob = poisoned_f32({s.N}), entropy = poisoned_f32({s.N}), lse = poisoned_f32({s.N});
            ops::logsoftmax_forward(kCpu, logprob.cpu(), with_entropy ? entropy.cpu() : Tensor{}, lse.cpu(),
                                    logits.cpu(), targets.cpu(), inv_temperature);
            ops::logsoftmax_forward(gpu.ctx(), logprob.gpu(), with_entropy ? entropy.gpu() : Tensor{}, lse.gpu(),
                                    logits.gpu(), targets.gpu(), inv_temperature);
            gpu.sync();
            expect_close(logprob, "logsoftmax_forward logprob" + at);
            expect_close(lse, "logsoftmax_forward lse" + at);
            if (with_entropy) expect_close(entropy, "logsoftmax_forward entropy" + at);

            Mirror dlogprob = random_f32({s.N}, rng);
            if (s.N > 2) {  // one row without gradient
                dlogprob.f[2] = 0.0f;
                dlogprob.upload();
            }
            ops::logsoftmax_backward(kCpu, logits.cpu(), dlogprob.cpu(), lse.cpu(), targets.cpu(), inv_temperature);
            ops::logsoftmax_backward(gpu.ctx(), logits.gpu(), dlogprob.gpu(), lse.gpu(), targets.gpu(),
                                     inv_temperature);
            gpu.sync();
            expect_close(logits, "logsoftmax_backward" + at);

            if (&s == &shapes.back() && with_entropy)
                record_timing(gpu, "logsoftmax_forward", shape_name({s.N, s.V}), 4.0 * s.N * s.V, "B", [&] {
                    ops::logsoftmax_forward(gpu.ctx(), logprob.gpu(), entropy.gpu(), lse.gpu(), logits.gpu(),
                                            targets.gpu(), inv_temperature);
                });
        }
    }
}

TEST(CudaTopkEntropy, MatchesCpu) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(10);
    struct Shape { int64_t N, V; int k; };
    const std::vector<Shape> shapes = small_mode() ? std::vector<Shape>{{3, 40, 16}, {2, 16, 16}}
                                                   : std::vector<Shape>{{5, 40, 16}, {7, 1000, 1}, {4, 16, 16},
                                                                        {3, 50000, 32}, {256, 151936, 16}};
    for (const Shape& s : shapes) {
        const std::string at = " N=" + std::to_string(s.N) + " V=" + std::to_string(s.V) + " k=" + std::to_string(s.k);
        Mirror logits = random_f32({s.N, s.V}, rng, 6.0f);
        Mirror entropy = poisoned_f32({s.N});
        ops::topk_entropy(kCpu, entropy.cpu(), logits.cpu(), s.k);
        ops::topk_entropy(gpu.ctx(), entropy.gpu(), logits.gpu(), s.k);
        gpu.sync();
        if (s.k == 1) {  // entropy of one value is exactly 0: compare absolutely
            for (float e : entropy.download_f32()) EXPECT_LT(std::fabs(e), 1e-6) << at;
        } else {
            expect_close(entropy, "topk_entropy" + at);
        }
        if (&s == &shapes.back())
            record_timing(gpu, "topk_entropy", shape_name({s.N, s.V, s.k}), 4.0 * s.N * s.V, "B",
                          [&] { ops::topk_entropy(gpu.ctx(), entropy.gpu(), logits.gpu(), s.k); });
    }
}

TEST(CudaArgmax, MatchesCpuIncludingTies) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(11);
    struct Shape { int64_t N, V; };
    const std::vector<Shape> shapes = small_mode() ? std::vector<Shape>{{3, 300}}
                                                   : std::vector<Shape>{{1, 1}, {3, 300}, {9, 50001}, {32, 151936}};
    for (const Shape& s : shapes) {
        std::vector<float> values = random_values(s.N * s.V, rng);
        for (float& x : values) x = std::round(x * 8.0f);  // few distinct values: many ties
        Mirror logits = f32_tensor({s.N, s.V}, values);
        Mirror out = i32_tensor({s.N}, std::vector<int32_t>(static_cast<size_t>(s.N), -7));
        ops::argmax(kCpu, out.cpu(), logits.cpu());
        ops::argmax(gpu.ctx(), out.gpu(), logits.gpu());
        gpu.sync();
        EXPECT_EQ(out.download_i32(), out.i) << "argmax N=" << s.N << " V=" << s.V;
    }
}

// ---- optimizer ---------------------------------------------------------------------------

TEST(CudaAdamw, MatchesCpu) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(12);
    ops::AdamWSettings settings;
    settings.lr = 3e-3f;
    settings.weight_decay = 0.1f;
    settings.step = 3;
    settings.grad_scale = 0.5f;
    const std::vector<int64_t> sizes = small_mode() ? std::vector<int64_t>{5, 1003}
                                                    : std::vector<int64_t>{1, 5, 1003, 1 << 22};
    for (int64_t n : sizes) {
        const std::string at = " n=" + std::to_string(n);
        Mirror params = random_f32({n}, rng), grads = random_f32({n}, rng);
        Mirror m = random_f32({n}, rng, 0.1f);
        std::vector<float> v_values = random_values(n, rng, 0.01f);
        for (float& x : v_values) x = std::fabs(x);  // second moments are non-negative
        Mirror v = f32_tensor({n}, v_values);
        ops::adamw_update(kCpu, params.cpu(), grads.cpu(), m.cpu(), v.cpu(), settings);
        ops::adamw_update(gpu.ctx(), params.gpu(), grads.gpu(), m.gpu(), v.gpu(), settings);
        gpu.sync();
        expect_close(params, "adamw params" + at);
        expect_close(m, "adamw m" + at);
        expect_close(v, "adamw v" + at);
        if (n == sizes.back())
            record_timing(gpu, "adamw_update", shape_name({n}), 28.0 * n, "B", [&] {
                ops::adamw_update(gpu.ctx(), params.gpu(), grads.gpu(), m.gpu(), v.gpu(), settings);
            });
    }
}

TEST(CudaSumSquares, MatchesCpuAndIsDeterministic) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(13);
    const std::vector<int64_t> sizes = small_mode() ? std::vector<int64_t>{7, 3001}
                                                    : std::vector<int64_t>{1, 7, 1000003, 1 << 24};
    for (int64_t n : sizes) {
        Mirror x = random_f32({n}, rng);
        const double cpu = ops::sum_squares(kCpu, x.cpu());
        const double first = ops::sum_squares(gpu.ctx(), x.gpu());
        const double second = ops::sum_squares(gpu.ctx(), x.gpu());
        EXPECT_LT(std::fabs(first - cpu) / cpu, 1e-10) << "n=" << n;
        EXPECT_EQ(first, second) << "sum_squares not deterministic, n=" << n;
        if (n == sizes.back())
            record_timing(gpu, "sum_squares", shape_name({n}), 4.0 * n, "B",
                          [&] { (void)ops::sum_squares(gpu.ctx(), x.gpu()); });
    }
}

// The device-side sum behind the training loss: against the CPU twin (the same fixed
// order, so within the final f32 rounding), deterministic, no host sync; n = 0 gives 0.
TEST(CudaSumInto, MatchesCpuAndIsDeterministic) {
    SKIP_WITHOUT_GPU();
    Gpu gpu;
    std::mt19937 rng(17);
    for (int64_t n : {int64_t(0), int64_t(1), int64_t(7), int64_t(3001), int64_t(1000003)}) {
        Mirror x = random_f32({std::max<int64_t>(n, 1)}, rng);
        x.shape = {n};
        Mirror out = poisoned_f32({1});
        ops::sum_into(kCpu, out.cpu(), x.cpu());
        Mirror again = poisoned_f32({1});
        ops::sum_into(gpu.ctx(), out.gpu(), x.gpu());
        ops::sum_into(gpu.ctx(), again.gpu(), x.gpu());
        gpu.sync();
        const float cpu = out.f[0], first = out.download_f32()[0], second = again.download_f32()[0];
        EXPECT_NEAR(first, cpu, 1e-6 * std::max(1.0f, std::fabs(cpu))) << "sum_into n=" << n;
        EXPECT_EQ(std::memcmp(&first, &second, sizeof(float)), 0) << "sum_into not deterministic, n=" << n;
    }
}

}  // namespace
}  // namespace rpt

#endif  // RPT_WITH_CUDA
