// The settings that define a training run, recorded in each of its checkpoints
// (trainer_state.json, "run") so that --resume continues the run that was interrupted
// rather than one built from today's defaults. One rule for every training command:
//   - a setting the command line does not give takes the recorded value;
//   - a setting it gives must equal the recorded one, or the resume is refused with a
//     line naming the flag and both values;
//   - except the flags of changeable_on_resume_flags() (how long to run, how often to
//     checkpoint, log and evaluate, where metrics go, where and on how many ranks it
//     runs): a given value wins, an absent one is taken from the record.
// Input files (corpus, positions) are recorded by content: path, size and a hash of the
// first MiB. A file with the same size and hash under another path is accepted with a
// warning; a changed file is refused naming its flag. The tokenizer is recorded by a
// hash of its JSON.
//
// Settings are bound to the fields of a command's flags (get/set), so the record, the
// comparison and the restore are written once, here, whatever the command.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "model/tokenizer.h"

namespace rpt {

// The flags that may take a new value on resume, in the order --help lists them.
const std::vector<std::string>& changeable_on_resume_flags();
bool changeable_on_resume(const std::string& flag);

struct RunSetting {
    std::string flag;  // e.g. "--seed": the key in the record and the name in messages
    std::function<nlohmann::json()> get;             // the current value, as recorded
    std::function<void(const nlohmann::json&)> set;  // takes a recorded value (may throw json errors)
    std::function<std::string(const nlohmann::json&)> describe;  // a value as messages show it
    // Whether a value may stand for the recorded one; null: equal JSON. Files: same contents.
    std::function<bool(const nlohmann::json& recorded, const nlohmann::json& now)> same;
};

// How a message shows a value: numbers as the flag would take them, "(none)" for "".
template <class T>
std::string describe_setting_value(const T& value) {
    return fmt::format("{}", value);
}
template <>
inline std::string describe_setting_value(const std::string& value) {
    return value.empty() ? "(none)" : value;
}

// A recorded value as T. Numbers must be numbers of the right kind (a float is never
// converted to an integer: out of range that would be undefined); other mismatches throw
// nlohmann's type_error.
template <class T>
T recorded_setting_value(const nlohmann::json& j) {
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
        if (!j.is_number_integer()) throw std::domain_error("expected an integer, found " + j.dump());
    } else if constexpr (std::is_floating_point_v<T>) {
        if (!j.is_number()) throw std::domain_error("expected a number, found " + j.dump());
    }
    return j.get<T>();
}

// A setting of type T seen through a getter and a setter (e.g. an enum by its name).
template <class T>
RunSetting value_setting(const std::string& flag, std::function<T()> get, std::function<void(const T&)> set) {
    return RunSetting{flag,
                      [get] { return nlohmann::json(get()); },
                      [set](const nlohmann::json& j) { set(recorded_setting_value<T>(j)); },
                      [](const nlohmann::json& j) { return describe_setting_value(recorded_setting_value<T>(j)); },
                      nullptr};
}

class RunSettings {
  public:
    // `command` ("pretrain", "train"): a run is resumed only by the command that made it.
    explicit RunSettings(std::string command) : command_(std::move(command)) {}

    void add(RunSetting setting);
    // A setting stored in `field` (which must outlive this object).
    template <class T>
    void add(const std::string& flag, T& field) {
        add(value_setting<T>(
            flag, [&field] { return field; }, [&field](const T& v) { field = v; }));
    }
    // An input file by content; an empty path means none (e.g. the built-in corpus).
    void add_file(const std::string& flag, std::string& path);

    // {"command", "settings": {flag: value}, "tokenizer_fnv1a64"}: what checkpoints store.
    nlohmann::json record(const Tokenizer& tokenizer) const;

    // Applies the rule above to a recorded "run" object (`origin` names the checkpoint
    // in messages): fills the settings not given, throws naming the first flag whose
    // given value differs. Returns warnings for the caller to print: a checkpoint from
    // before the record (run is null), a setting it lacks, a moved input file. Throws
    // std::runtime_error naming `origin` on a malformed record; a fuzz target may call it
    // with any JSON.
    using FlagGiven = std::function<bool(const std::string& flag)>;
    std::vector<std::string> resume(const nlohmann::json& run, const FlagGiven& given, const std::string& origin);

  private:
    std::string command_;
    std::vector<RunSetting> settings_;
};

// The command that made a run record ("pretrain", "train"); "" when there is none.
std::string run_record_command(const nlohmann::json& run);

// Throws when `run` records a tokenizer other than `tokenizer` (`what` names the one in
// use, e.g. "CK/tokenizer.json" or "--tokenizer tok.json"). Nothing to check without a record.
void check_run_tokenizer(const nlohmann::json& run, const Tokenizer& tokenizer, const std::string& what);

}  // namespace rpt
