// The sharded-checkpoint index reader (see safetensors_index.h).
#include "model/safetensors_index.h"

#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace rpt {
namespace {

// A name as a JSON string, so control characters (even NUL) show in messages.
std::string quoted(const std::string& s) { return nlohmann::json(s).dump(); }

}  // namespace

std::map<std::string, std::string> parse_safetensors_index(std::string_view text, const std::string& path) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error(fmt::format("{}: invalid JSON: {}", path, e.what()));
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
        throw std::runtime_error(fmt::format("{}: missing object field 'weight_map'", path));
    // Plain file names: no separators, no "." or "..", no NUL (which would cut the path).
    std::map<std::string, std::string> map;
    for (const auto& [name, shard] : j["weight_map"].items()) {
        if (!shard.is_string())
            throw std::runtime_error(fmt::format("{}: weight_map[{}] must be a file name string", path, quoted(name)));
        const std::string file = shard.get<std::string>();
        if (file.empty() || file == "." || file == ".." || file.find_first_of(std::string("/\\\0", 3)) != std::string::npos)
            throw std::runtime_error(
                fmt::format("{}: weight_map[{}] = {} is not a file name in the checkpoint directory", path, quoted(name),
                            quoted(file)));
        map.emplace(name, file);
    }
    return map;
}

}  // namespace rpt
