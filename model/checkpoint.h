// Checkpoints are Hugging Face model directories plus the trainer's state:
//   config.json               Qwen2 config (Hugging Face field names)
//   model.safetensors         parameters, Hugging Face names and shapes
//   tokenizer.json            Hugging Face tokenizer
//   optimizer.safetensors     AdamW moments (training checkpoints only)
//   trainer_state.json        step, RNG and data cursor, run settings (training only)
// A directory is written whole into a temporary sibling and renamed into place, so a
// crash never leaves a half-written checkpoint under the final name.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/optimizer.h"
#include "model/tokenizer.h"
#include "model/transformer.h"

namespace rpt {

struct TrainerState {
    int64_t step = 0;          // optimizer steps taken
    uint64_t rng_state = 0;    // the trainer's SplitMix state
    uint64_t data_cursor = 0;  // next batch index into the training stream
    nlohmann::json extra = nlohmann::json::object();  // trainer-specific settings and counters
};

// `optimizer` and `state` may be null (an inference-only checkpoint).
void save_checkpoint(const std::string& dir, const Transformer& model, const Tokenizer& tokenizer,
                     const AdamW* optimizer, const TrainerState* state);

ModelConfig read_checkpoint_config(const std::string& dir);
Tokenizer read_checkpoint_tokenizer(const std::string& dir);
// Loads every parameter, checking names and shapes against the model's config.
void load_checkpoint_weights(const std::string& dir, Transformer& model);
bool has_training_state(const std::string& dir);
// Restores AdamW moments and returns the trainer state.
TrainerState load_training_state(const std::string& dir, AdamW& optimizer);

}  // namespace rpt
