// rpt_bench kernels: the two op families that dominate a training step — causal GQA
// attention (forward, backward) and the Linear matmul (forward, backward) — timed on one
// backend at a list of shapes, as ms per call and TFLOP/s. The PyTorch peer
// (bench/peers/torch_gpu.py kernels --shapes-from FILE) reads this command's JSON and
// times torch's SDPA backends and torch.matmul at exactly the same shapes, so the two
// are compared side by side in one run (tools/gpu-check.sh does this on a GPU).
//
// FLOP convention (the one FlashAttention's benchmarks use, so figures compare):
//   attention forward, causal: 2 matmuls of (T x T x D) per head, half of them masked:
//     2 * B * H * T * T * D;  backward: 2.5x the forward (5 such matmuls).
//   matmul (N, IC) x (IC, OC): 2 * N * IC * OC forward, twice that backward (din + dW).
//
// On the GPU the matmul shapes are also timed on the bf16 path (`matmul_bf16` in the JSON:
// bf16 in/weight/out/din, fp32 dweight, cuBLASLt on tensor cores with fp32 compute), with
// the same FLOP convention; the peer's torch bf16 matmul at the same shapes is its
// counterpart. (The CPU has no bf16 kernels of its own: there it is left out.)
// On CUDA every attention shape is also timed in bf16 on tensor cores (the "bf16" object
// of its row: kernels/cuda/attention_bf16.cu, called directly, the same FLOP counts), so
// the peer's SDPA flash/cuDNN bf16 rows of the same shape compare like with like.
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench/benches.h"
#include "kernels/bf16.h"
#include "kernels/buffer.h"
#include "kernels/context.h"
#include "kernels/ops.h"
#include "model/file_io.h"
#ifdef RPT_WITH_CUDA
#include "kernels/cuda/cuda_mixed_ops.h"
#endif

namespace rpt::bench {
namespace {

struct AttentionShape {
    int B, T, H, KVH, D;
};
struct MatmulShape {
    int N, IC, OC;
};

// Long-sequence shapes at 16k tokens per call (the FlashAttention benchmark's layout:
// hidden 2048, head_dim 64 and 128, T 1k to 8k at head_dim 128), plus the `small`
// preset's GQA shape.
const std::vector<AttentionShape> kAttentionShapes = {
    {16, 1024, 32, 32, 64},  {4, 4096, 32, 32, 64},  {16, 1024, 16, 16, 128}, {8, 2048, 16, 16, 128},
    {4, 4096, 16, 16, 128}, {2, 8192, 16, 16, 128}, {8, 256, 8, 2, 64},
};
// A square 4k product, then `small`'s QKV-like, MLP-up and LM-head shapes at 16k tokens.
const std::vector<MatmulShape> kMatmulShapes = {
    {4096, 4096, 4096}, {16384, 512, 768}, {16384, 512, 1536}, {16384, 512, 8192},
};
// The CPU cannot run the long shapes in reasonable time: `--quick` keeps one small each.
const std::vector<AttentionShape> kQuickAttentionShapes = {{2, 128, 4, 2, 32}};
const std::vector<MatmulShape> kQuickMatmulShapes = {{256, 128, 192}};

// A device tensor of `shape` filled with uniform(-1, 1) values from `seed` (never zero
// data: a kernel that skips work on zeros would look fast).
struct RandomTensor {
    Buffer buffer;
    Tensor view;
    RandomTensor(DeviceKind device, std::initializer_list<int64_t> shape, uint32_t seed, const char* what,
                 DType dtype = DType::f32) {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        buffer = Buffer(device, size_t(n) * dtype_size(dtype), what);
        view = buffer.view(dtype, 0, shape);
        std::vector<float> host(static_cast<size_t>(n));
        std::mt19937 rng(seed);
        std::uniform_real_distribution<float> u(-1.0f, 1.0f);
        for (float& x : host) x = u(rng);
        if (dtype == DType::bf16) {
            std::vector<uint16_t> bits(host.size());
            for (size_t i = 0; i < host.size(); ++i) bits[i] = f32_to_bf16(host[i]);
            copy_from_host(view, bits.data());
        } else {
            copy_from_host(view, host.data());
        }
    }
};

// The same in bf16 (uniform(-1, 1) rounded to nearest even).
struct RandomBf16Tensor {
    Buffer buffer;
    Tensor view;
    RandomBf16Tensor(DeviceKind device, std::initializer_list<int64_t> shape, uint32_t seed, const char* what) {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        buffer = Buffer(device, size_t(n) * sizeof(uint16_t), what);
        view = buffer.view(DType::bf16, 0, shape);
        std::vector<uint16_t> host(static_cast<size_t>(n));
        std::mt19937 rng(seed);
        std::uniform_real_distribution<float> u(-1.0f, 1.0f);
        for (uint16_t& x : host) x = f32_to_bf16(u(rng));
        copy_from_host(view, host.data());
    }
};

// Mean seconds per call of `run`: two warm-up calls, then repeats until `min_seconds`
// of measured time (at least 3 calls), the device drained before each clock read.
double time_call(const OpContext& ctx, double min_seconds, const std::function<void()>& run) {
    run();
    run();
    synchronize(ctx);
    int calls = 0;
    const auto start = std::chrono::steady_clock::now();
    double elapsed = 0;
    while (calls < 3 || elapsed < min_seconds) {
        run();
        ++calls;
        synchronize(ctx);
        elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    return elapsed / calls;
}

// The bf16 tensor-core kernels at the same shape (CUDA only): ms and TFLOP/s.
nlohmann::json bench_attention_bf16(const OpContext& ctx, const AttentionShape& s, double min_seconds, double fwd_flop,
                                    double bwd_flop) {
#ifdef RPT_WITH_CUDA
    const DeviceKind dev = ctx.device;
    RandomBf16Tensor q(dev, {s.B, s.T, s.H, s.D}, 1, "bench q bf16"), k(dev, {s.B, s.T, s.KVH, s.D}, 2, "bench k bf16"),
        v(dev, {s.B, s.T, s.KVH, s.D}, 3, "bench v bf16"), dout(dev, {s.B, s.T, s.H, s.D}, 4, "bench dout bf16");
    RandomBf16Tensor out(dev, {s.B, s.T, s.H, s.D}, 5, "bench out bf16"), dq(dev, {s.B, s.T, s.H, s.D}, 7, "bench dq bf16"),
        dk(dev, {s.B, s.T, s.KVH, s.D}, 8, "bench dk bf16"), dv(dev, {s.B, s.T, s.KVH, s.D}, 9, "bench dv bf16");
    RandomTensor lse(dev, {s.B, s.H, s.T}, 6, "bench lse");
    const double fwd_s = time_call(ctx, min_seconds, [&] {
        cuda::mixed::attention_forward(ctx.stream, out.view, lse.view, q.view, k.view, v.view, {});
    });
    const double bwd_s = time_call(ctx, min_seconds, [&] {
        cuda::mixed::attention_backward(ctx.stream, dq.view, dk.view, dv.view, dout.view, q.view, k.view, v.view,
                                        out.view, lse.view, {});
    });
    return {{"forward_ms", fwd_s * 1e3},
            {"backward_ms", bwd_s * 1e3},
            {"forward_tflops", fwd_flop / fwd_s * 1e-12},
            {"backward_tflops", bwd_flop / bwd_s * 1e-12}};
#else
    (void)ctx, (void)s, (void)min_seconds, (void)fwd_flop, (void)bwd_flop;
    return nullptr;
#endif
}

nlohmann::json bench_attention(const OpContext& ctx, const AttentionShape& s, double min_seconds) {
    const DeviceKind dev = ctx.device;
    RandomTensor q(dev, {s.B, s.T, s.H, s.D}, 1, "bench q"), k(dev, {s.B, s.T, s.KVH, s.D}, 2, "bench k"),
        v(dev, {s.B, s.T, s.KVH, s.D}, 3, "bench v"), dout(dev, {s.B, s.T, s.H, s.D}, 4, "bench dout");
    RandomTensor out(dev, {s.B, s.T, s.H, s.D}, 5, "bench out"), lse(dev, {s.B, s.H, s.T}, 6, "bench lse");
    RandomTensor dq(dev, {s.B, s.T, s.H, s.D}, 7, "bench dq"), dk(dev, {s.B, s.T, s.KVH, s.D}, 8, "bench dk"),
        dv(dev, {s.B, s.T, s.KVH, s.D}, 9, "bench dv");
    const double fwd_s = time_call(ctx, min_seconds, [&] {
        ops::attention_forward(ctx, out.view, lse.view, q.view, k.view, v.view);
    });
    const double bwd_s = time_call(ctx, min_seconds, [&] {
        ops::attention_backward(ctx, dq.view, dk.view, dv.view, dout.view, q.view, k.view, v.view, out.view,
                                lse.view);
    });
    const double fwd_flop = 2.0 * s.B * s.H * double(s.T) * s.T * s.D;
    const double bwd_flop = 2.5 * fwd_flop;
    nlohmann::json row = {{"B", s.B},
            {"T", s.T},
            {"H", s.H},
            {"KVH", s.KVH},
            {"D", s.D},
            {"causal", true},
            {"forward_ms", fwd_s * 1e3},
            {"backward_ms", bwd_s * 1e3},
            {"forward_tflops", fwd_flop / fwd_s * 1e-12},
            {"backward_tflops", bwd_flop / bwd_s * 1e-12}};
    if (dev == DeviceKind::cuda) row["bf16"] = bench_attention_bf16(ctx, s, min_seconds, fwd_flop, bwd_flop);
    return row;
}

nlohmann::json bench_matmul(const OpContext& ctx, const MatmulShape& s, double min_seconds) {
    const DeviceKind dev = ctx.device;
    RandomTensor in(dev, {s.N, s.IC}, 11, "bench in"), weight(dev, {s.OC, s.IC}, 12, "bench weight"),
        bias(dev, {s.OC}, 13, "bench bias"), out(dev, {s.N, s.OC}, 14, "bench out");
    RandomTensor din(dev, {s.N, s.IC}, 15, "bench din"), dweight(dev, {s.OC, s.IC}, 16, "bench dweight");
    const double fwd_s = time_call(ctx, min_seconds, [&] { ops::matmul_forward(ctx, out.view, in.view, weight.view, {}); });
    const double bwd_s = time_call(ctx, min_seconds, [&] {
        ops::matmul_backward(ctx, din.view, dweight.view, {}, out.view, in.view, weight.view);
    });
    const double fwd_flop = 2.0 * s.N * double(s.IC) * s.OC;
    return {{"N", s.N},
            {"IC", s.IC},
            {"OC", s.OC},
            {"forward_ms", fwd_s * 1e3},
            {"backward_ms", bwd_s * 1e3},
            {"forward_tflops", fwd_flop / fwd_s * 1e-12},
            {"backward_tflops", 2.0 * fwd_flop / bwd_s * 1e-12}};
}

#ifdef RPT_WITH_CUDA
// The bf16 Linear layer, called at the kernels' own entry points (the ones the op API
// dispatches bf16 tensors to): bf16 in, weight, out, dout, din; fp32 dweight.
nlohmann::json bench_matmul_bf16(const OpContext& ctx, const MatmulShape& s, double min_seconds) {
    const DeviceKind dev = ctx.device;
    const DType b16 = DType::bf16;
    RandomTensor in(dev, {s.N, s.IC}, 21, "bench in", b16), weight(dev, {s.OC, s.IC}, 22, "bench weight", b16),
        out(dev, {s.N, s.OC}, 24, "bench out", b16);
    RandomTensor din(dev, {s.N, s.IC}, 25, "bench din", b16), dweight(dev, {s.OC, s.IC}, 26, "bench dweight");
    const double fwd_s = time_call(ctx, min_seconds, [&] {
        cuda::mixed::matmul_forward(ctx.stream, out.view, in.view, weight.view, {});
    });
    const double bwd_s = time_call(ctx, min_seconds, [&] {
        cuda::mixed::matmul_backward(ctx.stream, din.view, dweight.view, {}, out.view, in.view, weight.view);
    });
    const double fwd_flop = 2.0 * s.N * double(s.IC) * s.OC;
    return {{"N", s.N},
            {"IC", s.IC},
            {"OC", s.OC},
            {"forward_ms", fwd_s * 1e3},
            {"backward_ms", bwd_s * 1e3},
            {"forward_tflops", fwd_flop / fwd_s * 1e-12},
            {"backward_tflops", 2.0 * fwd_flop / bwd_s * 1e-12}};
}
#endif

}  // namespace

int kernels(int argc, char** argv) {
    CLI::App app{"attention and matmul ms/call and TFLOP/s at fixed shapes (the PyTorch peer reads the JSON)"};
    std::string device = "cpu", json_path;
    double min_seconds = 0.2;
    bool quick = false;
    app.add_option("--device", device);
    app.add_option("--json", json_path);
    app.add_option("--min-seconds", min_seconds, "measured time per op and shape")->check(CLI::Range(0.0, 60.0));
    app.add_flag("--quick", quick, "one small shape per op (a smoke test; the CPU default)");
    CLI11_PARSE(app, argc, argv);

    const OpContext ctx = make_context(device, false);
    // The long shapes are GPU work: on the CPU they would take minutes per call.
    if (ctx.device == DeviceKind::cpu) quick = true;
    const auto& attention_shapes = quick ? kQuickAttentionShapes : kAttentionShapes;
    const auto& matmul_shapes = quick ? kQuickMatmulShapes : kMatmulShapes;

    nlohmann::json out = {{"bench", "kernels"}, {"device", device_name(ctx.device)}, {"precision", "f32"},
                          {"attention", nlohmann::json::array()}, {"matmul", nlohmann::json::array()},
                          {"matmul_bf16", nlohmann::json::array()}};
    std::printf("kernels on %s (fp32), ms per call and TFLOP/s\n", device_name(ctx.device));
    for (const AttentionShape& s : attention_shapes) {
        const nlohmann::json r = bench_attention(ctx, s, min_seconds);
        std::printf("  attention B%-3d T%-5d H%-3d KVH%-3d D%-4d fwd %8.3f ms %7.2f TFLOP/s  bwd %8.3f ms %7.2f TFLOP/s\n",
                    s.B, s.T, s.H, s.KVH, s.D, r["forward_ms"].get<double>(), r["forward_tflops"].get<double>(),
                    r["backward_ms"].get<double>(), r["backward_tflops"].get<double>());
        if (r.contains("bf16") && r["bf16"].is_object())
            std::printf("    bf16 (tensor cores)                     fwd %8.3f ms %7.2f TFLOP/s  bwd %8.3f ms %7.2f TFLOP/s\n",
                        r["bf16"]["forward_ms"].get<double>(), r["bf16"]["forward_tflops"].get<double>(),
                        r["bf16"]["backward_ms"].get<double>(), r["bf16"]["backward_tflops"].get<double>());
        out["attention"].push_back(r);
    }
    for (const MatmulShape& s : matmul_shapes) {
        const nlohmann::json r = bench_matmul(ctx, s, min_seconds);
        std::printf("  matmul    N%-6d IC%-5d OC%-5d        fwd %8.3f ms %7.2f TFLOP/s  bwd %8.3f ms %7.2f TFLOP/s\n",
                    s.N, s.IC, s.OC, r["forward_ms"].get<double>(), r["forward_tflops"].get<double>(),
                    r["backward_ms"].get<double>(), r["backward_tflops"].get<double>());
        out["matmul"].push_back(r);
    }
#ifdef RPT_WITH_CUDA
    if (ctx.device == DeviceKind::cuda) {
        std::printf("kernels on cuda (bf16, tensor cores), ms per call and TFLOP/s\n");
        for (const MatmulShape& s : matmul_shapes) {
            const nlohmann::json r = bench_matmul_bf16(ctx, s, min_seconds);
            std::printf("  matmul    N%-6d IC%-5d OC%-5d        fwd %8.3f ms %7.2f TFLOP/s  bwd %8.3f ms %7.2f TFLOP/s\n",
                        s.N, s.IC, s.OC, r["forward_ms"].get<double>(), r["forward_tflops"].get<double>(),
                        r["backward_ms"].get<double>(), r["backward_tflops"].get<double>());
            out["matmul_bf16"].push_back(r);
        }
    }
#endif
    if (!json_path.empty()) write_file_atomic(json_path, out.dump(2) + "\n");
    return 0;
}

}  // namespace rpt::bench
