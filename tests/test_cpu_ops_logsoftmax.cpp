// CPU fused log-softmax through the op API: lse/logprob/entropy against float64 (with
// temperature, ignored targets, several vocabulary chunks), the backward against finite
// differences, top-k entropy and argmax.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "kernels/ops.h"
#include "kernels/ref/logsoftmax.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

using test::rel_error;
using Vec = std::vector<float>;
using DVec = std::vector<double>;
using IVec = std::vector<int32_t>;

constexpr double kTol = 1e-5;
const OpContext kCpu{};

using RefRows = ref::LogsoftmaxRows;

RefRows ref_logsoftmax(const DVec& logits, const IVec& targets, int64_t N, int64_t V, double inv_t) {
    return ref::logsoftmax_forward(logits, targets, N, V, inv_t);
}

TEST(CpuOpsLogsoftmax, ForwardMatchesFloat64) {
    for (auto [N, V] : {std::pair<int64_t, int64_t>{7, 13}, {5, 5000}, {3, 2049}, {2, 1}}) {
        for (float inv_t : {1.0f, 1.0f / 0.8f}) {
            Vec logits = test::random_floats(N * V, 1, -8.0f, 8.0f);
            IVec targets = test::random_ints(N, 2, 0, static_cast<int32_t>(V - 1));
            targets[0] = -1;  // ignored position
            Vec lp = test::poisoned(N), ent = test::poisoned(N), lse = test::poisoned(N);
            ops::logsoftmax_forward(kCpu, cpu_f32(lp.data(), {N}), cpu_f32(ent.data(), {N}), cpu_f32(lse.data(), {N}),
                                    cpu_f32(logits.data(), {N, V}), cpu_i32(targets.data(), {N}), inv_t);
            const RefRows ref = ref_logsoftmax(test::to_double(logits), targets, N, V, inv_t);
            EXPECT_EQ(lp[0], 0.0f);
            EXPECT_LT(rel_error(lp, ref.logprob), kTol) << N << "x" << V;
            EXPECT_LT(rel_error(lse, ref.lse), kTol) << N << "x" << V;
            if (V > 1) {
                EXPECT_LT(rel_error(ent, ref.entropy), kTol) << N << "x" << V;
            }
            // Entropy is optional.
            Vec lp2 = test::poisoned(N), lse2 = test::poisoned(N);
            ops::logsoftmax_forward(kCpu, cpu_f32(lp2.data(), {N}), Tensor{}, cpu_f32(lse2.data(), {N}),
                                    cpu_f32(logits.data(), {N, V}), cpu_i32(targets.data(), {N}), inv_t);
            EXPECT_TRUE(test::bitwise_equal(lp2, lp));
        }
    }
}

TEST(CpuOpsLogsoftmax, StableForLargeLogits) {
    const int64_t N = 2, V = 3000;
    Vec logits = test::random_floats(N * V, 3, 80.0f, 120.0f);
    IVec targets = {5, 2999};
    Vec lp(N), ent(N), lse(N);
    ops::logsoftmax_forward(kCpu, cpu_f32(lp.data(), {N}), cpu_f32(ent.data(), {N}), cpu_f32(lse.data(), {N}),
                            cpu_f32(logits.data(), {N, V}), cpu_i32(targets.data(), {N}), 1.0f);
    const RefRows ref = ref_logsoftmax(test::to_double(logits), targets, N, V, 1.0);
    EXPECT_LT(rel_error(lp, ref.logprob), kTol);
    EXPECT_LT(rel_error(ent, ref.entropy), kTol);
}

TEST(CpuOpsLogsoftmax, BackwardMatchesFiniteDifferences) {
    const int64_t N = 5, V = 9;
    const float inv_t = 1.0f / 0.7f;
    Vec logits = test::random_floats(N * V, 4, -3.0f, 3.0f);
    IVec targets = {3, -1, 0, 8, 4};
    Vec dlogprob = test::random_nonzero(N, 5);
    dlogprob[4] = 0.0f;  // a zero upstream gradient also gives a zero row
    Vec lp(N), lse(N);
    ops::logsoftmax_forward(kCpu, cpu_f32(lp.data(), {N}), Tensor{}, cpu_f32(lse.data(), {N}),
                            cpu_f32(logits.data(), {N, V}), cpu_i32(targets.data(), {N}), inv_t);
    Vec grad = logits;
    ops::logsoftmax_backward(kCpu, cpu_f32(grad.data(), {N, V}), cpu_f32(dlogprob.data(), {N}), cpu_f32(lse.data(), {N}),
                             cpu_i32(targets.data(), {N}), inv_t);
    const DVec g = test::numeric_grad(test::to_double(logits), [&](const DVec& x) {
        return test::dot(dlogprob, ref_logsoftmax(x, targets, N, V, inv_t).logprob);
    });
    EXPECT_LT(rel_error(grad, g), 1e-5);
    for (int64_t v = 0; v < V; ++v) EXPECT_EQ(grad[1 * V + v], 0.0f);
}

double ref_topk_entropy(std::vector<double> row, int k) { return ref::topk_entropy(std::move(row), k); }

TEST(CpuOpsTopkEntropy, MatchesFloat64) {
    const int64_t N = 6, V = 100;
    Vec logits = test::random_floats(N * V, 6, -4.0f, 4.0f);
    for (int64_t v = 0; v < 20; ++v) logits[2 * V + v] = 1.5f;  // ties around the cut
    for (int k : {1, 16, 70, 100}) {
        Vec ent = test::poisoned(N);
        ops::topk_entropy(kCpu, cpu_f32(ent.data(), {N}), cpu_f32(logits.data(), {N, V}), k);
        DVec ref(N);
        for (int64_t n = 0; n < N; ++n)
            ref[n] = ref_topk_entropy(DVec(logits.begin() + n * V, logits.begin() + (n + 1) * V), k);
        if (k == 1) {
            for (float e : ent) EXPECT_EQ(e, 0.0f);
        } else {
            EXPECT_LT(rel_error(ent, ref), kTol) << "k=" << k;
        }
    }
}

TEST(CpuOpsArgmax, LowestIndexOnTies) {
    const int64_t N = 3, V = 7;
    Vec logits = {0, 3, 1, 3, 2, 0, 0,  //
                  -5, -4, -3, -2, -1, -1, -1,
                  9, 0, 0, 0, 0, 0, 9};
    IVec out(N, -7);
    ops::argmax(kCpu, cpu_i32(out.data(), {N}), cpu_f32(logits.data(), {N, V}));
    EXPECT_EQ(out, (IVec{1, 4, 0}));
}

}  // namespace
}  // namespace rpt
