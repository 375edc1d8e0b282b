// Flags and start-up shared by the commands that train or run a model: where the model
// comes from (a preset, a checkpoint directory, or a run to resume), the tokenizer, the
// device, and a start-up report of what was allocated.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "kernels/ops.h"
#include "model/checkpoint.h"
#include "model/optimizer.h"
#include "model/tokenizer.h"
#include "model/transformer.h"

namespace rpt::cli {

struct ModelFlags {
    std::string preset;     // tiny | small (a fresh model)
    std::string model_dir;  // a checkpoint / Hugging Face directory
    std::string resume;     // a training checkpoint to continue (weights, optimizer, step)
    std::string tokenizer;  // tokenizer.json for a fresh model (default: train one on the corpus)
    std::string out;
    std::string device = "auto";
    uint64_t seed = 1;      // parameter initialisation

    // out_help: the --out flag's help, or nullptr when the command has its own --out.
    void add_to(CLI::App& command, const char* out_help);
};

struct ModelSetup {
    OpContext ctx;
    Tokenizer tokenizer;
    std::unique_ptr<Transformer> model;
    std::unique_ptr<AdamW> optimizer;  // null unless asked for
    TrainerState state;                // step 0 unless resumed
};

// `docs` trains the tokenizer of a fresh preset when no --tokenizer is given.
ModelSetup setup_model(const ModelFlags& flags, const std::vector<std::string>& docs, bool with_optimizer);

// The id of the end-of-text token; throws naming the tokenizer's gap if it has none.
int32_t end_of_text_id(const Tokenizer& tokenizer);

}  // namespace rpt::cli
