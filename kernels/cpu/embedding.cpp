// Token embedding: a row gather forward, a row scatter-add backward.
//
// Forward copies row tokens[n] of wte into row n of out (threads over rows).
// Backward adds row n of dout into row tokens[n] of dwte. Two rows can share a token,
// so threads do not split rows (that would race or need atomics); they split the
// channels instead: each thread owns a column range of dwte and walks all rows in
// order. No atomics, and every element sums its contributions in row order, so the
// result is the same bits for any thread count.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cpu/cpu_ops.h"

namespace rpt::cpu {
namespace {

// Channels per backward work item: a few cache lines of each row, so threads stay
// balanced even for narrow models.
constexpr int64_t kChannelBlock = 64;

// Out-of-range ids would read or write outside wte: refuse them before touching memory.
void check_tokens(const char* op, const int32_t* tokens, int64_t N, int64_t V) {
    for (int64_t n = 0; n < N; ++n)
        if (tokens[n] < 0 || tokens[n] >= V)
            throw std::out_of_range(std::string(op) + ": token id " + std::to_string(tokens[n]) + " at row " +
                                    std::to_string(n) + " is outside the vocabulary of " + std::to_string(V));
}

}  // namespace

void embedding_forward(float* out, const int32_t* tokens, const float* wte, int64_t N, int64_t V, int64_t C) {
    check_tokens("embedding_forward", tokens, N, V);
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) std::copy_n(wte + tokens[n] * C, C, out + n * C);
}

void embedding_backward(float* dwte, const float* dout, const int32_t* tokens, int64_t N, int64_t V, int64_t C) {
    check_tokens("embedding_backward", tokens, N, V);
#pragma omp parallel for schedule(static)
    for (int64_t c0 = 0; c0 < C; c0 += kChannelBlock) {
        const int64_t width = std::min(kChannelBlock, C - c0);
        for (int64_t n = 0; n < N; ++n) {
            float* __restrict dst = dwte + tokens[n] * C + c0;
            const float* __restrict src = dout + n * C + c0;
            for (int64_t c = 0; c < width; ++c) dst[c] += src[c];
        }
    }
}

}  // namespace rpt::cpu
