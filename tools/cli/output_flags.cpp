#include "tools/cli/output_flags.h"

#include "model/output_guard.h"

namespace rpt::cli {

void add_overwrite_flag(CLI::App& command, bool& overwrite, OutputRule rule) {
    const char* help = "";
    switch (rule) {
        case OutputRule::checkpoint:
            help = "replace --out even when it is not an rpt checkpoint (an rpt checkpoint is replaced without it)";
            break;
        case OutputRule::training:
            help = "replace --out even when it is not an rpt checkpoint (an rpt checkpoint, or the --resume one, "
                   "is replaced without it), and an existing --metrics file of a fresh run";
            break;
        case OutputRule::demo:
            help = "write into --out even when it is not an earlier rpt demo directory (which is reused without it)";
            break;
        case OutputRule::file:
            help = "replace an existing --out file (without it, an existing file is never replaced)";
            break;
    }
    command.add_flag("--overwrite", overwrite, help);
}

void claim_training_outputs(const std::string& out, const std::string& resume, const std::string& metrics,
                            bool overwrite) {
    claim_directory_output("--out", out, kCheckpointOutput, overwrite, resume);
    if (!metrics.empty()) claim_file_output("--metrics", metrics, overwrite, /*append=*/!resume.empty());
}

}  // namespace rpt::cli
