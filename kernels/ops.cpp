// The dispatch point of the op API: validate shapes once, then call the CPU twin or the
// CUDA kernel with raw pointers. Adding a backend means adding one branch per op here.
#include "kernels/ops.h"

#include <stdexcept>

#include <fmt/format.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/op_checks.h"
#ifdef RPT_WITH_CUDA
#include "kernels/cuda/cuda_ops.h"
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

const float* opt_f32(const Tensor& t) { return t.empty() ? nullptr : t.f32(); }
float* opt_f32_mut(const Tensor& t) { return t.empty() ? nullptr : t.f32(); }

}  // namespace

void fill(const OpContext& ctx, Tensor dst, float value) {
    expect_device(ctx, "fill", {&dst});
    RPT_DISPATCH(ctx, fill, dst.f32(), dst.numel(), value);
}

void add(const OpContext& ctx, Tensor out, Tensor a, Tensor b) {
    expect_device(ctx, "add", {&out, &a, &b});
    expect_numel("add", a, out.numel(), "a");
    expect_numel("add", b, out.numel(), "b");
    RPT_DISPATCH(ctx, add, out.f32(), a.f32(), b.f32(), out.numel());
}

void accumulate(const OpContext& ctx, Tensor dst, Tensor src) {
    expect_device(ctx, "accumulate", {&dst, &src});
    expect_numel("accumulate", src, dst.numel(), "src");
    RPT_DISPATCH(ctx, accumulate, dst.f32(), src.f32(), dst.numel());
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
    RPT_DISPATCH(ctx, embedding_forward, out.f32(), tokens.i32(), wte.f32(), N, V, C);
}

void embedding_backward(const OpContext& ctx, Tensor dwte, Tensor dout, Tensor tokens) {
    expect_device(ctx, "embedding_backward", {&dwte, &dout, &tokens});
    const int64_t N = tokens.numel(), V = dwte.dim(0), C = dwte.dim(1);
    expect_numel("embedding_backward", dout, N * C, "dout");
    RPT_DISPATCH(ctx, embedding_backward, dwte.f32(), dout.f32(), tokens.i32(), N, V, C);
}

void rmsnorm_forward(const OpContext& ctx, Tensor out, Tensor rstd, Tensor in, Tensor weight, float eps) {
    expect_device(ctx, "rmsnorm_forward", {&out, &rstd, &in, &weight});
    const int64_t C = weight.numel(), N = in.numel() / C;
    expect_numel("rmsnorm_forward", in, N * C, "in");
    expect_numel("rmsnorm_forward", out, N * C, "out");
    expect_numel("rmsnorm_forward", rstd, N, "rstd");
    RPT_DISPATCH(ctx, rmsnorm_forward, out.f32(), rstd.f32(), in.f32(), weight.f32(), N, C, eps);
}

void rmsnorm_backward(const OpContext& ctx, Tensor din, Tensor dweight, Tensor dout, Tensor in, Tensor weight,
                      Tensor rstd) {
    expect_device(ctx, "rmsnorm_backward", {&din, &dweight, &dout, &in, &weight, &rstd});
    const int64_t C = weight.numel(), N = in.numel() / C;
    expect_numel("rmsnorm_backward", din, N * C, "din");
    expect_numel("rmsnorm_backward", dout, N * C, "dout");
    expect_numel("rmsnorm_backward", dweight, C, "dweight");
    expect_numel("rmsnorm_backward", rstd, N, "rstd");
    RPT_DISPATCH(ctx, rmsnorm_backward, din.f32(), dweight.f32(), dout.f32(), in.f32(), weight.f32(), rstd.f32(),
                 N, C);
}

void matmul_forward(const OpContext& ctx, Tensor out, Tensor in, Tensor weight, Tensor bias) {
    expect_device(ctx, "matmul_forward", {&out, &in, &weight, &bias});
    const int64_t OC = weight.dim(0), IC = weight.dim(1), N = in.numel() / IC;
    expect_numel("matmul_forward", in, N * IC, "in");
    expect_numel("matmul_forward", out, N * OC, "out");
    if (!bias.empty()) expect_numel("matmul_forward", bias, OC, "bias");
    RPT_DISPATCH(ctx, matmul_forward, out.f32(), in.f32(), weight.f32(), opt_f32(bias), N, IC, OC);
}

void matmul_backward(const OpContext& ctx, Tensor din, Tensor dweight, Tensor dbias, Tensor dout, Tensor in,
                     Tensor weight) {
    expect_device(ctx, "matmul_backward", {&din, &dweight, &dbias, &dout, &in, &weight});
    const int64_t OC = weight.dim(0), IC = weight.dim(1), N = in.numel() / IC;
    expect_numel("matmul_backward", dout, N * OC, "dout");
    expect_numel("matmul_backward", dweight, OC * IC, "dweight");
    if (!din.empty()) expect_numel("matmul_backward", din, N * IC, "din");
    if (!dbias.empty()) expect_numel("matmul_backward", dbias, OC, "dbias");
    RPT_DISPATCH(ctx, matmul_backward, opt_f32_mut(din), dweight.f32(), opt_f32_mut(dbias), dout.f32(), in.f32(),
                 weight.f32(), N, IC, OC);
}

void rope_forward(const OpContext& ctx, Tensor x, Tensor positions, float theta) {
    expect_device(ctx, "rope_forward", {&x, &positions});
    expect(x.ndim == 3 && x.dim(2) % 2 == 0, "rope_forward", "x must be (N, heads, even D), got " + x.describe());
    expect_numel("rope_forward", positions, x.dim(0), "positions");
    RPT_DISPATCH(ctx, rope_forward, x.f32(), positions.i32(), x.dim(0), x.dim(1), x.dim(2), theta);
}

void rope_backward(const OpContext& ctx, Tensor dx, Tensor positions, float theta) {
    expect_device(ctx, "rope_backward", {&dx, &positions});
    expect(dx.ndim == 3 && dx.dim(2) % 2 == 0, "rope_backward", "dx must be (N, heads, even D), got " + dx.describe());
    expect_numel("rope_backward", positions, dx.dim(0), "positions");
    RPT_DISPATCH(ctx, rope_backward, dx.f32(), positions.i32(), dx.dim(0), dx.dim(1), dx.dim(2), theta);
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
    const attn::ForwardArgs args{out.f32(), lse.f32(), q.f32(), k.f32(), v.f32(), seg, s};
    RPT_DISPATCH(ctx, attention_forward, args);
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
    const attn::BackwardArgs args{dq.f32(), dk.f32(), dv.f32(), dout.f32(), q.f32(), k.f32(), v.f32(),
                                  out.f32(), lse.f32(), seg, s};
    RPT_DISPATCH(ctx, attention_backward, args);
}

void swiglu_forward(const OpContext& ctx, Tensor out, Tensor gate, Tensor up) {
    expect_device(ctx, "swiglu_forward", {&out, &gate, &up});
    expect_numel("swiglu_forward", gate, out.numel(), "gate");
    expect_numel("swiglu_forward", up, out.numel(), "up");
    RPT_DISPATCH(ctx, swiglu_forward, out.f32(), gate.f32(), up.f32(), out.numel());
}

void swiglu_backward(const OpContext& ctx, Tensor dgate, Tensor dup, Tensor dout, Tensor gate, Tensor up) {
    expect_device(ctx, "swiglu_backward", {&dgate, &dup, &dout, &gate, &up});
    const int64_t n = dout.numel();
    expect_numel("swiglu_backward", dgate, n, "dgate");
    expect_numel("swiglu_backward", dup, n, "dup");
    expect_numel("swiglu_backward", gate, n, "gate");
    expect_numel("swiglu_backward", up, n, "up");
    RPT_DISPATCH(ctx, swiglu_backward, dgate.f32(), dup.f32(), dout.f32(), gate.f32(), up.f32(), n);
}

void logsoftmax_forward(const OpContext& ctx, Tensor logprob, Tensor entropy, Tensor lse, Tensor logits,
                        Tensor targets, float inv_temperature) {
    expect_device(ctx, "logsoftmax_forward", {&logprob, &entropy, &lse, &logits, &targets});
    const int64_t V = logits.dim(-1), N = logits.numel() / V;
    expect_numel("logsoftmax_forward", logprob, N, "logprob");
    expect_numel("logsoftmax_forward", lse, N, "lse");
    expect_numel("logsoftmax_forward", targets, N, "targets");
    if (!entropy.empty()) expect_numel("logsoftmax_forward", entropy, N, "entropy");
    RPT_DISPATCH(ctx, logsoftmax_forward, logprob.f32(), opt_f32_mut(entropy), lse.f32(), logits.f32(), targets.i32(),
                 N, V, inv_temperature);
}

void logsoftmax_backward(const OpContext& ctx, Tensor logits, Tensor dlogprob, Tensor lse, Tensor targets,
                         float inv_temperature) {
    expect_device(ctx, "logsoftmax_backward", {&logits, &dlogprob, &lse, &targets});
    const int64_t V = logits.dim(-1), N = logits.numel() / V;
    expect_numel("logsoftmax_backward", dlogprob, N, "dlogprob");
    expect_numel("logsoftmax_backward", lse, N, "lse");
    expect_numel("logsoftmax_backward", targets, N, "targets");
    RPT_DISPATCH(ctx, logsoftmax_backward, logits.f32(), dlogprob.f32(), lse.f32(), targets.i32(), N, V,
                 inv_temperature);
}

void topk_entropy(const OpContext& ctx, Tensor entropy, Tensor logits, int k) {
    expect_device(ctx, "topk_entropy", {&entropy, &logits});
    const int64_t V = logits.dim(-1), N = logits.numel() / V;
    expect(k > 0 && k <= V, "topk_entropy", fmt::format("k = {} must be in [1, {}]", k, V));
    expect_numel("topk_entropy", entropy, N, "entropy");
    RPT_DISPATCH(ctx, topk_entropy, entropy.f32(), logits.f32(), N, V, k);
}

void argmax(const OpContext& ctx, Tensor out, Tensor logits) {
    expect_device(ctx, "argmax", {&out, &logits});
    const int64_t V = logits.dim(-1), N = logits.numel() / V;
    expect_numel("argmax", out, N, "out");
    RPT_DISPATCH(ctx, argmax, out.i32(), logits.f32(), N, V);
}

void adamw_update(const OpContext& ctx, Tensor params, Tensor grads, Tensor m, Tensor v, const AdamWSettings& s) {
    expect_device(ctx, "adamw_update", {&params, &grads, &m, &v});
    const int64_t n = params.numel();
    expect_numel("adamw_update", grads, n, "grads");
    expect_numel("adamw_update", m, n, "m");
    expect_numel("adamw_update", v, n, "v");
    expect(s.step >= 1, "adamw_update", "step is 1-based");
    RPT_DISPATCH(ctx, adamw_update, params.f32(), grads.f32(), m.f32(), v.f32(), n, s);
}

double sum_squares(const OpContext& ctx, Tensor x) {
    expect_device(ctx, "sum_squares", {&x});
#ifdef RPT_WITH_CUDA
    if (on_gpu(ctx)) return cuda::sum_squares(ctx.stream, x.f32(), x.numel());
#else
    if (on_gpu(ctx)) fail("sum_squares", "this build has no CUDA backend (rebuild with CUDA=1)");
#endif
    return cpu::sum_squares(x.f32(), x.numel());
}

}  // namespace rpt::ops
