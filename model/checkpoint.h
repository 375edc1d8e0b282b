// Checkpoints are Hugging Face model directories plus the trainer's state:
//   config.json               Qwen2 config (Hugging Face field names)
//   model.safetensors         parameters, Hugging Face names and shapes
//   tokenizer.json            Hugging Face tokenizer
//   optimizer.safetensors     AdamW moments (training checkpoints only)
//   trainer_state.json        step, RNG and data cursor, run settings (training only)
//   rpt_output.json           marks the directory as rpt's checkpoint (model/output_guard.h)
//   reference.safetensors     the frozen KL reference of an RPT run (only with one)
// A directory is written whole into a temporary sibling and renamed into place, so a
// crash never leaves a half-written checkpoint under the final name.
#pragma once

#include <cstdint>
#include <optional>
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
    // The settings that define the run (rl/run_settings.h); null in checkpoints written
    // before they were recorded, and for runs started outside the command line.
    nlohmann::json run = nullptr;
};

// `optimizer` and `state` may be null (an inference-only checkpoint). With an optimizer
// on a multi-rank Comm this is collective: every rank calls it, the full moments are
// gathered (ZeRO), and rank 0 alone writes.
// `reference` (optional): the frozen reference model of an RPT run with a KL term.
void save_checkpoint(const std::string& dir, const Transformer& model, const Tokenizer& tokenizer,
                     const AdamW* optimizer, const TrainerState* state, const Transformer* reference = nullptr);

ModelConfig read_checkpoint_config(const std::string& dir);
Tokenizer read_checkpoint_tokenizer(const std::string& dir);
// What loading read: checkpoint bytes, wall time, and the staging it needed beyond the
// parameters (0 on the CPU; the largest tensor on the GPU).
struct WeightLoadReport {
    size_t file_bytes = 0;
    size_t staging_bytes = 0;
    double seconds = 0;
};

// Loads every parameter, checking names and shapes against the model's config. Reads
// model.safetensors, or else the shards that model.safetensors.index.json names, mapped,
// one tensor at a time straight into the fp32 parameters (model/weight_streaming.h: no
// whole-model host copy, and each tensor's mapped pages released once converted), then
// refreshes a bf16 model's working copy.
WeightLoadReport load_checkpoint_weights(const std::string& dir, Transformer& model);
// The same into host memory (layout.total() floats), without a model: for conversions.
void read_checkpoint_tensors(const std::string& dir, const ParameterLayout& layout, float* host);
bool has_training_state(const std::string& dir);
// Moves a finished temporary directory onto `dir`, replacing what was there (moved
// aside first, so `dir` is never missing a checkpoint if the rename fails).
void publish_directory(const std::string& tmp, const std::string& dir);
// The "run" record of dir/trainer_state.json (null when it has none).
nlohmann::json read_run_record(const std::string& dir);
// dir/trainer_state.json without the optimizer's moments; nullopt when the checkpoint has
// no trainer state (an inference-only checkpoint, a converted Hugging Face model).
std::optional<TrainerState> read_trainer_state(const std::string& dir);
bool has_reference_weights(const std::string& dir);
// Loads dir/reference.safetensors into `reference` (names and shapes checked), streamed
// as load_checkpoint_weights does.
void load_reference_weights(const std::string& dir, Transformer& reference);
// Restores AdamW moments (each rank reads only its ZeRO slices of the stored full
// moments straight from the mapped file, so a run resumes on any number of ranks and any
// ZeRO level) and returns the trainer state. Writing gathers (save_checkpoint gathers
// ZeRO-3 parameters and all moments first).
TrainerState load_training_state(const std::string& dir, AdamW& optimizer);

}  // namespace rpt
