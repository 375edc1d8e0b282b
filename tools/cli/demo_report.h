// What the demo prints and writes: per seed the table, the paired comparisons with
// intervals, the trace metrics and a few traces before and after RPT (summary.json and
// curves.svg in the seed's directory); over several seeds, the spread of each
// comparison (summary.json at the top of --out).
#pragma once

#include <vector>

#include "tools/cli/demo_run.h"

namespace rpt::cli {

void report_seed(const DemoFlags& flags, const DemoSeedResult& result);
void report_seeds(const DemoFlags& flags, const std::vector<DemoSeedResult>& results);

}  // namespace rpt::cli
