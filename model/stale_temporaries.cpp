#include "model/stale_temporaries.h"

#include <signal.h>
#include <sys/types.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <system_error>

namespace rpt {
namespace {

namespace fs = std::filesystem;

// The separators of checkpoint.cpp's directories and file_io.cpp's files.
constexpr const char* kTemporarySeparators[] = {".tmp-", ".tmp."};
// publish_directory (model/checkpoint.cpp) without an atomic exchange moves the previous
// checkpoint to "NAME.old-PID" for the moment between its two renames.
constexpr const char* kMovedAsideSeparator = ".old-";
constexpr size_t kMaxPidDigits = 10;

// The PID when `entry` is NAME + separator + PID, else 0.
pid_t owner_after(const std::string& entry, const std::string& name, const char* separator) {
    const std::string prefix = name + separator;
    if (entry.size() <= prefix.size() || entry.compare(0, prefix.size(), prefix) != 0) return 0;
    const std::string digits = entry.substr(prefix.size());
    if (digits.size() > kMaxPidDigits || digits.find_first_not_of("0123456789") != std::string::npos) return 0;
    const long long pid = std::stoll(digits);
    return pid > 0 && pid <= INT_MAX ? pid_t(pid) : 0;
}

// The writer's PID when `entry` is "NAME.tmp-PID" or "NAME.tmp.PID", else 0.
pid_t temporary_owner(const std::string& entry, const std::string& name) {
    for (const char* separator : kTemporarySeparators)
        if (const pid_t pid = owner_after(entry, name, separator)) return pid;
    return 0;
}

// kill(pid, 0) delivers nothing: ESRCH means no such process; EPERM means it exists
// but belongs to another user, so it is running.
bool process_is_running(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

}  // namespace

std::vector<std::string> remove_stale_temporaries(const std::string& target) {
    // Phase 1: NAME and the directory it lives in ("dir/ck/" names "ck" too).
    fs::path path(target);
    if (path.filename().empty()) path = path.parent_path();
    const std::string name = path.filename().string();
    const fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
    std::vector<std::string> removed;
    if (name.empty() || name == "." || name == "..") return removed;

    // Phase 2: collect the dead writers' temporaries and moved-aside versions (never
    // change the directory while iterating it).
    std::vector<std::pair<fs::path, pid_t>> stale, moved_aside;
    std::error_code ec;
    for (fs::directory_iterator it(parent, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string entry = it->path().filename().string();
        if (const pid_t pid = temporary_owner(entry, name); pid > 0 && !process_is_running(pid))
            stale.emplace_back(it->path(), pid);
        if (const pid_t pid = owner_after(entry, name, kMovedAsideSeparator); pid > 0 && !process_is_running(pid))
            moved_aside.emplace_back(it->path(), pid);
    }

    // Phase 3: a writer killed between its two renames left NAME missing and its previous
    // version moved aside: put that back. Any other moved-aside version is stale.
    for (const auto& [previous, pid] : moved_aside) {
        if (!fs::exists(path, ec) && !ec) {
            fs::rename(previous, path, ec);
            if (!ec) {
                std::fprintf(stderr, "restored %s from %s, left by process %d that ended while replacing it\n",
                             path.string().c_str(), previous.string().c_str(), int(pid));
                continue;
            }
        }
        stale.emplace_back(previous, pid);
    }

    // Phase 4: remove the rest, one line each.
    for (const auto& [temporary, pid] : stale) {
        fs::remove_all(temporary, ec);
        if (ec) {
            std::fprintf(stderr, "cannot remove %s, left by process %d that no longer runs: %s\n",
                         temporary.string().c_str(), int(pid), ec.message().c_str());
            continue;
        }
        std::fprintf(stderr, "removed %s, left by process %d that no longer runs\n", temporary.string().c_str(),
                     int(pid));
        removed.push_back(temporary.string());
    }
    return removed;
}

}  // namespace rpt
