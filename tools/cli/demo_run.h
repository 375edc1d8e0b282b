// The demo's comparison for one seed (what `rpt demo` repeats over --seeds): corpus and
// tokenizer, pre-training of a start model that reasons (worked examples,
// rl/reasoning_examples.h), the entropy filter, a learning-rate grid for each arm on
// validation positions, RPT and NTP-continued at equal compute, and the evaluation of
// all three checkpoints on the same held-out positions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/context.h"
#include "rl/eval_comparison.h"
#include "rl/evaluate.h"
#include "tools/cli/corpus_flags.h"
#include "tools/cli/precision_flag.h"

namespace rpt::cli {

struct DemoFlags {
    std::string out = "build/demo";
    bool quick = false;
    bool overwrite = false;  // write into an --out that is not an earlier demo directory
    uint64_t seed = 1;
    int seeds = 1;           // the comparison repeated for seed, seed + 1, ...
    std::string device = "auto";
    std::string precision = kAutoPrecision;
    std::string recompute = "none";  // what the training runs keep for backward (model/recompute.h)
    // Sizes (the --quick preset shrinks them).
    size_t docs = 6000;
    int pretrain_batch = 8;  // sequences per NTP step (pre-training and NTP-continued)
    int pretrain_steps = 1200;
    int rpt_steps = 150;
    size_t filter_docs = 1500;
    size_t eval_hard_positions = 2000;  // held-out hard positions (about +/-2 points at 95%)
    size_t curve_positions = 200;       // hard positions evaluated along the runs
    size_t grid_positions = 400;        // hard validation positions a grid trial is scored on
    int eval_points = 4;                // evaluations along each run for the plot
    int response_tokens = 144;          // rollout budget: a worked trace, the markers and the answer
    float format_share = 0.5f;          // share of pre-training tokens in template examples
    // Learning-rate grids; with more than one value each is tried for grid_fraction of
    // the run on validation positions and the best is kept.
    std::vector<float> rpt_lrs = {1e-4f, 3e-4f};
    std::vector<float> ntp_lrs = {1e-4f, 3e-4f, 1e-3f};
    double grid_fraction = 0.2;
    int show_traces = 3;                // positions whose responses are printed before and after RPT
    CorpusFlags corpus;                 // a JSONL corpus instead of the built-in one (--corpus)
};

// One learning rate of a grid and what its trial scored on the validation positions.
struct GridTrial {
    float lr = 0;
    double score = 0;  // hard-split accuracy in the arm's own mode
    int64_t steps = 0;
};

// What one seed's comparison produced.
struct DemoSeedResult {
    uint64_t seed = 0;
    std::string dir;
    std::vector<ScoredPosition> eval_positions;        // held-out evaluation positions
    std::vector<uint8_t> computed;                     // by evaluation position: inside a computed value
    std::vector<std::pair<std::string, EvalReport>> rows;  // start, NTP-continued, RPT
    std::vector<GridTrial> rpt_grid, ntp_grid;
    float rpt_lr = 0, ntp_lr = 0;                      // the grids' choices
    double rpt_flops = 0;
    int64_t ntp_steps = 0;
    size_t documents = 0;
    bool worked_examples = false;                      // the built-in corpus: traces in pre-training
    double seconds = 0;
    const EvalReport& row(const std::string& name) const;
};

// Runs the whole comparison for `seed` into `dir` (already claimed).
DemoSeedResult run_demo_seed(const DemoFlags& flags, uint64_t seed, const std::string& dir, const OpContext& ctx);

}  // namespace rpt::cli
