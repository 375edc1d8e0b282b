// RPT's training compute as a checkpoint records it: the FLOPs of every step so far
// (rollouts and GRPO updates, model/flops.h, all ranks), kept in trainer_state.json's
// "extra" by rpt train, and read back to place a checkpoint on the compute axis of the
// scaling study (the paper's Fig. 5).
#pragma once

#include <cstdint>
#include <string>

#include "model/checkpoint.h"

namespace rpt {

inline const char* const kRptTrainingFlopsKey = "rpt_training_flops";

// Adds one step's FLOPs to the state's running total.
void add_rpt_training_flops(TrainerState& state, double flops);

struct CheckpointCompute {
    std::string dir;
    int64_t rpt_steps = 0;    // RPT steps taken (0: the base model)
    double rpt_flops = 0;     // their FLOPs
};

// A checkpoint without trainer state, or one written by another command (pretrain), is
// a base model: 0 RPT steps and FLOPs. An RPT checkpoint from before the FLOPs were
// recorded is refused (std::runtime_error naming the directory), never guessed.
CheckpointCompute read_checkpoint_compute(const std::string& dir);

}  // namespace rpt
