// rpt plot: reward and hard-split accuracy curves from metrics JSONL files (the drawing
// itself is tools/cli/plot.cpp; the demo draws its curves with the same function).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "model/output_guard.h"
#include "tools/cli/commands.h"
#include "tools/cli/output_flags.h"
#include "tools/cli/plot.h"

namespace rpt::cli {

void add_plot_command(CLI::App& app) {
    CLI::App* cmd = app.add_subcommand("plot", "draw reward and hard-split accuracy curves from metrics JSONL files");
    auto files = std::make_shared<std::vector<std::string>>();
    auto out = std::make_shared<std::string>("curves.svg");
    auto x = std::make_shared<std::string>("flops");
    auto overwrite = std::make_shared<bool>(false);
    cmd->add_option("--metrics", *files, "metrics JSONL files (label = file name)")->required()->check(CLI::ExistingFile);
    cmd->add_option("--out", *out, "image to write (.svg or .png)");
    cmd->add_option("--x", *x, "x axis: flops or step")->check(CLI::IsMember({"flops", "step"}));
    add_overwrite_flag(*cmd, *overwrite, OutputRule::file);
    cmd->callback([files, out, x, overwrite]() {
        claim_file_output("--out", *out, *overwrite);
        std::vector<PlotSeries> runs;
        for (const std::string& path : *files) runs.push_back({path, std::filesystem::path(path).stem().string()});
        plot_metrics(runs, *out, *x);
        std::printf("wrote %s\n", out->c_str());
    });
}

}  // namespace rpt::cli
