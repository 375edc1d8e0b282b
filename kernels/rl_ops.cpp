// The dispatch point of the RL op API (kernels/rl_ops.h): validate shapes and settings
// once, then call the CPU twin (kernels/cpu/rl_ops_cpu.h) or the CUDA kernel
// (kernels/cuda/rl_ops_cuda.h) with raw pointers. Same pattern as kernels/ops.cpp.
//
// Only shapes and settings are checked here; index values (slots, token ids, lengths)
// live in tensors that may be on the GPU, so the kernels guard them themselves.
#include "kernels/rl_ops.h"

#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "kernels/cpu/rl_ops_cpu.h"
#include "kernels/op_checks.h"
#include "kernels/op_precision.h"
#ifdef RPT_WITH_CUDA
#include "kernels/cuda/rl_ops_cuda.h"
#endif

namespace rpt::ops {
namespace {

using namespace checks;

// The longest marker string (</think>, \boxed{, ...) the reward accepts: markers travel
// to the GPU inside the kernel's parameter block.
constexpr size_t kMaxMarkerBytes = rl_detail::kMaxMarkerBytes;

#ifdef RPT_WITH_CUDA
#define RPT_RL_DISPATCH(ctx, name, ...)                             \
    do {                                                            \
        if (on_gpu(ctx)) cuda::name((ctx).stream, __VA_ARGS__);     \
        else cpu::name(__VA_ARGS__);                                \
    } while (0)
#else
#define RPT_RL_DISPATCH(ctx, name, ...)                                                       \
    do {                                                                                      \
        if (on_gpu(ctx)) fail(#name, "this build has no CUDA backend (rebuild with CUDA=1)"); \
        cpu::name(__VA_ARGS__);                                                               \
    } while (0)
#endif

float* opt_f32(const Tensor& t) { return t.empty() ? nullptr : t.f32(); }

// The suffix pool's layout (kernels/paged_kv.h) from its (N, Tb, KVH, D) view and the
// block table (S, max_blocks) i32, or the contiguous (S, Tmax, KVH, D) without a table.
// The table's pointer is only dereferenced by the kernels (it may be on the GPU).
paged_kv::Layout suffix_layout(const OpContext& ctx, const char* op, const Tensor& pool, Tensor& table) {
    paged_kv::Layout p;
    p.blocks = pool.dim(0);
    p.block_tokens = pool.dim(1);
    if (table.empty()) {
        p.slots = p.blocks;
        return p;
    }
    expect_device(ctx, op, {&table});
    expect_dtype(op, table, DType::i32, "block_table");
    expect(table.ndim == 2, op, "block_table must be (S, max_blocks), got " + table.describe());
    expect(p.block_tokens > 0, op, "a paged suffix needs blocks of at least one token");
    p.table = table.i32();
    p.slots = table.dim(0);
    p.max_blocks = table.dim(1);
    return p;
}

}  // namespace

void kv_cache_append(const OpContext& ctx, Tensor suffix, Tensor kv, Tensor slots, Tensor index,
                     Tensor block_table) {
    constexpr const char* op = "kv_cache_append";
    expect_device(ctx, op, {&suffix, &kv, &slots, &index});
    expect(suffix.ndim == 4, op, "suffix must be (N, Tb, KVH, D) or (S, Tmax, KVH, D), got " + suffix.describe());
    const paged_kv::Layout pool = suffix_layout(ctx, op, suffix, block_table);
    const int64_t KVH = suffix.dim(2), D = suffix.dim(3);
    const int64_t A = slots.numel();
    expect_dtype(op, slots, DType::i32, "slots");
    expect_dtype(op, index, DType::i32, "index");
    expect_numel(op, index, A, "index");
    expect_numel(op, kv, A * KVH * D, "kv");
    expect_f32_or_bf16(op, kv, "kv (the step's rows)");
    expect_f32_or_bf16(op, suffix, "suffix (the cache)");
    if (A == 0) return;
    if (on_gpu(ctx)) {
#ifdef RPT_WITH_CUDA
        return cuda::kv_cache_append(ctx.stream, suffix, kv, slots, index, pool);
#else
        fail(op, "this build has no CUDA backend (rebuild with CUDA=1)");
#endif
    }
    // bf16 rows are widened (exact) and stored as the cache stores fp32 rows: into a bf16
    // cache the rounding of an already-bf16 value is exact, so the bits are copied.
    precision::BF16Staging staging({{&kv, "kv", precision::Allowed::either, precision::Role::in}});
    if (suffix.dtype == DType::bf16)
        cpu::kv_cache_append(suffix.bf16(), kv.f32(), slots.i32(), index.i32(), A, pool, KVH, D);
    else
        cpu::kv_cache_append(suffix.f32(), kv.f32(), slots.i32(), index.i32(), A, pool, KVH, D);
}

void decode_attention(const OpContext& ctx, Tensor out, Tensor q, Tensor prefix_k, Tensor prefix_v, Tensor prefix_len,
                      Tensor suffix_k, Tensor suffix_v, Tensor suffix_len, Tensor slots, int group_size,
                      Tensor block_table) {
    constexpr const char* op = "decode_attention";
    expect_device(ctx, op,
                  {&out, &q, &prefix_k, &prefix_v, &prefix_len, &suffix_k, &suffix_v, &suffix_len, &slots});
    expect(q.ndim == 3, op, "q must be (A, H, D), got " + q.describe());
    expect(prefix_k.ndim == 4 && suffix_k.ndim == 4, op, "prefix_k and suffix_k must be (rows, T, KVH, D)");
    const int64_t A = q.dim(0), H = q.dim(1), D = q.dim(2);
    const int64_t B = prefix_k.dim(0), Tp = prefix_k.dim(1), KVH = prefix_k.dim(2);
    const paged_kv::Layout pool = suffix_layout(ctx, op, suffix_k, block_table);
    expect(group_size > 0, op, fmt::format("group_size = {} must be positive", group_size));
    expect(prefix_k.dim(3) == D && suffix_k.dim(3) == D, op, "prefix_k / suffix_k head dim mismatches q");
    expect(suffix_k.dim(2) == KVH, op, "suffix_k and prefix_k have different KV head counts");
    expect(KVH > 0 && H % KVH == 0, op, fmt::format("{} query heads not divisible by {} kv heads", H, KVH));
    expect(pool.slots == B * group_size, op,
           fmt::format("suffix has {} slots, expected B * group_size = {} * {}", pool.slots, B, group_size));
    expect_numel(op, prefix_v, prefix_k.numel(), "prefix_v");
    expect_numel(op, suffix_v, suffix_k.numel(), "suffix_v");
    expect_numel(op, out, A * H * D, "out");
    expect_numel(op, prefix_len, B, "prefix_len");
    expect_numel(op, suffix_len, A, "suffix_len");
    expect_numel(op, slots, A, "slots");
    expect_dtype(op, prefix_len, DType::i32, "prefix_len");
    expect_dtype(op, suffix_len, DType::i32, "suffix_len");
    expect_dtype(op, slots, DType::i32, "slots");
    // The step's rows are f32 or bf16 (the model's precision), q and out alike.
    expect_f32_or_bf16(op, q, "q");
    expect(out.dtype == q.dtype, op,
           fmt::format("q and out must share one dtype, got {} and {}", dtype_name(q.dtype), dtype_name(out.dtype)));
    // The cache is f32 or bf16 (model/kv_cache.h), one dtype for all four K/V tensors.
    expect_f32_or_bf16(op, prefix_k, "prefix_k");
    const DType kv_dtype = prefix_k.dtype;
    expect(prefix_v.dtype == kv_dtype && suffix_k.dtype == kv_dtype && suffix_v.dtype == kv_dtype, op,
           fmt::format("prefix_k, prefix_v, suffix_k and suffix_v must share one dtype, got {}, {}, {} and {}",
                       dtype_name(kv_dtype), dtype_name(prefix_v.dtype), dtype_name(suffix_k.dtype),
                       dtype_name(suffix_v.dtype)));
    if (A == 0) return;
    if (on_gpu(ctx)) {
#ifdef RPT_WITH_CUDA
        return cuda::decode_attention(ctx.stream, {out, q, prefix_k, prefix_v, prefix_len, suffix_k, suffix_v,
                                                   suffix_len, slots, pool, group_size});
#else
        fail(op, "this build has no CUDA backend (rebuild with CUDA=1)");
#endif
    }
    // bf16 rows: the fp32 twin on q widened (exact), out rounded once at the store (the
    // emulation of kernels/ops.h); the cache is read in its own dtype, widened per element.
    using precision::Allowed;
    using precision::Role;
    precision::BF16Staging staging({{&out, "out", Allowed::either, Role::out}, {&q, "q", Allowed::either, Role::in}});
    if (kv_dtype == DType::bf16)
        cpu::decode_attention(out.f32(), q.f32(), prefix_k.bf16(), prefix_v.bf16(), prefix_len.i32(), suffix_k.bf16(),
                              suffix_v.bf16(), suffix_len.i32(), slots.i32(), A, B, Tp, pool, H, KVH, D,
                              static_cast<int64_t>(group_size));
    else
        cpu::decode_attention(out.f32(), q.f32(), prefix_k.f32(), prefix_v.f32(), prefix_len.i32(), suffix_k.f32(),
                              suffix_v.f32(), suffix_len.i32(), slots.i32(), A, B, Tp, pool, H, KVH, D,
                              static_cast<int64_t>(group_size));
    staging.commit();
}

void sample_tokens(const OpContext& ctx, Tensor tokens, Tensor logprob, Tensor logits, Tensor sequence_ids,
                   Tensor positions, const SamplingSettings& s) {
    constexpr const char* op = "sample_tokens";
    expect_device(ctx, op, {&tokens, &logprob, &logits, &sequence_ids, &positions});
    expect(logits.ndim >= 1, op, "logits must be (A, V)");
    const int64_t V = logits.dim(-1), A = logits.numel() / V;
    expect(V > 0, op, "empty vocabulary");
    expect(V <= INT32_MAX, op, "vocabulary does not fit int32 token ids");
    expect_numel(op, tokens, A, "tokens");
    expect_numel(op, logprob, A, "logprob");
    expect_numel(op, sequence_ids, A, "sequence_ids");
    expect_numel(op, positions, A, "positions");
    expect_dtype(op, tokens, DType::i32, "tokens");
    expect_dtype(op, sequence_ids, DType::i32, "sequence_ids");
    expect_dtype(op, positions, DType::i32, "positions");
    expect(s.top_p > 0.0f && s.top_p <= 1.0f, op, fmt::format("top_p = {} must be in (0, 1]", s.top_p));
    expect(s.top_k >= 0, op, fmt::format("top_k = {} must be >= 0", s.top_k));
    if (A == 0) return;
    RPT_RL_DISPATCH(ctx, sample_tokens, tokens.i32(), logprob.f32(), logits.f32(), sequence_ids.i32(),
                    positions.i32(), A, V, s);
}

void prefix_reward(const OpContext& ctx, Tensor rewards, Tensor prediction_len, const RewardInputs& in,
                   int group_size, const RewardFormat& format) {
    constexpr const char* op = "prefix_reward";
    const Tensor &response_tokens = in.response_tokens, &response_len = in.response_len;
    const Tensor &token_offsets = in.token_offsets, &token_bytes = in.token_bytes;
    const Tensor &truth_bytes = in.truth_bytes, &truth_len = in.truth_len;
    const Tensor &truth_boundaries = in.truth_boundaries, &boundary_count = in.boundary_count;
    expect_device(ctx, op,
                  {&rewards, &prediction_len, &response_tokens, &response_len, &token_offsets, &token_bytes,
                   &truth_bytes, &truth_len, &truth_boundaries, &boundary_count});
    expect(response_tokens.ndim == 2, op, "response_tokens must be (S, R), got " + response_tokens.describe());
    expect(truth_bytes.ndim == 2, op, "truth_bytes must be (B, Lmax), got " + truth_bytes.describe());
    expect(truth_boundaries.ndim == 2, op, "truth_boundaries must be (B, Kmax), got " + truth_boundaries.describe());
    const int64_t S = response_tokens.dim(0), R = response_tokens.dim(1);
    const int64_t B = truth_bytes.dim(0), Lmax = truth_bytes.dim(1), Kmax = truth_boundaries.dim(1);
    const int64_t V = token_offsets.numel() - 1;
    expect(group_size > 0, op, fmt::format("group_size = {} must be positive", group_size));
    expect(S == B * group_size, op, fmt::format("{} slots, expected B * group_size = {} * {}", S, B, group_size));
    expect(V > 0, op, "token_offsets must hold V + 1 >= 2 entries");
    expect_numel(op, rewards, S, "rewards");
    expect_numel(op, prediction_len, S, "prediction_len");
    expect_numel(op, response_len, S, "response_len");
    expect_numel(op, truth_len, B, "truth_len");
    expect_numel(op, boundary_count, B, "boundary_count");
    expect(truth_boundaries.dim(0) == B, op, "truth_boundaries has a different B than truth_bytes");
    expect_dtype(op, rewards, DType::f32, "rewards");
    expect_dtype(op, prediction_len, DType::i32, "prediction_len");
    expect_dtype(op, response_tokens, DType::i32, "response_tokens");
    expect_dtype(op, response_len, DType::i32, "response_len");
    expect_dtype(op, token_offsets, DType::i32, "token_offsets");
    expect_dtype(op, token_bytes, DType::u8, "token_bytes");
    expect_dtype(op, truth_bytes, DType::u8, "truth_bytes");
    expect_dtype(op, truth_len, DType::i32, "truth_len");
    expect_dtype(op, truth_boundaries, DType::i32, "truth_boundaries");
    expect_dtype(op, boundary_count, DType::i32, "boundary_count");
    expect(format.answer_open && format.answer_open[0], op, "answer_open must be a non-empty string");
    const size_t open_len = std::strlen(format.answer_open);
    expect(open_len <= kMaxMarkerBytes, op, fmt::format("answer_open longer than {} bytes", kMaxMarkerBytes));
    if (format.think_close)
        expect(std::strlen(format.think_close) <= kMaxMarkerBytes, op,
               fmt::format("think_close longer than {} bytes", kMaxMarkerBytes));
    if (format.brace_matched) {
        expect(format.answer_open[open_len - 1] == '{', op, "with brace_matched, answer_open must end with '{'");
    } else {
        expect(format.answer_close && format.answer_close[0], op, "answer_close must be a non-empty string");
        expect(std::strlen(format.answer_close) <= kMaxMarkerBytes, op,
               fmt::format("answer_close longer than {} bytes", kMaxMarkerBytes));
    }
    expect(format.max_response_bytes > 0, op,
           fmt::format("max_response_bytes = {} must be positive", format.max_response_bytes));
    uint8_t* scratch = nullptr;
    if (on_gpu(ctx) && format.max_response_bytes > rl_detail::kMaxSharedResponseBytes) {
        expect_device(ctx, op, {&in.scratch});
        expect_dtype(op, in.scratch, DType::u8, "scratch");
        expect(in.scratch.numel() >= S * int64_t(format.max_response_bytes), op,
               fmt::format("responses of {} bytes exceed shared memory ({} bytes): scratch must hold S * {} bytes, "
                           "got {}", format.max_response_bytes, rl_detail::kMaxSharedResponseBytes,
                           format.max_response_bytes, in.scratch.describe()));
        scratch = in.scratch.u8();
    }
    const float* token_logprobs = nullptr;
    if (rl_detail::is_dense(format.kind)) {
        expect_device(ctx, op, {&in.token_logprobs});
        expect_dtype(op, in.token_logprobs, DType::f32, "token_logprobs");
        expect(in.token_logprobs.numel() == S * R, op,
               "the dense rewards need token_logprobs (S, R), got " + in.token_logprobs.describe());
        token_logprobs = in.token_logprobs.f32();
    }
    if (S == 0) return;
    const rl_detail::RewardArgs args{rewards.f32(),          prediction_len.i32(),  response_tokens.i32(),
                                     response_len.i32(),     token_offsets.i32(),   token_bytes.u8(),
                                     truth_bytes.u8(),       truth_len.i32(),       truth_boundaries.i32(),
                                     boundary_count.i32(),   S,                     R,
                                     V,                      Lmax,                  Kmax,
                                     int64_t(group_size),    rl_detail::make_reward_markers(format),
                                     scratch,                token_logprobs};
    RPT_RL_DISPATCH(ctx, prefix_reward, args);
}

void grpo_advantages(const OpContext& ctx, Tensor advantages, Tensor rewards, int group_size, float eps,
                     bool scale_by_std) {
    constexpr const char* op = "grpo_advantages";
    expect_device(ctx, op, {&advantages, &rewards});
    const int64_t S = rewards.numel();
    expect(group_size > 0, op, fmt::format("group_size = {} must be positive", group_size));
    expect(S % group_size == 0, op, fmt::format("{} rewards are not whole groups of {}", S, group_size));
    expect_numel(op, advantages, S, "advantages");
    if (S == 0) return;
    RPT_RL_DISPATCH(ctx, grpo_advantages, advantages.f32(), rewards.f32(), S, static_cast<int64_t>(group_size), eps,
                    scale_by_std);
}

void policy_loss(const OpContext& ctx, Tensor coef, Tensor token_loss, Tensor clipped, Tensor kl, Tensor logp,
                 Tensor logp_old, Tensor logp_ref, Tensor advantages, Tensor mask, const PolicyLossSettings& s) {
    constexpr const char* op = "policy_loss";
    expect_device(ctx, op, {&coef, &token_loss, &clipped, &kl, &logp, &logp_old, &logp_ref, &advantages, &mask});
    expect(logp.ndim == 2, op, "logp must be (S, R), got " + logp.describe());
    const int64_t S = logp.dim(0), R = logp.dim(1), n = S * R;
    expect_numel(op, coef, n, "coef");
    expect_numel(op, token_loss, n, "token_loss");
    if (!clipped.empty()) expect_numel(op, clipped, n, "clipped");
    if (!kl.empty()) expect_numel(op, kl, n, "kl");
    expect_numel(op, logp_old, n, "logp_old");
    if (!logp_ref.empty()) expect_numel(op, logp_ref, n, "logp_ref");
    expect_numel(op, advantages, S, "advantages");
    expect_numel(op, mask, n, "mask");
    expect(s.kl_beta == 0.0f || !logp_ref.empty(), op, "kl_beta != 0 needs logp_ref");
    expect(s.clip_low >= 0.0f && s.clip_low <= 1.0f && s.clip_high >= 0.0f, op,
           "clip_low must be in [0, 1] and clip_high >= 0");
    expect(s.total_tokens > 0 && s.total_sequences > 0 && s.max_response_tokens > 0, op,
           "total_tokens, total_sequences and max_response_tokens must be positive");
    if (n == 0) return;
    RPT_RL_DISPATCH(ctx, policy_loss, coef.f32(), token_loss.f32(), opt_f32(clipped), opt_f32(kl), logp.f32(),
                    logp_old.f32(), opt_f32(logp_ref), advantages.f32(), mask.f32(), S, R, s);
}

namespace {
// The checks gather_tokens and scatter_tokens share: index (M, R) i32 and values of as
// many f32 elements, per_token (N) f32.
void check_token_map(const OpContext& ctx, const char* op, const Tensor& per_token, const Tensor& values,
                     const Tensor& index) {
    expect_device(ctx, op, {&per_token, &values, &index});
    expect(index.dtype == DType::i32, op, "index must be i32, got " + index.describe());
    expect(values.dtype == DType::f32 && per_token.dtype == DType::f32, op,
           "values and per_token must be f32, got " + values.describe() + " and " + per_token.describe());
    expect_numel(op, values, index.numel(), "the per-response tensor");
}
}  // namespace

void gather_tokens(const OpContext& ctx, Tensor out, Tensor per_token, Tensor index) {
    check_token_map(ctx, "gather_tokens", per_token, out, index);
    if (index.numel() == 0) return;
    RPT_RL_DISPATCH(ctx, gather_tokens, out.f32(), per_token.f32(), index.i32(), index.numel());
}

void scatter_tokens(const OpContext& ctx, Tensor per_token, Tensor values, Tensor index) {
    check_token_map(ctx, "scatter_tokens", per_token, values, index);
    if (index.numel() == 0) return;
    RPT_RL_DISPATCH(ctx, scatter_tokens, per_token.f32(), values.f32(), index.i32(), index.numel());
}

}  // namespace rpt::ops
