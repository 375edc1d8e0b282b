// rpt data synth: writes the built-in synthetic math corpus as JSONL.
#include <cstdio>
#include <memory>
#include <string>

#include "rl/corpus.h"
#include "rl/synth_corpus.h"
#include "model/output_guard.h"
#include "tools/cli/commands.h"
#include "tools/cli/flag_checks.h"
#include "tools/cli/output_flags.h"

namespace rpt::cli {
namespace {

struct SynthFlags {
    std::string out;
    size_t docs = 10000;
    uint64_t seed = 1;
    bool overwrite = false;
};

}  // namespace

void add_data_command(CLI::App& app) {
    CLI::App* data = app.add_subcommand("data", "corpora");
    data->require_subcommand(1);
    CLI::App* synth = data->add_subcommand("synth", "write the built-in synthetic math corpus (JSONL, field 'text')");
    auto flags = std::make_shared<SynthFlags>();
    synth->add_option("--out", flags->out, "output JSONL file")->required();
    synth->add_option("--docs", flags->docs, "number of documents")->check(positive());
    synth->add_option("--seed", flags->seed, "seed (document i depends only on seed and i)");
    add_overwrite_flag(*synth, flags->overwrite, OutputRule::file);
    synth->callback([flags]() {
        claim_file_output("--out", flags->out, flags->overwrite);
        write_jsonl_corpus(flags->out, synth_corpus(flags->seed, flags->docs));
        std::fprintf(stderr, "wrote %zu documents to %s\n", flags->docs, flags->out.c_str());
    });
}

}  // namespace rpt::cli
