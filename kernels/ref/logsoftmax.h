// The log-softmax family in float64 plain loops: per-row log-sum-exp, target log-prob and
// entropy, and the top-k entropy of the proxy filter.
#pragma once

#include <cstdint>
#include <vector>

namespace rpt::ref {

struct LogsoftmaxRows {
    std::vector<double> logprob;  // (N) z[target] - lse, 0 where target < 0
    std::vector<double> entropy;  // (N) -sum_v p_v log p_v
    std::vector<double> lse;      // (N) log sum_v exp(z_v)
};

// z = logits (N, V) * inv_temperature, per row; targets (N).
LogsoftmaxRows logsoftmax_forward(const std::vector<double>& logits, const std::vector<int32_t>& targets, int64_t N,
                                  int64_t V, double inv_temperature);

// The entropy of the softmax renormalised over the k largest values of row.
double topk_entropy(std::vector<double> row, int k);

}  // namespace rpt::ref
