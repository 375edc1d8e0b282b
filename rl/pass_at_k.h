// Pass@k from n samples per position, the unbiased estimator of Chen et al. (2021):
//     pass@k = 1 - C(n - c, k) / C(n, k)
// for c correct samples of n: the probability that k of the n samples drawn without
// replacement include a correct one. Random@1 (the paper's Table 8) is its k = 1 case,
// c / n, the mean accuracy of single samples.
#pragma once

namespace rpt {

// Needs 1 <= k <= n and 0 <= c <= n (std::invalid_argument otherwise). Computed as the
// product prod_{i = n-c+1}^{n} (1 - k / i), which stays in [0, 1] for any n.
double pass_at_k(int n, int c, int k);

}  // namespace rpt
