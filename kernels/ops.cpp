// The dispatch point of the op API: validate shapes once, then call the CPU twin or the
// CUDA kernel with raw pointers. Adding a backend means adding one branch per op here.
//
// Precision: each op lists its floating tensors as Slots (kernels/op_precision.h) with
// the dtypes the bf16 path allows (the table of kernels/cuda/cuda_mixed_ops.h). All f32:
// the fp32 kernels. Any bf16: the bf16 path, after checking every dtype against the
// table -- cuda::mixed on the GPU, and on the CPU the same fp32 twin run on staged fp32
// copies, rounding each bf16 output once at the store (the emulation, written once in
// run() below for every op).
#include "kernels/ops.h"

#include <stdexcept>

#include <fmt/format.h>

#include "kernels/bf16.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/host_sync.h"
#include "kernels/op_checks.h"
#include "kernels/op_precision.h"
#ifdef RPT_WITH_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_mixed_ops.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device.h"
#endif

namespace rpt::ops {
namespace {

using namespace checks;

#ifdef RPT_WITH_CUDA
#define RPT_DISPATCH(ctx, name, ...)                     \
    do {                                                 \
        if (on_gpu(ctx)) cuda::name((ctx).stream, __VA_ARGS__); \
        else cpu::name(__VA_ARGS__);                     \
    } while (0)
#else
#define RPT_DISPATCH(ctx, name, ...)                                                     \
    do {                                                                                 \
        if (on_gpu(ctx)) fail(#name, "this build has no CUDA backend (rebuild with CUDA=1)"); \
        cpu::name(__VA_ARGS__);                                                          \
    } while (0)
#endif

// The bf16 path of an op: its cuda::mixed kernel, a closure over the call's tensors.
#ifdef RPT_WITH_CUDA
#define RPT_MIXED(name, ...) [&] { cuda::mixed::name(ctx.stream, __VA_ARGS__); }
#else
#define RPT_MIXED(name, ...) [] {}
#endif

const float* opt_f32(const Tensor& t) { return t.empty() ? nullptr : t.f32(); }
float* opt_f32_mut(const Tensor& t) { return t.empty() ? nullptr : t.f32(); }

using precision::Allowed;
using precision::Role;
using precision::Slot;
constexpr Allowed kBf16 = Allowed::bf16, kF32 = Allowed::f32, kEither = Allowed::either;

Slot read(Tensor& t, const char* name, Allowed allowed = kBf16) { return {&t, name, allowed, Role::in}; }
Slot write(Tensor& t, const char* name, Allowed allowed = kBf16) { return {&t, name, allowed, Role::out}; }
Slot update(Tensor& t, const char* name, Allowed allowed = kBf16) { return {&t, name, allowed, Role::inout}; }

// One op call over its floating tensors `slots`: `fp32` (the fp32 dispatch, on f32
// views) when all are f32; else the bf16 path: `mixed` on the GPU, and on the CPU `fp32`
// on staged fp32 copies whose bf16 outputs are rounded once when it returns. Both
// closures capture the call's tensors by reference, so staging swaps what they see.
template <class Fp32, class Mixed>
void run(const OpContext& ctx, const char* op, std::initializer_list<Slot> slots, Fp32 fp32, Mixed mixed) {
    if (!precision::any_bf16(slots)) return fp32();
    precision::check_bf16_dtypes(op, slots);
    if (on_gpu(ctx)) {
#ifdef RPT_WITH_CUDA
        return mixed();
#else
        (void)mixed;
        fail(op, "this build has no CUDA backend (rebuild with CUDA=1)");
#endif
    }
    precision::BF16Staging staging(slots);
    fp32();
    staging.commit();
}

}  // namespace

void fill(const OpContext& ctx, Tensor dst, float value) {
    expect_device(ctx, "fill", {&dst});
    // The GPU fills bf16 with a memset, so only values whose bf16 bits are zero (what
    // the model zeroes its bf16 gradient scratch with).
    auto zero_bf16 = [&] {
#ifdef RPT_WITH_CUDA
        expect(f32_to_bf16(value) == 0, "fill", "bf16 on the GPU fills +0 only");
        RPT_CUDA_CHECK(cudaMemsetAsync(dst.data, 0, dst.nbytes(), static_cast<cudaStream_t>(ctx.stream)));
#endif
    };
    run(ctx, "fill", {write(dst, "dst", kEither)}, [&] { RPT_DISPATCH(ctx, fill, dst.f32(), dst.numel(), value); },
        zero_bf16);
}

void add(const OpContext& ctx, Tensor out, Tensor a, Tensor b) {
    expect_device(ctx, "add", {&out, &a, &b});
    expect_numel("add", a, out.numel(), "a");
    expect_numel("add", b, out.numel(), "b");
    run(ctx, "add", {write(out, "out"), read(a, "a"), read(b, "b")},
        [&] { RPT_DISPATCH(ctx, add, out.f32(), a.f32(), b.f32(), out.numel()); }, RPT_MIXED(add, out, a, b));
}

void accumulate(const OpContext& ctx, Tensor dst, Tensor src) {
    expect_device(ctx, "accumulate", {&dst, &src});
    expect_numel("accumulate", src, dst.numel(), "src");
    run(ctx, "accumulate", {update(dst, "dst"), read(src, "src")},
        [&] { RPT_DISPATCH(ctx, accumulate, dst.f32(), src.f32(), dst.numel()); }, RPT_MIXED(accumulate, dst, src));
}

void scale(const OpContext& ctx, Tensor x, float factor) {
    expect_device(ctx, "scale", {&x});
    RPT_DISPATCH(ctx, scale, x.f32(), x.numel(), factor);
}

void copy(const OpContext& ctx, Tensor dst, Tensor src) {
    expect_device(ctx, "copy", {&dst, &src});
    expect_numel("copy", src, dst.numel(), "src");
    expect_f32_or_bf16("copy", dst, "dst");
    expect_f32_or_bf16("copy", src, "src");
    const bool dst_bf16 = dst.dtype == DType::bf16, src_bf16 = src.dtype == DType::bf16;
    if (dst_bf16 && src_bf16) RPT_DISPATCH(ctx, copy, dst.bf16(), src.bf16(), dst.numel());
    else if (dst_bf16) RPT_DISPATCH(ctx, copy, dst.bf16(), src.f32(), dst.numel());
    else if (src_bf16) RPT_DISPATCH(ctx, copy, dst.f32(), src.bf16(), dst.numel());
    else RPT_DISPATCH(ctx, copy, dst.f32(), src.f32(), dst.numel());
}

void embedding_forward(const OpContext& ctx, Tensor out, Tensor tokens, Tensor wte) {
    expect_device(ctx, "embedding_forward", {&out, &tokens, &wte});
    const int64_t N = tokens.numel(), V = wte.dim(0), C = wte.dim(1);
    expect_numel("embedding_forward", out, N * C, "out");
    run(ctx, "embedding_forward", {write(out, "out"), read(wte, "wte")},
        [&] { RPT_DISPATCH(ctx, embedding_forward, out.f32(), tokens.i32(), wte.f32(), N, V, C); },
        RPT_MIXED(embedding_forward, out, tokens, wte));
}

void embedding_backward(const OpContext& ctx, Tensor dwte, Tensor dout, Tensor tokens) {
    expect_device(ctx, "embedding_backward", {&dwte, &dout, &tokens});
    const int64_t N = tokens.numel(), V = dwte.dim(0), C = dwte.dim(1);
    expect_numel("embedding_backward", dout, N * C, "dout");
    run(ctx, "embedding_backward", {update(dwte, "dwte", kF32), read(dout, "dout")},
        [&] { RPT_DISPATCH(ctx, embedding_backward, dwte.f32(), dout.f32(), tokens.i32(), N, V, C); },
        RPT_MIXED(embedding_backward, dwte, dout, tokens));
}

void rmsnorm_forward(const OpContext& ctx, Tensor out, Tensor rstd, Tensor in, Tensor weight, float eps) {
    expect_device(ctx, "rmsnorm_forward", {&out, &rstd, &in, &weight});
    const int64_t C = weight.numel(), N = in.numel() / C;
    expect_numel("rmsnorm_forward", in, N * C, "in");
    expect_numel("rmsnorm_forward", out, N * C, "out");
    expect_numel("rmsnorm_forward", rstd, N, "rstd");
    run(ctx, "rmsnorm_forward",
        {write(out, "out", kEither), write(rstd, "rstd", kF32), read(in, "in"), read(weight, "weight")},
        [&] { RPT_DISPATCH(ctx, rmsnorm_forward, out.f32(), rstd.f32(), in.f32(), weight.f32(), N, C, eps); },
        RPT_MIXED(rmsnorm_forward, out, rstd, in, weight, eps));
}

void add_rmsnorm_forward(const OpContext& ctx, Tensor residual_out, Tensor out, Tensor rstd, Tensor residual_in,
                         Tensor branch, Tensor weight, float eps) {
    constexpr const char* op = "add_rmsnorm_forward";
    expect_device(ctx, op, {&residual_out, &out, &rstd, &residual_in, &branch, &weight});
    expect_numel(op, residual_in, residual_out.numel(), "residual_in");
    expect_numel(op, branch, residual_out.numel(), "branch");
    const std::initializer_list<Slot> slots = {write(residual_out, "residual_out"), write(out, "out", kEither),
                                               write(rstd, "rstd", kF32),           read(residual_in, "residual_in"),
                                               read(branch, "branch"),              read(weight, "weight")};
    if (precision::any_bf16(slots)) {
        precision::check_bf16_dtypes(op, slots);
#ifdef RPT_WITH_CUDA
        if (on_gpu(ctx))
            return cuda::mixed::add_rmsnorm_forward(ctx.stream, residual_out, out, rstd, residual_in, branch, weight,
                                                    eps);
#endif
    }
    // fp32 everywhere, and the CPU emulation of bf16: the sum is stored (rounded when
    // bf16) before the norm reads it, exactly as the fused kernel does.
    add(ctx, residual_out, residual_in, branch);
    rmsnorm_forward(ctx, out, rstd, residual_out, weight, eps);
}

void rmsnorm_backward(const OpContext& ctx, Tensor din, Tensor dweight, Tensor dout, Tensor in, Tensor weight,
                      Tensor rstd) {
    expect_device(ctx, "rmsnorm_backward", {&din, &dweight, &dout, &in, &weight, &rstd});
    const int64_t C = weight.numel(), N = in.numel() / C;
    expect_numel("rmsnorm_backward", din, N * C, "din");
    expect_numel("rmsnorm_backward", dout, N * C, "dout");
    expect_numel("rmsnorm_backward", dweight, C, "dweight");
    expect_numel("rmsnorm_backward", rstd, N, "rstd");
    run(ctx, "rmsnorm_backward",
        {update(din, "din"), update(dweight, "dweight", kF32), read(dout, "dout", kEither), read(in, "in"),
         read(weight, "weight"), read(rstd, "rstd", kF32)},
        [&] {
            RPT_DISPATCH(ctx, rmsnorm_backward, din.f32(), dweight.f32(), dout.f32(), in.f32(), weight.f32(),
                         rstd.f32(), N, C);
        },
        RPT_MIXED(rmsnorm_backward, din, dweight, dout, in, weight, rstd));
}

void matmul_forward(const OpContext& ctx, Tensor out, Tensor in, Tensor weight, Tensor bias) {
    expect_device(ctx, "matmul_forward", {&out, &in, &weight, &bias});
    const int64_t OC = weight.dim(0), IC = weight.dim(1), N = in.numel() / IC;
    expect_numel("matmul_forward", in, N * IC, "in");
    expect_numel("matmul_forward", out, N * OC, "out");
    if (!bias.empty()) expect_numel("matmul_forward", bias, OC, "bias");
    run(ctx, "matmul_forward",
        {write(out, "out", kEither), read(in, "in"), read(weight, "weight"), read(bias, "bias", kF32)},
        [&] { RPT_DISPATCH(ctx, matmul_forward, out.f32(), in.f32(), weight.f32(), opt_f32(bias), N, IC, OC); },
        RPT_MIXED(matmul_forward, out, in, weight, bias));
}

void matmul_backward(const OpContext& ctx, Tensor din, Tensor dweight, Tensor dbias, Tensor dout, Tensor in,
                     Tensor weight) {
    expect_device(ctx, "matmul_backward", {&din, &dweight, &dbias, &dout, &in, &weight});
    const int64_t OC = weight.dim(0), IC = weight.dim(1), N = in.numel() / IC;
    expect_numel("matmul_backward", dout, N * OC, "dout");
    expect_numel("matmul_backward", dweight, OC * IC, "dweight");
    if (!din.empty()) expect_numel("matmul_backward", din, N * IC, "din");
    if (!dbias.empty()) expect_numel("matmul_backward", dbias, OC, "dbias");
    run(ctx, "matmul_backward",
        {update(din, "din"), update(dweight, "dweight", kF32), update(dbias, "dbias", kF32), read(dout, "dout"),
         read(in, "in"), read(weight, "weight")},
        [&] {
            RPT_DISPATCH(ctx, matmul_backward, opt_f32_mut(din), dweight.f32(), opt_f32_mut(dbias), dout.f32(),
                         in.f32(), weight.f32(), N, IC, OC);
        },
        RPT_MIXED(matmul_backward, din, dweight, dbias, dout, in, weight));
}

void rope_forward(const OpContext& ctx, Tensor x, Tensor positions, float theta) {
    expect_device(ctx, "rope_forward", {&x, &positions});
    expect(x.ndim == 3 && x.dim(2) % 2 == 0, "rope_forward", "x must be (N, heads, even D), got " + x.describe());
    expect_numel("rope_forward", positions, x.dim(0), "positions");
    run(ctx, "rope_forward", {update(x, "x")},
        [&] { RPT_DISPATCH(ctx, rope_forward, x.f32(), positions.i32(), x.dim(0), x.dim(1), x.dim(2), theta); },
        RPT_MIXED(rope_forward, x, positions, theta));
}

void rope_backward(const OpContext& ctx, Tensor dx, Tensor positions, float theta) {
    expect_device(ctx, "rope_backward", {&dx, &positions});
    expect(dx.ndim == 3 && dx.dim(2) % 2 == 0, "rope_backward", "dx must be (N, heads, even D), got " + dx.describe());
    expect_numel("rope_backward", positions, dx.dim(0), "positions");
    run(ctx, "rope_backward", {update(dx, "dx")},
        [&] { RPT_DISPATCH(ctx, rope_backward, dx.f32(), positions.i32(), dx.dim(0), dx.dim(1), dx.dim(2), theta); },
        RPT_MIXED(rope_backward, dx, positions, theta));
}

namespace {
using AttentionShape = attn::Shape;

AttentionShape attention_shape(const char* op, const Tensor& q, const Tensor& k, const Tensor& v) {
    expect(q.ndim == 4 && k.ndim == 4 && v.ndim == 4, op, "q, k, v must be (B, T, heads, D)");
    const AttentionShape s{q.dim(0), q.dim(1), q.dim(2), k.dim(2), q.dim(3)};
    expect(k.dim(0) == s.B && k.dim(1) == s.T && k.dim(3) == s.D, op, "k shape " + k.describe() + " mismatches q");
    expect(v.numel() == k.numel(), op, "v shape " + v.describe() + " mismatches k");
    expect(s.KVH > 0 && s.H % s.KVH == 0, op, fmt::format("{} query heads not divisible by {} kv heads", s.H, s.KVH));
    return s;
}

// The optional segment ids: (B, T) i32 on the op's device, or nullptr when empty.
const int32_t* attention_segments(const OpContext& ctx, const char* op, const AttentionShape& s,
                                  const Tensor& segments) {
    if (segments.empty()) return nullptr;
    expect_device(ctx, op, {&segments});
    expect(segments.dtype == DType::i32, op, "segments must be i32");
    expect_numel(op, segments, s.B * s.T, "segments");
    if (segments.device == DeviceKind::cpu)  // device ids are the caller's promise (one copy per call otherwise)
        for (int64_t b = 0; b < s.B; ++b)
            for (int64_t t = 1; t < s.T; ++t)
                expect(segments.i32()[b * s.T + t] >= segments.i32()[b * s.T + t - 1], op,
                       fmt::format("segment ids decrease at row {} token {}", b, t));
    return segments.i32();
}
}  // namespace

void attention_forward(const OpContext& ctx, Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor segments) {
    expect_device(ctx, "attention_forward", {&out, &lse, &q, &k, &v});
    const AttentionShape s = attention_shape("attention_forward", q, k, v);
    expect_numel("attention_forward", out, q.numel(), "out");
    expect_numel("attention_forward", lse, s.B * s.H * s.T, "lse");
    const int32_t* seg = attention_segments(ctx, "attention_forward", s, segments);
    run(ctx, "attention_forward",
        {write(out, "out"), write(lse, "lse", kF32), read(q, "q"), read(k, "k"), read(v, "v")},
        [&] {
            const attn::ForwardArgs args{out.f32(), lse.f32(), q.f32(), k.f32(), v.f32(), seg, s};
            RPT_DISPATCH(ctx, attention_forward, args);
        },
        RPT_MIXED(attention_forward, out, lse, q, k, v, segments));
}

void attention_backward(const OpContext& ctx, Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k,
                        Tensor v, Tensor out, Tensor lse, Tensor segments) {
    expect_device(ctx, "attention_backward", {&dq, &dk, &dv, &dout, &q, &k, &v, &out, &lse});
    const AttentionShape s = attention_shape("attention_backward", q, k, v);
    expect_numel("attention_backward", dq, q.numel(), "dq");
    expect_numel("attention_backward", dk, k.numel(), "dk");
    expect_numel("attention_backward", dv, v.numel(), "dv");
    expect_numel("attention_backward", dout, q.numel(), "dout");
    expect_numel("attention_backward", out, q.numel(), "out");
    expect_numel("attention_backward", lse, s.B * s.H * s.T, "lse");
    const int32_t* seg = attention_segments(ctx, "attention_backward", s, segments);
    run(ctx, "attention_backward",
        {write(dq, "dq"), write(dk, "dk"), write(dv, "dv"), read(dout, "dout"), read(q, "q"), read(k, "k"),
         read(v, "v"), read(out, "out"), read(lse, "lse", kF32)},
        [&] {
            const attn::BackwardArgs args{dq.f32(), dk.f32(), dv.f32(), dout.f32(), q.f32(), k.f32(),
                                          v.f32(),  out.f32(), lse.f32(), seg, s};
            RPT_DISPATCH(ctx, attention_backward, args);
        },
        RPT_MIXED(attention_backward, dq, dk, dv, dout, q, k, v, out, lse, segments));
}

void swiglu_forward(const OpContext& ctx, Tensor out, Tensor gate, Tensor up) {
    expect_device(ctx, "swiglu_forward", {&out, &gate, &up});
    expect_numel("swiglu_forward", gate, out.numel(), "gate");
    expect_numel("swiglu_forward", up, out.numel(), "up");
    run(ctx, "swiglu_forward", {write(out, "out"), read(gate, "gate"), read(up, "up")},
        [&] { RPT_DISPATCH(ctx, swiglu_forward, out.f32(), gate.f32(), up.f32(), out.numel()); },
        RPT_MIXED(swiglu_forward, out, gate, up));
}

void swiglu_backward(const OpContext& ctx, Tensor dgate, Tensor dup, Tensor dout, Tensor gate, Tensor up) {
    expect_device(ctx, "swiglu_backward", {&dgate, &dup, &dout, &gate, &up});
    const int64_t n = dout.numel();
    expect_numel("swiglu_backward", dgate, n, "dgate");
    expect_numel("swiglu_backward", dup, n, "dup");
    expect_numel("swiglu_backward", gate, n, "gate");
    expect_numel("swiglu_backward", up, n, "up");
    run(ctx, "swiglu_backward",
        {write(dgate, "dgate"), write(dup, "dup"), read(dout, "dout"), read(gate, "gate"), read(up, "up")},
        [&] { RPT_DISPATCH(ctx, swiglu_backward, dgate.f32(), dup.f32(), dout.f32(), gate.f32(), up.f32(), n); },
        RPT_MIXED(swiglu_backward, dgate, dup, dout, gate, up));
}

void logsoftmax_forward(const OpContext& ctx, Tensor logprob, Tensor entropy, Tensor lse, Tensor logits,
                        Tensor targets, float inv_temperature) {
    expect_device(ctx, "logsoftmax_forward", {&logprob, &entropy, &lse, &logits, &targets});
    const int64_t V = logits.dim(-1), N = logits.numel() / V;
    expect_numel("logsoftmax_forward", logprob, N, "logprob");
    expect_numel("logsoftmax_forward", lse, N, "lse");
    expect_numel("logsoftmax_forward", targets, N, "targets");
    if (!entropy.empty()) expect_numel("logsoftmax_forward", entropy, N, "entropy");
    run(ctx, "logsoftmax_forward",
        {write(logprob, "logprob", kF32), write(entropy, "entropy", kF32), write(lse, "lse", kF32),
         read(logits, "logits")},
        [&] {
            RPT_DISPATCH(ctx, logsoftmax_forward, logprob.f32(), opt_f32_mut(entropy), lse.f32(), logits.f32(),
                         targets.i32(), N, V, inv_temperature);
        },
        RPT_MIXED(logsoftmax_forward, logprob, entropy, lse, logits, targets, inv_temperature));
}

void logsoftmax_backward(const OpContext& ctx, Tensor logits, Tensor dlogprob, Tensor lse, Tensor targets,
                         float inv_temperature) {
    expect_device(ctx, "logsoftmax_backward", {&logits, &dlogprob, &lse, &targets});
    const int64_t V = logits.dim(-1), N = logits.numel() / V;
    expect_numel("logsoftmax_backward", dlogprob, N, "dlogprob");
    expect_numel("logsoftmax_backward", lse, N, "lse");
    expect_numel("logsoftmax_backward", targets, N, "targets");
    run(ctx, "logsoftmax_backward",
        {update(logits, "logits"), read(dlogprob, "dlogprob", kF32), read(lse, "lse", kF32)},
        [&] {
            RPT_DISPATCH(ctx, logsoftmax_backward, logits.f32(), dlogprob.f32(), lse.f32(), targets.i32(), N, V,
                         inv_temperature);
        },
        RPT_MIXED(logsoftmax_backward, logits, dlogprob, lse, targets, inv_temperature));
}

void topk_entropy(const OpContext& ctx, Tensor entropy, Tensor logits, int k) {
    expect_device(ctx, "topk_entropy", {&entropy, &logits});
    const int64_t V = logits.dim(-1), N = logits.numel() / V;
    expect(k > 0 && k <= V, "topk_entropy", fmt::format("k = {} must be in [1, {}]", k, V));
    expect_numel("topk_entropy", entropy, N, "entropy");
    run(ctx, "topk_entropy", {write(entropy, "entropy", kF32), read(logits, "logits")},
        [&] { RPT_DISPATCH(ctx, topk_entropy, entropy.f32(), logits.f32(), N, V, k); },
        RPT_MIXED(topk_entropy, entropy, logits, k));
}

void argmax(const OpContext& ctx, Tensor out, Tensor logits) {
    expect_device(ctx, "argmax", {&out, &logits});
    const int64_t V = logits.dim(-1), N = logits.numel() / V;
    expect_numel("argmax", out, N, "out");
    run(ctx, "argmax", {read(logits, "logits")}, [&] { RPT_DISPATCH(ctx, argmax, out.i32(), logits.f32(), N, V); },
        RPT_MIXED(argmax, out, logits));
}

void adamw_update(const OpContext& ctx, Tensor params, Tensor grads, Tensor m, Tensor v, const AdamWSettings& s,
                  Tensor working) {
    expect_device(ctx, "adamw_update", {&params, &grads, &m, &v, &working});
    const int64_t n = params.numel();
    expect_numel("adamw_update", grads, n, "grads");
    expect_numel("adamw_update", m, n, "m");
    expect_numel("adamw_update", v, n, "v");
    expect(s.step >= 1, "adamw_update", "step is 1-based");
    if (working.empty()) {
        RPT_DISPATCH(ctx, adamw_update, params.f32(), grads.f32(), m.f32(), v.f32(), n, s);
        return;
    }
    // The working copy is the one bf16 tensor: its own CPU twin writes it in the same
    // pass (no staging needed), as the fused kernel does.
    expect_numel("adamw_update", working, n, "working");
    precision::check_bf16_dtypes("adamw_update", {update(params, "params", kF32), read(grads, "grads", kF32),
                                                  update(m, "m", kF32), update(v, "v", kF32),
                                                  write(working, "working")});
#ifdef RPT_WITH_CUDA
    if (on_gpu(ctx)) return cuda::mixed::adamw_update(ctx.stream, params, grads, m, v, working, s);
#else
    if (on_gpu(ctx)) fail("adamw_update", "this build has no CUDA backend (rebuild with CUDA=1)");
#endif
    cpu::adamw_update(params.f32(), grads.f32(), m.f32(), v.f32(), working.bf16(), n, s);
}

double sum_squares(const OpContext& ctx, Tensor x) {
    expect_device(ctx, "sum_squares", {&x});
    count_host_sync(ctx, HostSync::readback);  // the result is read back to the host
#ifdef RPT_WITH_CUDA
    if (on_gpu(ctx)) return cuda::sum_squares(ctx.stream, x.f32(), x.numel());
#else
    if (on_gpu(ctx)) fail("sum_squares", "this build has no CUDA backend (rebuild with CUDA=1)");
#endif
    return cpu::sum_squares(x.f32(), x.numel());
}

void sum_into(const OpContext& ctx, Tensor out, Tensor x) {
    expect_device(ctx, "sum_into", {&out, &x});
    if (out.numel() != 1) fail("sum_into", "out must hold one element, got " + out.describe());
#ifdef RPT_WITH_CUDA
    if (on_gpu(ctx)) return cuda::sum_into(ctx.stream, out.f32(), x.f32(), x.numel());
#else
    if (on_gpu(ctx)) fail("sum_into", "this build has no CUDA backend (rebuild with CUDA=1)");
#endif
    *out.f32() = static_cast<float>(cpu::sum(x.f32(), x.numel()));
}

}  // namespace rpt::ops
