// The scaling study's figure (the paper's Fig. 5), drawn by gnuplot from the JSON of
// `rpt eval --checkpoints ... --json`: per split, accuracy against RPT training FLOPs
// on a log axis, the checkpoints as points and the fitted P(C) = P* - A / C^alpha as a
// curve with its R² in the key. Data and script are written beside the image.
#pragma once

#include <string>

namespace rpt::cli {

// `metric`: "reasoning" or "standard"; `out` ends in .svg or .png.
void plot_scaling(const std::string& study_json, const std::string& out, const std::string& metric);

}  // namespace rpt::cli
