// DAPO dynamic sampling (drop groups whose G rewards are all equal and draw more
// contexts): when it is on — every step with --dynamic-sampling, or from step
// --dynamic-sampling-from on (the paper switches it on at step 500 of 1,000) — and how
// the refill rounds run. Refills continue while the batch lacks groups, at most
// --max-refill-rounds times; the last allowed round keeps whatever it draws (all-equal
// groups included), so a step always trains on a full batch.
#pragma once

#include <cstdint>
#include <functional>

namespace rpt {

struct RptOptions;

// Today's bound, and the one the sampler keys of runs recorded without a bound used.
constexpr int kDefaultMaxRefillRounds = 3;

bool dynamic_sampling_at(const RptOptions& options, int64_t step);

// One sampling round of a step: its number (0 = the first draw, 1.. = refills), the
// contexts still missing, and whether it must keep every group it draws.
struct SamplingRound {
    int round = 0;
    int need = 0;
    bool keep_uniform = false;
};

// Runs the rounds of one step: `sample(round)` draws round.need contexts and returns how
// many groups it kept. Without dynamic sampling one round keeping everything; with it,
// rounds until `wanted` groups are kept or round `max_refill_rounds` (which keeps all)
// has run. Returns the number of rounds run.
int run_sampling_rounds(bool dynamic, int max_refill_rounds, int wanted,
                        const std::function<int(const SamplingRound&)>& sample);

// The sampler's key of context b (of `contexts` per round) drawn in round `round` of
// step `step`: unique per (step, round, b) for rounds 0..max_refill_rounds, and equal to
// the key rpt used before the bound was a flag ((step * 4 + round) * contexts + b) when
// max_refill_rounds <= 3.
int64_t sampling_context_key(int64_t step, int round, int64_t b, int contexts, int max_refill_rounds);

}  // namespace rpt
