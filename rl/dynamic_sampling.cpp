#include "rl/dynamic_sampling.h"

#include <algorithm>

#include "rl/rpt_trainer.h"

namespace rpt {

bool dynamic_sampling_at(const RptOptions& o, int64_t step) {
    return o.dynamic_sampling || (o.dynamic_sampling_from > 0 && step >= o.dynamic_sampling_from);
}

int run_sampling_rounds(bool dynamic, int max_refill_rounds, int wanted,
                        const std::function<int(const SamplingRound&)>& sample) {
    const int last = dynamic ? max_refill_rounds : 0;
    int kept = 0, rounds = 0;
    for (int round = 0; round <= last && kept < wanted; ++round, ++rounds)
        kept += sample({round, wanted - kept, round == last});
    return rounds;
}

int64_t sampling_context_key(int64_t step, int round, int64_t b, int contexts, int max_refill_rounds) {
    const int64_t rounds_per_step = std::max(kDefaultMaxRefillRounds, max_refill_rounds) + 1;
    return (step * rounds_per_step + round) * contexts + b;
}

}  // namespace rpt
