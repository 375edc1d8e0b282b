// The rank-0 cadence of a training loop, written once for the NTP and the RPT trainer:
// which steps print a progress line (every log_every steps and the last), the line's
// frame ("<label> <step>/<steps> | <fields> | ETA <time>" on stderr), the JSONL metrics
// record of every step, and which steps checkpoint (every checkpoint_every and the last).
// Only rank 0 prints and writes; the checkpoint decision is the same on every rank, since
// saving is collective.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "rl/metrics.h"

namespace rpt {

struct TrainLogSettings {
    const char* label = "step";    // the progress line's first word(s)
    int step_width = 6;            // digits the step number is padded to
    int64_t first_step = 0;        // the state's step when the run starts (> 0: resumed, metrics appended)
    int64_t end = 0;               // the last step this run takes (stop_at, else steps)
    int64_t steps = 0;             // the schedule's length, printed after the step
    int64_t log_every = 1;
    int64_t checkpoint_every = 0;  // 0: only at the end
    std::string metrics_path;      // JSONL; empty = none
    bool root = true;              // rank 0
    bool quiet = false;
};

class TrainLog {
public:
    explicit TrainLog(const TrainLogSettings& settings);

    // Rank 0 of a run that is not quiet: the one that prints.
    bool prints() const { return settings_.root && !settings_.quiet; }
    // A progress step: every log_every steps and the last (printed or not).
    bool logs_at(int64_t step) const { return step % settings_.log_every == 0 || step == settings_.end; }
    // A checkpoint step, on every rank: every checkpoint_every steps and the last.
    bool checkpoints_at(int64_t step) const {
        return (settings_.checkpoint_every > 0 && step % settings_.checkpoint_every == 0) || step == settings_.end;
    }
    bool last(int64_t step) const { return step == settings_.end; }
    // Seconds since the run started.
    double elapsed() const { return clock_.elapsed(); }

    // When prints(): the progress line of `step`, `fields` in printf format between the
    // step and the ETA.
    void progress(int64_t step, const char* fields, ...) const __attribute__((format(printf, 3, 4)));
    // The step's metrics record (rank 0, when a metrics path is set).
    void record(const nlohmann::json& record) { metrics_.write(record); }

private:
    TrainLogSettings settings_;
    MetricsWriter metrics_;
    ProgressClock clock_;
};

}  // namespace rpt
