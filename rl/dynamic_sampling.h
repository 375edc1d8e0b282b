// When DAPO dynamic sampling is on (drop groups whose G rewards are all equal and draw
// more contexts, at most max_refill_rounds times, then top the batch up with the last
// round's groups, all-equal ones included): every step with --dynamic-sampling, or from
// step --dynamic-sampling-from on (the paper switches it on at step 500 of 1,000).
#pragma once

#include <cstdint>

namespace rpt {

struct RptOptions;

bool dynamic_sampling_at(const RptOptions& options, int64_t step);

}  // namespace rpt
