// trainer_state.json, the trainer's half of a training checkpoint (checkpoint.h writes
// it): step, RNG state, data cursor, AdamW's step count, trainer-specific extras and the
// run's settings.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "model/checkpoint.h"

namespace rpt {

constexpr int kTrainerStateVersion = 1;

struct TrainingStateFile {
    TrainerState state;
    int64_t optimizer_steps = 0;  // AdamW's step count (its bias correction)
};

// The file's text (`source` names it in errors, which are std::runtime_error
// "<source>: <why>" naming the field). Counts must be non-negative integers.
TrainingStateFile parse_training_state(std::string_view text, const std::string& source);

}  // namespace rpt
