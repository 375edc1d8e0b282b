// Training curves drawn by gnuplot (Debian's gnuplot-nox): reward and hard-split
// accuracy of one or more runs from their JSONL metrics, against training compute or
// step. The data and script are written beside the image so the plot can be redrawn.
#pragma once

#include <string>
#include <vector>

namespace rpt::cli {

struct PlotSeries {
    std::string metrics_path;  // JSONL
    std::string label;
};

// `out` ends in .svg or .png; x_field is "flops" (shown as PFLOP) or "step".
void plot_metrics(const std::vector<PlotSeries>& runs, const std::string& out, const std::string& x_field);

// Shared by the plots: `s` as a gnuplot string literal, and running `script` (written to
// data_dir/plot.gp, its errors to data_dir/gnuplot.log) whose output is out + ".tmp",
// renamed to `out` once gnuplot succeeded.
std::string gnuplot_quoted(const std::string& s);
void run_gnuplot(const std::string& script, const std::string& data_dir, const std::string& out);

}  // namespace rpt::cli
