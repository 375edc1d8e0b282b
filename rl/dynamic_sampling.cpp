#include "rl/dynamic_sampling.h"

#include "rl/rpt_trainer.h"

namespace rpt {

bool dynamic_sampling_at(const RptOptions& o, int64_t step) {
    return o.dynamic_sampling || (o.dynamic_sampling_from > 0 && step >= o.dynamic_sampling_from);
}

}  // namespace rpt
