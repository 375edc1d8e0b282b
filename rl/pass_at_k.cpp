#include "rl/pass_at_k.h"

#include <stdexcept>

#include <fmt/format.h>

namespace rpt {

double pass_at_k(int n, int c, int k) {
    if (k < 1 || k > n)
        throw std::invalid_argument(fmt::format("pass@k: k = {} must be in [1, n = {}]", k, n));
    if (c < 0 || c > n)
        throw std::invalid_argument(fmt::format("pass@k: {} correct of {} samples", c, n));
    if (n - c < k) return 1.0;  // every draw of k includes a correct sample
    double all_wrong = 1.0;     // C(n - c, k) / C(n, k)
    for (int i = n - c + 1; i <= n; ++i) all_wrong *= 1.0 - double(k) / double(i);
    return 1.0 - all_wrong;
}

}  // namespace rpt
