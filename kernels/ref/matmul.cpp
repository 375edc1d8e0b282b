// The float64 matmul reference: one dot product per output element.
#include "kernels/ref/matmul.h"

namespace rpt::ref {

std::vector<double> matmul_forward(const std::vector<double>& in, const std::vector<double>& w,
                                   const std::vector<double>* bias, int64_t N, int64_t IC, int64_t OC) {
    std::vector<double> out(N * OC);
    for (int64_t n = 0; n < N; ++n)
        for (int64_t o = 0; o < OC; ++o) {
            double s = bias ? (*bias)[o] : 0.0;
            for (int64_t i = 0; i < IC; ++i) s += in[n * IC + i] * w[o * IC + i];
            out[n * OC + o] = s;
        }
    return out;
}

}  // namespace rpt::ref
