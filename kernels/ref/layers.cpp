// The float64 layer references, each the formula of kernels/ops.h as a loop.
#include "kernels/ref/layers.h"

#include <cmath>

namespace rpt::ref {

std::vector<double> rmsnorm_forward(const std::vector<double>& x, const std::vector<double>& w, int64_t N, int64_t C,
                                    double eps, std::vector<double>* rstd) {
    std::vector<double> y(N * C);
    for (int64_t n = 0; n < N; ++n) {
        double ss = 0.0;
        for (int64_t c = 0; c < C; ++c) ss += x[n * C + c] * x[n * C + c];
        const double r = 1.0 / std::sqrt(ss / C + eps);
        if (rstd) (*rstd)[n] = r;
        for (int64_t c = 0; c < C; ++c) y[n * C + c] = w[c] * x[n * C + c] * r;
    }
    return y;
}

std::vector<double> rope_forward(const std::vector<double>& x, const std::vector<int32_t>& positions, int64_t N,
                                 int64_t heads, int64_t D, double theta) {
    std::vector<double> y(x.size());
    const int64_t half = D / 2;
    for (int64_t n = 0; n < N; ++n)
        for (int64_t h = 0; h < heads; ++h)
            for (int64_t i = 0; i < half; ++i) {
                const double angle = positions[n] / std::pow(theta, 2.0 * i / D);
                const int64_t base = (n * heads + h) * D;
                const double a = x[base + i], b = x[base + i + half];
                y[base + i] = a * std::cos(angle) - b * std::sin(angle);
                y[base + i + half] = b * std::cos(angle) + a * std::sin(angle);
            }
    return y;
}

std::vector<double> swiglu_forward(const std::vector<double>& gate, const std::vector<double>& up) {
    std::vector<double> y(gate.size());
    for (size_t i = 0; i < gate.size(); ++i) y[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
    return y;
}

}  // namespace rpt::ref
