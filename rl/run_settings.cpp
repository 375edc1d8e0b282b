#include "rl/run_settings.h"

#include <algorithm>
#include <stdexcept>

#include "rl/fingerprint.h"

namespace rpt {
namespace {

using nlohmann::json;

constexpr const char* kCommandKey = "command";
constexpr const char* kSettingsKey = "settings";
constexpr const char* kTokenizerKey = "tokenizer_fnv1a64";

// A file fingerprint as recorded: null for "no file", else path, size and head hash.
json fingerprint_json(const std::string& path) {
    if (path.empty()) return nullptr;
    const FileFingerprint f = fingerprint_file(path);
    json j = {{"path", f.path}};
    if (!f.readable) {
        j["readable"] = false;
        return j;
    }
    j["bytes"] = f.bytes;
    j["first_mib_fnv1a64"] = hex64(f.head_hash);
    return j;
}

std::string describe_fingerprint(const json& j) {
    if (j.is_null()) return "(none)";
    const std::string path = j.at("path").get<std::string>();
    if (!j.contains("bytes")) return fmt::format("{}, unreadable", path);
    const uint64_t bytes = recorded_setting_value<uint64_t>(j.at("bytes"));
    return fmt::format("{}, {} bytes, first-MiB FNV-1a {}", path, bytes, j.at("first_mib_fnv1a64").get<std::string>());
}

// Same contents: both absent, or both readable with equal size and head hash.
bool same_contents(const json& recorded, const json& now) {
    if (recorded.is_null() || now.is_null()) return recorded.is_null() && now.is_null();
    if (!recorded.contains("bytes") || !now.contains("bytes")) return false;
    return recorded.at("bytes") == now.at("bytes") && recorded.at("first_mib_fnv1a64") == now.at("first_mib_fnv1a64");
}

std::string tokenizer_hash(const Tokenizer& tokenizer) { return hex64(fnv1a64(tokenizer.to_json().dump())); }

}  // namespace

const std::vector<std::string>& changeable_on_resume_flags() {
    // How long and how the run is carried out and reported, never what a step computes:
    // --steps sets the schedule's end (a longer run continues the same one), and
    // --skip-nonfinite only decides what a step that would stop the run does instead.
    // --precision is allowed to change deliberately: checkpoints hold the fp32 masters and
    // moments in either precision, so a bf16 GPU run continues in f32 on the CPU (or the
    // reverse) from the same state; only the rounding of later steps differs. Not given,
    // it keeps the recorded value (auto stays auto: the device's default).
    static const std::vector<std::string> flags = {"--steps",     "--stop-at",        "--checkpoint-every",
                                                   "--log-every", "--eval-every",     "--eval-docs",
                                                   "--metrics",   "--skip-nonfinite", "--kv-budget-mb", "--kv-block-tokens",
                                                   "--device",    "--precision",      "--zero",      "--overlap-reduce",
                                                   "--out"};
    return flags;
}

bool changeable_on_resume(const std::string& flag) {
    const auto& flags = changeable_on_resume_flags();
    return std::find(flags.begin(), flags.end(), flag) != flags.end();
}

void RunSettings::add(RunSetting setting) { settings_.push_back(std::move(setting)); }

void RunSettings::add_file(const std::string& flag, std::string& path) {
    add(RunSetting{flag,
                   [&path] { return fingerprint_json(path); },
                   [&path](const json& j) { path = j.is_null() ? std::string() : j.at("path").get<std::string>(); },
                   describe_fingerprint, same_contents});
}

json RunSettings::record(const Tokenizer& tokenizer) const {
    json settings = json::object();
    for (const RunSetting& s : settings_) settings[s.flag] = s.get();
    return {{kCommandKey, command_}, {kSettingsKey, settings}, {kTokenizerKey, tokenizer_hash(tokenizer)}};
}

std::vector<std::string> RunSettings::resume(const json& run, const FlagGiven& given, const std::string& origin) {
    std::vector<std::string> warnings;
    // Phase 1: a record to resume from, made by this command.
    if (run.is_null()) {
        warnings.push_back(fmt::format("{} records no run settings (an older checkpoint): the flags given now "
                                       "define the resumed run",
                                       origin));
        return warnings;
    }
    if (!run.is_object() || !run.contains(kCommandKey) || !run[kCommandKey].is_string() ||
        !run.contains(kSettingsKey) || !run[kSettingsKey].is_object())
        throw std::runtime_error(fmt::format("{}/trainer_state.json: malformed run record (expected an object "
                                             "with '{}' and '{}')",
                                             origin, kCommandKey, kSettingsKey));
    const std::string made_by = run[kCommandKey].get<std::string>();
    if (made_by != command_)
        throw std::invalid_argument(fmt::format("--resume {}: a `{}` run cannot be resumed by `{}` (start from its "
                                                "weights with --model {})",
                                                origin, made_by, command_, origin));
    const json& recorded = run[kSettingsKey];

    // Phase 2: each setting takes the recorded value unless given, and a given one must match.
    for (const RunSetting& s : settings_) {
        const auto it = recorded.find(s.flag);
        if (it == recorded.end()) {
            warnings.push_back(fmt::format("{} does not record {}: using {}", origin, s.flag, s.describe(s.get())));
            continue;
        }
        const bool flag_given = given(s.flag);
        try {
            if (changeable_on_resume(s.flag)) {
                if (!flag_given) s.set(*it);
                continue;
            }
            if (!flag_given) s.set(*it);
            const json now = s.get();
            const bool same = s.same ? s.same(*it, now) : *it == now;
            if (!same) {
                const std::string remedy =
                    flag_given ? fmt::format("drop {} to continue the run as recorded", s.flag)
                               : fmt::format("the file changed since; give {} the run's file", s.flag);
                throw std::invalid_argument(fmt::format(
                    "{} {} differs from the run being resumed ({}); {}, or start a new run from its weights with "
                    "--model {}",
                    s.flag, s.describe(now), s.describe(*it), remedy, origin));
            }
            if (*it != now)
                warnings.push_back(fmt::format("{} {}: the run being resumed read {} (same size and first-MiB hash): "
                                               "continuing with this file",
                                               s.flag, s.describe(now), s.describe(*it)));
        } catch (const json::exception& e) {
            throw std::runtime_error(fmt::format("{}/trainer_state.json: recorded run setting {} is malformed: {}",
                                                 origin, s.flag, e.what()));
        } catch (const std::domain_error& e) {
            throw std::runtime_error(fmt::format("{}/trainer_state.json: recorded run setting {} is malformed: {}",
                                                 origin, s.flag, e.what()));
        }
    }
    return warnings;
}

std::string run_record_command(const json& run) {
    if (!run.is_object() || !run.contains(kCommandKey) || !run[kCommandKey].is_string()) return "";
    return run[kCommandKey].get<std::string>();
}

void check_run_tokenizer(const json& run, const Tokenizer& tokenizer, const std::string& what) {
    if (!run.is_object() || !run.contains(kTokenizerKey)) return;
    const json& recorded = run[kTokenizerKey];
    const std::string now = tokenizer_hash(tokenizer);
    if (recorded != now)
        throw std::invalid_argument(fmt::format("{} (FNV-1a {}) is not the tokenizer of the run being resumed "
                                                "(FNV-1a {})",
                                                what, now, recorded.is_string() ? recorded.get<std::string>()
                                                                                : recorded.dump()));
}

}  // namespace rpt
