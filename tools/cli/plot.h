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

}  // namespace rpt::cli
