#include "rl/training_compute.h"

#include <stdexcept>

#include <fmt/format.h>

#include "rl/run_settings.h"

namespace rpt {
namespace {

constexpr const char* kRptCommand = "train";  // the command of RPT runs' records (rl/run_settings.h)

}  // namespace

void add_rpt_training_flops(TrainerState& state, double flops) {
    const double before = state.extra.contains(kRptTrainingFlopsKey) && state.extra[kRptTrainingFlopsKey].is_number()
                              ? state.extra[kRptTrainingFlopsKey].get<double>()
                              : 0.0;
    state.extra[kRptTrainingFlopsKey] = before + flops;
}

CheckpointCompute read_checkpoint_compute(const std::string& dir) {
    CheckpointCompute c;
    c.dir = dir;
    const std::optional<TrainerState> state = read_trainer_state(dir);
    if (!state) return c;
    const auto it = state->extra.find(kRptTrainingFlopsKey);
    if (it != state->extra.end()) {
        if (!it->is_number() || it->get<double>() < 0)
            throw std::runtime_error(fmt::format("{}/trainer_state.json: extra.{} must be a FLOP count >= 0, found {}",
                                                 dir, kRptTrainingFlopsKey, it->dump()));
        c.rpt_steps = state->step;
        c.rpt_flops = it->get<double>();
        return c;
    }
    if (run_record_command(state->run) == kRptCommand)
        throw std::runtime_error(fmt::format("{}: an RPT checkpoint (step {}) that records no training FLOPs (written "
                                             "before rpt recorded them); retrain it to place it on the compute axis",
                                             dir, state->step));
    return c;  // pre-trained or otherwise trained: the base of the RPT run
}

}  // namespace rpt
