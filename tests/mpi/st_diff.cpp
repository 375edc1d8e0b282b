// rpt_st_diff: compares two safetensors files tensor by tensor, for the multi-rank tests
// (N ranks and 1 rank sum gradients in different orders, so their checkpoints agree to
// a tolerance, not bit for bit).
//   rpt_st_diff A.safetensors B.safetensors TOLERANCE
// Prints the largest absolute difference and where it is; exits 0 when it is at most
// TOLERANCE and both files hold the same tensor names and shapes, 1 otherwise.
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
    if (argc != 4) {
        std::fprintf(stderr, "usage: rpt_st_diff A.safetensors B.safetensors TOLERANCE\n");
        return kExitUsage;
    }
    try {
        const rpt::SafetensorsFile a = rpt::SafetensorsFile::open(argv[1]);
        const rpt::SafetensorsFile b = rpt::SafetensorsFile::open(argv[2]);
        const double tolerance = std::stod(argv[3]);
        if (a.entries().size() != b.entries().size()) {
            std::fprintf(stderr, "rpt_st_diff: %zu tensors vs %zu\n", a.entries().size(), b.entries().size());
            return kExitDiffer;
        }
        double worst = 0, worst_a = 0, worst_b = 0;
        std::string worst_name;
        int64_t worst_index = 0, compared = 0;
        std::vector<float> x, y;
        for (const rpt::SafetensorsEntry& e : a.entries()) {
            x.resize(size_t(e.numel()));
            y.resize(size_t(e.numel()));
            a.read_f32(e.name, e.shape, x.data());
            b.read_f32(e.name, e.shape, y.data());  // throws if missing or shaped otherwise
            for (size_t i = 0; i < x.size(); ++i) {
                const double d = std::fabs(double(x[i]) - double(y[i]));
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
        const bool ok = worst <= tolerance;
        std::printf("%s: %lld values, max |a - b| = %.3g (tolerance %.3g)%s\n", ok ? "same" : "DIFFERENT",
                    (long long)compared, worst, tolerance,
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
