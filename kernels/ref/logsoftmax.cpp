// The float64 log-softmax references: max, sum of exponentials, then the per-row terms.
#include "kernels/ref/logsoftmax.h"

#include <algorithm>
#include <cmath>
#include <functional>

namespace rpt::ref {

LogsoftmaxRows logsoftmax_forward(const std::vector<double>& logits, const std::vector<int32_t>& targets, int64_t N,
                                  int64_t V, double inv_temperature) {
    LogsoftmaxRows r{std::vector<double>(N), std::vector<double>(N), std::vector<double>(N)};
    for (int64_t n = 0; n < N; ++n) {
        const auto z = [&](int64_t v) { return logits[n * V + v] * inv_temperature; };
        double m = -1e300;
        for (int64_t v = 0; v < V; ++v) m = std::max(m, z(v));
        double s = 0.0;
        for (int64_t v = 0; v < V; ++v) s += std::exp(z(v) - m);
        r.lse[n] = m + std::log(s);
        double h = 0.0;
        for (int64_t v = 0; v < V; ++v) {
            const double lp = z(v) - r.lse[n];
            h -= std::exp(lp) * lp;
        }
        r.entropy[n] = h;
        r.logprob[n] = targets[n] < 0 ? 0.0 : z(targets[n]) - r.lse[n];
    }
    return r;
}

double topk_entropy(std::vector<double> row, int k) {
    std::sort(row.begin(), row.end(), std::greater<double>());
    double s = 0.0;
    for (int i = 0; i < k; ++i) s += std::exp(row[i] - row[0]);
    double h = 0.0;
    for (int i = 0; i < k; ++i) {
        const double p = std::exp(row[i] - row[0]) / s;
        h -= p * std::log(p);
    }
    return h;
}

}  // namespace rpt::ref
