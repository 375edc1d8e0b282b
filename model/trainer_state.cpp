// The trainer_state.json reader (see trainer_state.h).
#include "model/trainer_state.h"

#include <limits>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "model/json_depth.h"

namespace rpt {

TrainingStateFile parse_training_state(std::string_view text, const std::string& path) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error(fmt::format("{}: invalid JSON: {}", path, e.what()));
    }
    if (!j.is_object()) throw std::runtime_error(fmt::format("{}: not a JSON object", path));
    if (!json_depth_within(j, kMaxJsonDepth))
        throw std::runtime_error(fmt::format("{}: nested deeper than {} levels", path, kMaxJsonDepth));
    // Integers are range-checked before conversion: a negative step or cursor is an
    // error, not a wrapped-around huge one.
    auto field = [&](const char* key) -> const nlohmann::json& {
        if (!j.contains(key)) throw std::runtime_error(fmt::format("{}: missing field '{}'", path, key));
        return j[key];
    };
    auto count = [&](const char* key) -> int64_t {
        const nlohmann::json& v = field(key);
        if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0) ||
            (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())))
            throw std::runtime_error(fmt::format("{}: field '{}' must be an integer >= 0", path, key));
        return v.get<int64_t>();
    };
    auto word = [&](const char* key) -> uint64_t {
        const nlohmann::json& v = field(key);
        if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
            throw std::runtime_error(fmt::format("{}: field '{}' must be an unsigned 64-bit integer", path, key));
        return v.get<uint64_t>();
    };
    const nlohmann::json& version = field("version");
    if (!version.is_number_integer() || version.get<int64_t>() != kTrainerStateVersion)
        throw std::runtime_error(fmt::format("{}: unsupported version {}", path, version.dump()));
    TrainingStateFile f;
    f.state.step = count("step");
    f.state.rng_state = word("rng_state");
    f.state.data_cursor = word("data_cursor");
    f.optimizer_steps = count("optimizer_steps");
    if (j.contains("extra") && !j["extra"].is_null()) {
        if (!j["extra"].is_object()) throw std::runtime_error(fmt::format("{}: field 'extra' must be an object", path));
        f.state.extra = j["extra"];
    }
    // The run's settings (rl/run_settings.h); absent in checkpoints from before them.
    if (j.contains("run") && !j["run"].is_null()) {
        if (!j["run"].is_object()) throw std::runtime_error(fmt::format("{}: field 'run' must be an object", path));
        f.state.run = j["run"];
    }
    return f;
}

}  // namespace rpt
