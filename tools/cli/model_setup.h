// Flags and start-up shared by the commands that train or run a model: where the model
// comes from (a preset, a checkpoint directory, or a run to resume), the tokenizer, the
// device, and a start-up report of what was allocated. Under mpirun/srun it also makes
// the run's Comm (binding each rank's GPU by its node-local rank) and hands it to the
// optimizer; only rank 0 reports.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "comm/comm.h"
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
    std::string precision = "auto";  // --precision (tools/cli/precision_flag.h)
    uint64_t seed = 1;      // parameter initialisation
    int zero = 0;           // --zero 0-3 (model/zero_runtime.h); a bare --zero is 1
    bool overlap_reduce = false;  // --overlap-reduce: ZeRO's collectives on a communication thread
    std::string recompute = "none";  // --recompute none|layer (model/recompute.h)

    // out_help: the --out flag's help, or nullptr when the command has its own --out.
    void add_to(CLI::App& command, const char* out_help);
    // --zero, --overlap-reduce and --recompute, for the training commands.
    void add_zero_flag(CLI::App& command);
    void add_recompute_flag(CLI::App& command);
};

struct ModelSetup {
    OpContext ctx;
    std::unique_ptr<Comm> comm;        // declared before the optimizer, which uses it
    Tokenizer tokenizer;
    std::unique_ptr<Transformer> model;
    std::unique_ptr<AdamW> optimizer;  // null unless asked for
    TrainerState state;                // step 0 unless resumed
};

// `docs` trains the tokenizer of a fresh preset when no --tokenizer is given. `runtime`
// (null: one process) selects the Comm; every rank builds the same model (same seed, or
// the same checkpoint) and takes its ZeRO shard of a resumed optimizer.
ModelSetup setup_model(const ModelFlags& flags, const std::vector<std::string>& docs, bool with_optimizer,
                       const MpiRuntime* runtime = nullptr);

// The id of the end-of-text token; throws naming the tokenizer's gap if it has none.
int32_t end_of_text_id(const Tokenizer& tokenizer);

}  // namespace rpt::cli
