// CPU twins of the RL ops in kernels/rl_ops.h: raw-pointer functions, OpenMP across rows,
// deterministic (every output element is produced by one thread in a fixed order).
// Shapes and semantics are those documented in kernels/rl_ops.h.
//
// The `rl_detail` helpers at the bottom are the per-element formulas both backends share
// (the CUDA kernels in kernels/cuda/rl_*.cu include this header), so that the CPU twin
// and the GPU kernel evaluate literally the same expressions: the sampler's RNG key and
// ordered-float keys, and the policy-loss token math.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/paged_kv.h"
#include "kernels/rl_ops.h"
#include "kernels/rng.h"

namespace rpt::rl_detail {
struct RewardArgs;  // below, with the reward helpers
}  // namespace rpt::rl_detail

namespace rpt::cpu {

// suffix: the pool (N, Tb, KVH, D) addressed by `pool` (kernels/paged_kv.h; without a
// table the contiguous (S, Tmax, KVH, D)): suffix[slot slots[a], token index[a]] = kv[a]
// (A, KVH, D). Throws std::out_of_range on a slot, index or block outside the cache
// (checked before copying). The uint16_t overload stores bf16 bits, kv rounded to
// nearest even.
void kv_cache_append(float* suffix, const float* kv, const int32_t* slots, const int32_t* index, int64_t A,
                     const paged_kv::Layout& pool, int64_t KVH, int64_t D);
void kv_cache_append(uint16_t* suffix, const float* kv, const int32_t* slots, const int32_t* index, int64_t A,
                     const paged_kv::Layout& pool, int64_t KVH, int64_t D);

// The uint16_t overload reads a bf16 cache (all four K/V tensors), widened to fp32.
// suffix_k/v are pools addressed by `pool`, as for kv_cache_append.
void decode_attention(float* out, const float* q, const float* prefix_k, const float* prefix_v,
                      const int32_t* prefix_len, const float* suffix_k, const float* suffix_v,
                      const int32_t* suffix_len, const int32_t* slots, int64_t A, int64_t B, int64_t Tp,
                      const paged_kv::Layout& pool, int64_t H, int64_t KVH, int64_t D, int64_t group_size);
void decode_attention(float* out, const float* q, const uint16_t* prefix_k, const uint16_t* prefix_v,
                      const int32_t* prefix_len, const uint16_t* suffix_k, const uint16_t* suffix_v,
                      const int32_t* suffix_len, const int32_t* slots, int64_t A, int64_t B, int64_t Tp,
                      const paged_kv::Layout& pool, int64_t H, int64_t KVH, int64_t D, int64_t group_size);

void sample_tokens(int32_t* tokens, float* logprob, const float* logits, const int32_t* sequence_ids,
                   const int32_t* positions, int64_t A, int64_t V, const ops::SamplingSettings& s);

void prefix_reward(const rl_detail::RewardArgs& p);

void grpo_advantages(float* advantages, const float* rewards, int64_t S, int64_t group_size, float eps,
                     bool scale_by_std);

// clipped and kl may be null; logp_ref may be null when s.kl_beta == 0.
void policy_loss(float* coef, float* token_loss, float* clipped, float* kl, const float* logp, const float* logp_old,
                 const float* logp_ref, const float* advantages, const float* mask, int64_t S, int64_t R,
                 const ops::PolicyLossSettings& s);

// n = M * R entries of index (kernels/rl_ops.h, ops::gather_tokens / scatter_tokens).
void gather_tokens(float* out, const float* per_token, const int32_t* index, int64_t n);
void scatter_tokens(float* per_token, const float* values, const int32_t* index, int64_t n);

}  // namespace rpt::cpu

namespace rpt::rl_detail {

// ---- sampling ----------------------------------------------------------------------
// The row's uniform in [0, 1): a pure function of (seed, step, sequence id, position).
// Ids are widened through uint32 so a negative id hashes the same on both backends.
RPT_HOST_DEVICE inline float sample_uniform(uint64_t seed, uint64_t step, int32_t sequence_id, int32_t position) {
    return uniform_from_bits(hash_keys(seed, step, static_cast<uint64_t>(static_cast<uint32_t>(sequence_id)),
                                       static_cast<uint64_t>(static_cast<uint32_t>(position))));
}

// A uint32 that orders like the float: thresholds for top-k/top-p are found by bisection
// on these keys, which is exact (at most 32 halvings) and needs no sort.
RPT_HOST_DEVICE inline uint32_t ordered_key(float x) {
#ifdef __CUDA_ARCH__
    const uint32_t bits = __float_as_uint(x);
#else
    uint32_t bits;
    static_assert(sizeof(bits) == sizeof(x), "float is 32 bits");
    std::memcpy(&bits, &x, sizeof(bits));
#endif
    return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

// The largest key t in [lo, hi] with keep(t) true, given keep(lo) is true and keep is
// monotone (true up to some key, false above it). On the GPU every thread of a block runs
// the same steps (keep is a block reduction there).
template <typename Keep>
RPT_HOST_DEVICE uint32_t bisect_threshold(uint32_t lo, uint32_t hi, Keep&& keep) {
    if (keep(hi)) return hi;
    while (hi - lo > 1) {
        const uint32_t mid = lo + (hi - lo) / 2;
        if (keep(mid)) lo = mid;
        else hi = mid;
    }
    return lo;
}

// ---- prefix reward -------------------------------------------------------------------
// Markers travel to the GPU by value inside the kernel's parameter block, so their
// length is bounded. The GPU kernel detokenises a response into shared memory when it
// fits this many bytes (an opt-in size both sm_80 and sm_90 grant), and into the
// caller's global scratch (RewardInputs::scratch) when it does not.
constexpr size_t kMaxMarkerBytes = 32;
constexpr int kMaxSharedResponseBytes = ops::kMaxSharedResponseBytes;

struct RewardMarkers {
    char think_close[kMaxMarkerBytes];
    char answer_open[kMaxMarkerBytes];
    char answer_close[kMaxMarkerBytes];
    int think_len = 0;   // 0: no </think> needed, the answer is searched from the start
    int open_len = 0;
    int close_len = 0;   // unused when brace_matched
    bool brace_matched = false;
    int max_response_bytes = 0;
    ops::RewardKind kind = ops::RewardKind::prefix;
};

// From a validated RewardFormat (see kernels/rl_ops.cpp).
inline RewardMarkers make_reward_markers(const ops::RewardFormat& f) {
    RewardMarkers m{};
    auto put = [](char* dst, const char* src) {
        const size_t n = src ? std::strlen(src) : 0;
        if (n) std::memcpy(dst, src, n);
        return static_cast<int>(n);
    };
    m.think_len = put(m.think_close, f.think_close);
    m.open_len = put(m.answer_open, f.answer_open);
    m.close_len = f.brace_matched ? 0 : put(m.answer_close, f.answer_close);
    m.brace_matched = f.brace_matched;
    m.max_response_bytes = f.max_response_bytes;
    m.kind = f.kind;
    return m;
}

// The raw pointers and sizes of ops::prefix_reward (shapes in kernels/rl_ops.h), as the
// CPU twin reads them and the CUDA kernel receives them by value.
struct RewardArgs {
    float* rewards;                   // (S)
    int32_t* prediction_len;          // (S)
    const int32_t* response_tokens;   // (S, R)
    const int32_t* response_len;      // (S)
    const int32_t* token_offsets;     // (V + 1)
    const uint8_t* token_bytes;       // (nbytes)
    const uint8_t* truth_bytes;       // (B, Lmax)
    const int32_t* truth_len;         // (B)
    const int32_t* truth_boundaries;  // (B, Kmax)
    const int32_t* boundary_count;    // (B)
    int64_t S, R, V, Lmax, Kmax, group_size;
    RewardMarkers markers;
    uint8_t* scratch;                 // (S, max_response_bytes) or null: the GPU kernel's decode buffer
    const float* token_logprobs;      // (S, R) or null (prefix and first_token)
};

// Whether `marker` (len bytes) occurs in y (n bytes) at position pos.
RPT_HOST_DEVICE inline bool marker_at(const uint8_t* y, int n, int pos, const char* marker, int len) {
    if (pos < 0 || pos + len > n) return false;
    for (int i = 0; i < len; ++i)
        if (y[pos + i] != static_cast<uint8_t>(marker[i])) return false;
    return true;
}

// The end of the \boxed{...} answer that starts at `begin` (just after its '{'): the
// index of the '}' that brings the brace depth back to zero, or -1 if it never closes.
RPT_HOST_DEVICE inline int matching_brace(const uint8_t* y, int n, int begin) {
    int depth = 1;
    for (int i = begin; i < n; ++i) {
        if (y[i] == '{') ++depth;
        else if (y[i] == '}' && --depth == 0) return i;
    }
    return -1;
}

// reward = 1 iff the prediction y[begin, begin+len) is a non-empty prefix of the truth
// that ends on one of its token boundaries (paper eq. 3).
RPT_HOST_DEVICE inline bool prefix_match(const uint8_t* y, int len, const uint8_t* truth, int truth_len,
                                         const int32_t* boundaries, int boundary_count) {
    if (len <= 0 || len > truth_len) return false;
    for (int i = 0; i < len; ++i)
        if (y[i] != truth[i]) return false;
    for (int k = 0; k < boundary_count; ++k)
        if (boundaries[k] == len) return true;
    return false;
}

// Whether the prediction's first token is right: it starts with the bytes of the true
// next token (boundaries[0] of them).
RPT_HOST_DEVICE inline bool first_token_match(const uint8_t* y, int len, const uint8_t* truth, int truth_len,
                                              const int32_t* boundaries, int boundary_count) {
    if (boundary_count <= 0) return false;
    const int b0 = boundaries[0];
    if (b0 <= 0 || b0 > truth_len || len < b0) return false;
    for (int i = 0; i < b0; ++i)
        if (y[i] != truth[i]) return false;
    return true;
}

RPT_HOST_DEVICE inline bool is_dense(ops::RewardKind kind) {
    return kind == ops::RewardKind::dense || kind == ops::RewardKind::conditional_dense;
}

// Whether the located prediction is right under `kind` (prefix: eq. 3; else first token).
RPT_HOST_DEVICE inline bool prediction_right(ops::RewardKind kind, const uint8_t* y, int len, const uint8_t* truth,
                                             int truth_len, const int32_t* boundaries, int boundary_count) {
    return kind == ops::RewardKind::prefix ? prefix_match(y, len, truth, truth_len, boundaries, boundary_count)
                                           : first_token_match(y, len, truth, truth_len, boundaries, boundary_count);
}

// A wrong prediction's dense reward: P(y[0]) = exp(logprob), below 1.
RPT_HOST_DEVICE inline float dense_wrong_reward(float logprob) {
    const float p = expf(logprob);
    return p < ops::kDenseBelowOne ? p : ops::kDenseBelowOne;
}

// conditional_dense, per group of G rewards: all 0 unless one of them is 1 (right).
RPT_HOST_DEVICE inline void condition_group(float* r, int64_t G) {
    bool any_right = false;
    for (int64_t i = 0; i < G; ++i) any_right = any_right || r[i] == 1.0f;
    if (!any_right)
        for (int64_t i = 0; i < G; ++i) r[i] = 0.0f;
}

// ---- policy loss -------------------------------------------------------------------
struct TokenLoss {
    float loss;      // l = -min(rho A, clip(rho) A) + beta k3
    float dloss;     // dl/dlogp
    float clipped;   // 1 when the clipped branch is active (no policy-gradient term)
    float kl;        // k3
};

// GRPO advantages of one group of G rewards (G >= 1), in double: A_i = (r_i - mean) /
// (unbiased std + eps), or r_i - mean without std scaling; a group of one gets 0.
RPT_HOST_DEVICE inline void group_advantages(float* adv, const float* r, int64_t G, float eps, bool scale_by_std) {
    if (G == 1) {
        adv[0] = 0.0f;
        return;
    }
    double sum = 0.0;
    for (int64_t i = 0; i < G; ++i) sum += r[i];
    const double mean = sum / static_cast<double>(G);
    double ss = 0.0;
    for (int64_t i = 0; i < G; ++i) ss += (r[i] - mean) * (r[i] - mean);
    const double denom = scale_by_std ? sqrt(ss / static_cast<double>(G - 1)) + eps : 1.0;
    for (int64_t i = 0; i < G; ++i) adv[i] = static_cast<float>((r[i] - mean) / denom);
}

// One token's PPO-clip loss with the k3 KL estimator (DESIGN §1.4). `has_ref` is false
// when there is no reference log-prob (then k3 = 0).
RPT_HOST_DEVICE inline TokenLoss token_loss(float logp, float logp_old, float logp_ref, bool has_ref, float advantage,
                                            float clip_low, float clip_high, float kl_beta) {
    TokenLoss t;
    const float rho = expf(logp - logp_old);
    const float lo = 1.0f - clip_low, hi = 1.0f + clip_high;
    const float rho_clipped = rho < lo ? lo : (rho > hi ? hi : rho);
    const float unclipped_obj = rho * advantage, clipped_obj = rho_clipped * advantage;
    // The objective takes the min; the clipped branch is constant in logp, so it only
    // matters (and kills the gradient) where it is strictly the smaller one.
    const bool use_clipped = clipped_obj < unclipped_obj;
    t.clipped = use_clipped ? 1.0f : 0.0f;
    t.loss = -(use_clipped ? clipped_obj : unclipped_obj);
    t.dloss = use_clipped ? 0.0f : -unclipped_obj;  // d(-rho A)/dlogp = -rho A
    t.kl = 0.0f;
    if (has_ref) {
        const float d = logp_ref - logp;
        const float e = expf(d);
        t.kl = e - d - 1.0f;
        t.loss += kl_beta * t.kl;
        t.dloss += kl_beta * (1.0f - e);  // dk3/dlogp = -e + 1
    }
    return t;
}

// The aggregation weight of every token of a sequence with `tokens` response tokens.
RPT_HOST_DEVICE inline float aggregation_weight(ops::LossAggregation aggregation, float tokens, int64_t total_tokens,
                                                int64_t total_sequences, int64_t max_response_tokens) {
    switch (aggregation) {
        case ops::LossAggregation::token_mean: return 1.0f / static_cast<float>(total_tokens);
        case ops::LossAggregation::seq_mean_token_mean:
            return tokens > 0.0f ? 1.0f / (static_cast<float>(total_sequences) * tokens) : 0.0f;
        case ops::LossAggregation::constant_normalizer:
            return 1.0f / (static_cast<float>(total_sequences) * static_cast<float>(max_response_tokens));
    }
    return 0.0f;
}

}  // namespace rpt::rl_detail
