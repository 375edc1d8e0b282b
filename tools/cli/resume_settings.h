// The run settings of the training commands bound to their flags, and the --resume rule
// of rl/run_settings.h applied to a parsed command line: a flag counts as given when
// CLI11 saw it (opt->count()), whatever its value.
#pragma once

#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "model/tokenizer.h"
#include "rl/rpt_trainer.h"
#include "rl/run_settings.h"
#include "tools/cli/corpus_flags.h"
#include "tools/cli/model_setup.h"
#include "tools/cli/rpt_flags.h"

namespace rpt::cli {

// --corpus (by content), --corpus-format, --text-field, --skip-malformed, --synth-docs, --synth-seed.
void add_corpus_settings(RunSettings& settings, CorpusFlags& corpus);
// The flags of add_rpt_flags().
void add_rpt_settings(RunSettings& settings, RptOptions& options, RptFlagValues& values);

// With --resume CK: reads CK's run record and applies the rule to `settings`, printing
// its warnings on the root rank; returns the record (null without --resume or without
// one). Call before anything reads the flags.
nlohmann::json resume_run_settings(RunSettings& settings, const CLI::App& command, const ModelFlags& flags,
                                   bool root);

// What the run's checkpoints record: the settings as resolved, and `tokenizer`, the
// tokenizer in use. A resumed run's must be the recorded one (CK/tokenizer.json, and
// --tokenizer when given).
nlohmann::json run_record(const RunSettings& settings, const nlohmann::json& resumed, const Tokenizer& tokenizer,
                          const ModelFlags& flags);

// The --help footer of a training command: what --resume takes and what may change.
std::string resume_help();

}  // namespace rpt::cli
