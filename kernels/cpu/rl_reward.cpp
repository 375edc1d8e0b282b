// The prefix-matching reward (DESIGN §1.3, paper eq. 3), CPU twin.
//
// Per slot: detokenise the response with the byte table (token_offsets, token_bytes) into
// at most max_response_bytes bytes; locate the prediction (after the last think_close,
// inside the last answer_open and its answer_close, or its matching brace for the
// \boxed{...} template); then reward 1 iff the prediction is a non-empty prefix of the
// ground-truth bytes that ends exactly on one of the document's own token boundaries
// (RewardKind::prefix; the Appendix A variants judge the first token only, and the dense
// ones give a wrong prediction the sampler's probability of its first token).
// The label is never re-tokenised: boundaries come with the truth.
//
// Cost is linear in the response bytes; slots are independent and run in parallel.
// The marker search and the comparison use the same helpers (kernels/cpu/rl_ops_cpu.h)
// as the CUDA kernel, so both backends judge identically.
#include <algorithm>
#include <vector>

#include "kernels/cpu/rl_ops_cpu.h"

namespace rpt::cpu {
namespace {

using rl_detail::marker_at;
using rl_detail::RewardMarkers;

// The last start position >= from where `marker` occurs, or -1.
int last_marker(const uint8_t* y, int n, int from, const char* marker, int len) {
    for (int pos = n - len; pos >= from; --pos)
        if (marker_at(y, n, pos, marker, len)) return pos;
    return -1;
}

// The first start position >= from where `marker` occurs, or -1.
int first_marker(const uint8_t* y, int n, int from, const char* marker, int len) {
    for (int pos = from; pos + len <= n; ++pos)
        if (marker_at(y, n, pos, marker, len)) return pos;
    return -1;
}

// Detokenises up to max_bytes bytes of a response; returns the byte count. Token ids
// outside the vocabulary contribute no bytes.
int detokenise(uint8_t* y, int max_bytes, const int32_t* tokens, int64_t count, const int32_t* token_offsets,
               const uint8_t* token_bytes, int64_t V) {
    int n = 0;
    for (int64_t i = 0; i < count && n < max_bytes; ++i) {
        const int32_t t = tokens[i];
        if (t < 0 || t >= V) continue;
        const int32_t begin = token_offsets[t];
        const int len = std::min(token_offsets[t + 1] - begin, max_bytes - n);
        std::copy(token_bytes + begin, token_bytes + begin + std::max(len, 0), y + n);
        n += std::max(len, 0);
    }
    return n;
}

// The index of the response token whose bytes hold byte `at` of the detokenised
// response (the same walk as detokenise), or -1.
int64_t token_holding_byte(int at, const int32_t* tokens, int64_t count, const int32_t* token_offsets, int64_t V) {
    int n = 0;
    for (int64_t i = 0; i < count; ++i) {
        const int32_t t = tokens[i];
        const int len = t < 0 || t >= V ? 0 : std::max(token_offsets[t + 1] - token_offsets[t], 0);
        if (len > 0 && n <= at && at < n + len) return i;
        n += len;
    }
    return -1;
}

}  // namespace

void prefix_reward(const rl_detail::RewardArgs& p) {
    float* const rewards = p.rewards;
    int32_t* const prediction_len = p.prediction_len;
    const int32_t *response_tokens = p.response_tokens, *response_len = p.response_len;
    const int32_t* token_offsets = p.token_offsets;
    const uint8_t *token_bytes = p.token_bytes, *truth_bytes = p.truth_bytes;
    const int32_t *truth_len = p.truth_len, *truth_boundaries = p.truth_boundaries, *boundary_count = p.boundary_count;
    const int64_t S = p.S, R = p.R, V = p.V, Lmax = p.Lmax, Kmax = p.Kmax, group_size = p.group_size;
    const RewardMarkers& mk = p.markers;
#pragma omp parallel
    {
        std::vector<uint8_t> bytes(static_cast<size_t>(mk.max_response_bytes));
#pragma omp for schedule(dynamic, 1)
        for (int64_t s = 0; s < S; ++s) {
            const int64_t g = s / group_size;
            const int64_t count = std::clamp<int64_t>(response_len[s], 0, R);
            uint8_t* y = bytes.data();
            const int n = detokenise(y, mk.max_response_bytes, response_tokens + s * R, count, token_offsets,
                                     token_bytes, V);
            // Where the answer may start: after the last think_close (required if given).
            int from = 0;
            if (mk.think_len > 0) {
                const int think = last_marker(y, n, 0, mk.think_close, mk.think_len);
                from = think < 0 ? -1 : think + mk.think_len;
            }
            int begin = -1, end = -1;
            if (from >= 0) {
                const int open = last_marker(y, n, from, mk.answer_open, mk.open_len);
                if (open >= 0) {
                    begin = open + mk.open_len;
                    end = mk.brace_matched ? rl_detail::matching_brace(y, n, begin)
                                           : first_marker(y, n, begin, mk.answer_close, mk.close_len);
                }
            }
            if (begin < 0 || end < 0) {
                prediction_len[s] = -1;
                rewards[s] = 0.0f;
                continue;
            }
            const int len = end - begin;
            const int tl = static_cast<int>(std::clamp<int64_t>(truth_len[g], 0, Lmax));
            const int bc = static_cast<int>(std::clamp<int64_t>(boundary_count[g], 0, Kmax));
            prediction_len[s] = len;
            const bool right = rl_detail::prediction_right(mk.kind, y + begin, len, truth_bytes + g * Lmax, tl,
                                                           truth_boundaries + g * Kmax, bc);
            float r = right ? 1.0f : 0.0f;
            if (!right && len > 0 && rl_detail::is_dense(mk.kind)) {
                const int64_t i = token_holding_byte(begin, response_tokens + s * R, count, token_offsets, V);
                if (i >= 0) r = rl_detail::dense_wrong_reward(p.token_logprobs[s * R + i]);
            }
            rewards[s] = r;
        }
    }
    if (mk.kind == ops::RewardKind::conditional_dense)
        for (int64_t g = 0; g < S / group_size; ++g) rl_detail::condition_group(rewards + g * group_size, group_size);
}

}  // namespace rpt::cpu
