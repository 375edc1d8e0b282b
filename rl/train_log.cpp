#include "rl/train_log.h"

#include <cstdarg>
#include <cstdio>

namespace rpt {

namespace {

MetricsWriter open_metrics(const TrainLogSettings& s) {
    if (s.metrics_path.empty() || !s.root) return MetricsWriter();
    return MetricsWriter(s.metrics_path, s.first_step > 0);  // a resumed run continues its file
}

}  // namespace

TrainLog::TrainLog(const TrainLogSettings& settings)
    : settings_(settings), metrics_(open_metrics(settings)), clock_(settings.first_step, settings.end) {}

void TrainLog::progress(int64_t step, const char* fields, ...) const {
    if (!prints()) return;
    char text[512];
    va_list args;
    va_start(args, fields);
    std::vsnprintf(text, sizeof text, fields, args);
    va_end(args);
    std::fprintf(stderr, "%s %*lld/%lld | %s | ETA %s\n", settings_.label, settings_.step_width, (long long)step,
                 (long long)settings_.steps, text, format_duration(clock_.eta(step)).c_str());
}

}  // namespace rpt
