#include "rl/metrics.h"

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

namespace rpt {

MetricsWriter::MetricsWriter(const std::string& path, bool append) : path_(path) {
    file_ = std::fopen(path.c_str(), append ? "a" : "w");
    if (!file_) throw std::runtime_error(fmt::format("{}: cannot open metrics file: {}", path, std::strerror(errno)));
}

MetricsWriter::~MetricsWriter() {
    if (file_) std::fclose(file_);
}

void MetricsWriter::write(const nlohmann::json& record) {
    if (!file_) return;
    const std::string line = record.dump() + "\n";
    if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0)
        throw std::runtime_error(fmt::format("{}: cannot write metrics: {}", path_, std::strerror(errno)));
}

ProgressClock::ProgressClock(int64_t first_step, int64_t total_steps)
    : start_(std::chrono::steady_clock::now()), first_step_(first_step), total_steps_(total_steps) {}

double ProgressClock::elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double ProgressClock::eta(int64_t step) const {
    const int64_t done = step - first_step_;
    if (done <= 0) return 0.0;
    return elapsed() / double(done) * double(total_steps_ - step);
}

std::string format_duration(double seconds) {
    const int64_t s = int64_t(seconds + 0.5);
    if (s >= 3600) return fmt::format("{}h{:02d}m", s / 3600, (s % 3600) / 60);
    if (s >= 60) return fmt::format("{}m{:02d}s", s / 60, s % 60);
    return fmt::format("{}s", s);
}

}  // namespace rpt
