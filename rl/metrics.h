// Progress for long jobs: a one-line status on stderr (step, loss or reward, tokens/s,
// ETA) and one JSON object per step in a metrics file (JSONL), flushed line by line so
// a crash loses at most the line being written.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

namespace rpt {

class MetricsWriter {
public:
    MetricsWriter() = default;  // writes nothing
    // `append` keeps earlier lines (a resumed run continues its file).
    MetricsWriter(const std::string& path, bool append);
    ~MetricsWriter();
    MetricsWriter(const MetricsWriter&) = delete;
    MetricsWriter& operator=(const MetricsWriter&) = delete;
    void write(const nlohmann::json& record);

private:
    std::FILE* file_ = nullptr;
    std::string path_;
};

// Measures throughput and estimates the time left from the average step time so far.
class ProgressClock {
public:
    ProgressClock(int64_t first_step, int64_t total_steps);
    // Seconds since construction.
    double elapsed() const;
    // Estimated seconds to finish after `step` steps are done.
    double eta(int64_t step) const;

private:
    std::chrono::steady_clock::time_point start_;
    int64_t first_step_, total_steps_;
};

// "1h02m", "3m05s", "12s"
std::string format_duration(double seconds);

}  // namespace rpt
