// rpt_st_diff: compares two safetensors files tensor by tensor, for the multi-rank tests
// (N ranks and 1 rank sum gradients in different orders, so their checkpoints agree to
// a tolerance, not bit for bit).
//   rpt_st_diff A.safetensors B.safetensors TOLERANCE [BOUND MAX_FRACTION]
// Prints the largest absolute difference and where it is; exits 0 when it is at most
// TOLERANCE and both files hold the same tensor names and shapes, 1 otherwise. With
// BOUND and MAX_FRACTION, up to that fraction of the values may differ by more than
// TOLERANCE as long as none differs by more than BOUND: for AdamW runs, where a
// parameter whose gradient is near the optimizer's eps turns summation-order noise into
// a step of up to lr, while a wrong gradient moves most parameters.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "model/safetensors.h"

namespace {

constexpr int kExitDiffer = 1;
constexpr int kExitUsage = 2;

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4 && argc != 6) {
        std::fprintf(stderr, "usage: rpt_st_diff A.safetensors B.safetensors TOLERANCE [BOUND MAX_FRACTION]\n");
        return kExitUsage;
    }
    try {
        const rpt::SafetensorsFile a = rpt::SafetensorsFile::open(argv[1]);
        const rpt::SafetensorsFile b = rpt::SafetensorsFile::open(argv[2]);
        const double tolerance = std::stod(argv[3]);
        const double bound = argc == 6 ? std::stod(argv[4]) : tolerance;
        const double max_fraction = argc == 6 ? std::stod(argv[5]) : 0.0;
        if (a.entries().size() != b.entries().size()) {
            std::fprintf(stderr, "rpt_st_diff: %zu tensors vs %zu\n", a.entries().size(), b.entries().size());
            return kExitDiffer;
        }
        double worst = 0, worst_a = 0, worst_b = 0;
        std::string worst_name;
        int64_t worst_index = 0, compared = 0, beyond = 0;
        std::vector<float> x, y;
        for (const rpt::SafetensorsEntry& e : a.entries()) {
            x.resize(size_t(e.numel()));
            y.resize(size_t(e.numel()));
            a.read_f32(e.name, e.shape, x.data());
            b.read_f32(e.name, e.shape, y.data());  // throws if missing or shaped otherwise
            for (size_t i = 0; i < x.size(); ++i) {
                const double d = std::fabs(double(x[i]) - double(y[i]));
                if (!(d <= tolerance)) ++beyond;
                // NaN compares false: count it as a difference of infinity.
                if (!(d <= worst) || std::isnan(d)) {
                    worst = std::isnan(d) ? INFINITY : d;
                    worst_name = e.name;
                    worst_index = int64_t(i);
                    worst_a = x[i];
                    worst_b = y[i];
                }
            }
            compared += e.numel();
        }
        const double fraction = compared > 0 ? double(beyond) / double(compared) : 0.0;
        const bool ok = worst <= bound && fraction <= max_fraction;
        std::printf("%s: %lld values, %lld beyond %.3g (%.2g of them, allowed %.2g), max |a - b| = %.3g (bound %.3g)%s\n",
                    ok ? "same" : "DIFFERENT", (long long)compared, (long long)beyond, tolerance, fraction,
                    max_fraction, worst, bound,
                    worst > 0 ? (" at " + worst_name + "[" + std::to_string(worst_index) + "]: " +
                                 std::to_string(worst_a) + " vs " + std::to_string(worst_b))
                                    .c_str()
                              : "");
        return ok ? 0 : kExitDiffer;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rpt_st_diff: %s\n", e.what());
        return kExitUsage;
    }
}
