// rpt plot: reward and hard-split accuracy curves from metrics JSONL files (the drawing
// itself is tools/cli/plot.cpp; the demo draws its curves with the same function), or
// the scaling study's figure (tools/cli/plot_scaling.cpp).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/output_guard.h"
#include "tools/cli/commands.h"
#include "tools/cli/output_flags.h"
#include "tools/cli/plot.h"
#include "tools/cli/plot_scaling.h"

namespace rpt::cli {

void add_plot_command(CLI::App& app) {
    CLI::App* cmd = app.add_subcommand("plot", "draw reward and hard-split accuracy curves from metrics JSONL files, or a scaling study");
    auto files = std::make_shared<std::vector<std::string>>();
    auto out = std::make_shared<std::string>("curves.svg");
    auto x = std::make_shared<std::string>("flops");
    auto overwrite = std::make_shared<bool>(false);
    auto scaling = std::make_shared<std::string>();
    auto metric = std::make_shared<std::string>("reasoning");
    cmd->add_option("--metrics", *files, "metrics JSONL files (label = file name)")->check(CLI::ExistingFile);
    cmd->add_option("--scaling", *scaling,
                    "instead: the scaling study's JSON (rpt eval --checkpoints ... --json), drawn as accuracy per "
                    "split against RPT training FLOPs with the fitted power laws")
        ->check(CLI::ExistingFile);
    cmd->add_option("--metric", *metric, "with --scaling: the accuracy drawn, reasoning or standard")
        ->check(CLI::IsMember({"reasoning", "standard"}));
    cmd->add_option("--out", *out, "image to write (.svg or .png)");
    cmd->add_option("--x", *x, "x axis: flops or step")->check(CLI::IsMember({"flops", "step"}));
    add_overwrite_flag(*cmd, *overwrite, OutputRule::file);
    cmd->callback([files, scaling, metric, out, x, overwrite]() {
        if (files->empty() == scaling->empty())
            throw std::invalid_argument("--metrics or --scaling: give one of them");
        claim_file_output("--out", *out, *overwrite);
        if (!scaling->empty()) {
            plot_scaling(*scaling, *out, *metric);
            std::printf("wrote %s\n", out->c_str());
            return;
        }
        std::vector<PlotSeries> runs;
        for (const std::string& path : *files) runs.push_back({path, std::filesystem::path(path).stem().string()});
        plot_metrics(runs, *out, *x);
        std::printf("wrote %s\n", out->c_str());
    });
}

}  // namespace rpt::cli
