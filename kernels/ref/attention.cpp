// The float64 attention reference: one query at a time, scores, softmax, weighted sum.
#include "kernels/ref/attention.h"

#include <algorithm>
#include <cmath>

namespace rpt::ref {

std::vector<double> attention_forward(const std::vector<double>& q, const std::vector<double>& k,
                                      const std::vector<double>& v, const attn::Shape& s, std::vector<double>* lse,
                                      const std::vector<int32_t>& segments) {
    std::vector<double> out(q.size(), 0.0);
    const int64_t group = s.H / s.KVH;
    const double scale = 1.0 / std::sqrt(static_cast<double>(s.D));
    for (int64_t b = 0; b < s.B; ++b) {
        const int32_t* row_segments = segments.empty() ? nullptr : segments.data() + b * s.T;
        for (int64_t h = 0; h < s.H; ++h)
            for (int64_t t = 0; t < s.T; ++t) {
                const int64_t qi = ((b * s.T + t) * s.H + h) * s.D;
                const auto kv_row = [&](int64_t j) { return ((b * s.T + j) * s.KVH + h / group) * s.D; };
                std::vector<double> score(t + 1);
                double m = -1e300;
                for (int64_t j = 0; j <= t; ++j) {
                    if (!attn::key_visible(row_segments, t, j)) continue;
                    double dot = 0.0;
                    for (int64_t d = 0; d < s.D; ++d) dot += q[qi + d] * k[kv_row(j) + d];
                    score[j] = dot * scale;
                    m = std::max(m, score[j]);
                }
                double sum = 0.0;
                for (int64_t j = 0; j <= t; ++j)
                    if (attn::key_visible(row_segments, t, j)) sum += std::exp(score[j] - m);
                for (int64_t j = 0; j <= t; ++j) {
                    if (!attn::key_visible(row_segments, t, j)) continue;
                    const double p = std::exp(score[j] - m) / sum;
                    for (int64_t d = 0; d < s.D; ++d) out[qi + d] += p * v[kv_row(j) + d];
                }
                if (lse) (*lse)[(b * s.H + h) * s.T + t] = m + std::log(sum);
            }
    }
    return out;
}

}  // namespace rpt::ref
