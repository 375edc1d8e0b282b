#include "model/output_guard.h"

#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "model/file_io.h"
#include "model/stale_temporaries.h"

namespace rpt {
namespace {

namespace fs = std::filesystem;

constexpr const char* kWrittenBy = "rpt";
constexpr const char* kOverwriteHint = "choose another path or add --overwrite to replace it";

std::invalid_argument refusal(const std::string& flag, const std::string& path, const std::string& why) {
    return std::invalid_argument(fmt::format("{} {}: {}", flag, path, why));
}

// The nearest existing directory above `path`: where a new entry will be created
// (directory outputs create missing parents) and renamed into place.
fs::path nearest_existing_parent(const fs::path& path) {
    fs::path parent = path.parent_path();
    std::error_code ec;
    while (!parent.empty() && !fs::exists(fs::symlink_status(parent, ec))) parent = parent.parent_path();
    return parent.empty() ? fs::path(".") : parent;
}

// A new entry at `path` needs a writable directory above it: found out now, not after
// hours of training.
void check_parent_writable(const std::string& flag, const std::string& path, const fs::path& parent) {
    std::error_code ec;
    if (!fs::is_directory(parent, ec)) throw refusal(flag, path, fmt::format("{} is not a directory", parent.string()));
    if (::access(parent.c_str(), W_OK | X_OK) != 0)
        throw refusal(flag, path, fmt::format("cannot write in {}", parent.string()));
}

// "it holds 'a.txt' and 3 more": names the smallest entry, so the message is stable.
std::string describe_contents(const fs::path& dir) {
    std::string first;
    size_t count = 0;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (count++ == 0 || name < first) first = name;
    }
    if (count == 0) return "entries it cannot list";
    return count == 1 ? fmt::format("'{}'", first) : fmt::format("'{}' and {} more", first, count - 1);
}

bool same_directory(const std::string& a, const std::string& b) {
    std::error_code ec;
    return !b.empty() && fs::equivalent(a, b, ec) && !ec;
}

}  // namespace

void write_output_marker(const std::string& dir, const std::string& kind) {
    const nlohmann::json marker = {{"written_by", kWrittenBy}, {"kind", kind}};
    write_file_atomic((fs::path(dir) / kOutputMarkerFile).string(), marker.dump(2) + "\n");
}

std::string output_marker_kind(const std::string& dir) {
    const fs::path path = fs::path(dir) / kOutputMarkerFile;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) return "";
    // A marker that does not parse is not rpt's: the directory is treated as foreign.
    const nlohmann::json j = nlohmann::json::parse(read_file(path.string()), nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || j.value("written_by", "") != kWrittenBy) return "";
    const nlohmann::json kind = j.value("kind", nlohmann::json());
    return kind.is_string() ? kind.get<std::string>() : "";
}

void claim_directory_output(const std::string& flag, const std::string& path, const std::string& kind,
                            bool overwrite, const std::string& resume_dir) {
    // Phase 1: decide from what is at the path now.
    std::error_code ec;
    const fs::path target(path);
    const bool exists = fs::exists(fs::symlink_status(target, ec));
    if (!exists) {
        check_parent_writable(flag, path, nearest_existing_parent(target));
    } else if (same_directory(path, resume_dir)) {
        // --resume CK --out CK: the run continues its own checkpoint.
    } else if (fs::is_directory(target, ec)) {
        const std::string found = output_marker_kind(path);
        if (!fs::is_empty(target, ec) && found != kind && !overwrite) {
            if (!found.empty())
                throw refusal(flag, path, fmt::format("holds rpt's {} output, not a {}; {}", found, kind, kOverwriteHint));
            throw refusal(flag, path, fmt::format("is a directory that is not an rpt {} (it holds {}); {}", kind,
                                                  describe_contents(target), kOverwriteHint));
        }
    } else if (!overwrite) {
        throw refusal(flag, path, fmt::format("is an existing file, not an rpt {} directory; {}", kind, kOverwriteHint));
    }
    // Replacing means renaming beside it: the parent must take new entries.
    if (exists) check_parent_writable(flag, path, target.has_parent_path() ? target.parent_path() : fs::path("."));

    // Phase 2: the leftovers of killed writers of this path.
    remove_stale_temporaries(path);
}

void claim_file_output(const std::string& flag, const std::string& path, bool overwrite, bool append) {
    // Phase 1: decide from what is at the path now.
    std::error_code ec;
    const fs::path target(path);
    if (fs::is_directory(target, ec))
        throw refusal(flag, path, "is a directory, and a file goes here (give a file name)");
    const bool exists = fs::exists(fs::symlink_status(target, ec));
    if (exists && !overwrite && !append) throw refusal(flag, path, fmt::format("exists; {}", kOverwriteHint));
    // File writers do not create directories: a missing one is an error now, not at the end.
    const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
    if (!fs::exists(parent, ec))
        throw refusal(flag, path, fmt::format("directory {} does not exist", parent.string()));
    check_parent_writable(flag, path, parent);

    // Phase 2: the leftovers of killed writers of this path.
    remove_stale_temporaries(path);
}

}  // namespace rpt
