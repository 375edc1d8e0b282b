// A bound on the nesting of the JSON files rpt reads (tokenizer.json, config.json,
// trainer_state.json). nlohmann's parser and destructor are iterative, but copying,
// comparing and dumping a value recurse once per level, so a hostile file of a million
// '[' would overflow the stack later (when a value is kept or quoted in an error);
// such files are refused at load instead.
#pragma once

#include <nlohmann/json.hpp>

namespace rpt {

// Far above what any real file nests (under 10 levels).
constexpr int kMaxJsonDepth = 64;

// Whether `j` nests at most `max_depth` levels (a scalar is depth 0). Recurses at most
// max_depth + 1 deep, however deep `j` is.
inline bool json_depth_within(const nlohmann::json& j, int max_depth) {
    if (!j.is_structured()) return true;
    if (max_depth <= 0) return false;
    for (const nlohmann::json& child : j)
        if (!json_depth_within(child, max_depth - 1)) return false;
    return true;
}

}  // namespace rpt
