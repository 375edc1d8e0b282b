// The positions file: one JSON object per line, written by `rpt filter` and read by
// `rpt train` and `rpt eval` (see positions.h).
#include <cmath>
#include <fstream>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "model/file_io.h"
#include "rl/positions.h"

namespace rpt {

void write_positions(const std::string& path, const std::vector<ScoredPosition>& positions) {
    std::string text;
    text.reserve(positions.size() * 48);
    for (const ScoredPosition& p : positions)
        text += fmt::format("{{\"doc\": {}, \"pos\": {}, \"entropy\": {:.6f}}}\n", p.doc, p.position, p.entropy);
    write_file_atomic(path, text);
}

std::vector<ScoredPosition> read_positions(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error(fmt::format("{}: cannot open positions file", path));
    return read_positions(in, path);
}

namespace {

// An integer field in [lo, hi]. Checked before conversion: a float or an out-of-range
// integer must not be cast (a double outside int64 is undefined behaviour to convert).
int64_t integer_field(const nlohmann::json& j, const char* key, int64_t lo, int64_t hi) {
    auto it = j.find(key);
    if (it == j.end()) throw std::invalid_argument(fmt::format("missing field '{}'", key));
    // nlohmann stores non-negative integers as unsigned: compare those as unsigned.
    const bool in_range = it->is_number_unsigned()
                              ? it->get<uint64_t>() <= uint64_t(hi) && int64_t(it->get<uint64_t>()) >= lo
                          : it->is_number_integer() ? it->get<int64_t>() >= lo && it->get<int64_t>() <= hi
                                                    : false;
    if (!in_range) throw std::invalid_argument(fmt::format("field '{}' must be an integer in [{}, {}]", key, lo, hi));
    return it->get<int64_t>();
}

}  // namespace

std::vector<ScoredPosition> read_positions(std::istream& in, const std::string& path) {
    std::vector<ScoredPosition> out;
    std::string line;
    int64_t line_no = 0;
    while (std::getline(in, line)) {
        ++line_no;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        try {
            const nlohmann::json j = nlohmann::json::parse(line);
            if (!j.is_object()) throw std::invalid_argument("not a JSON object");
            ScoredPosition p;
            p.doc = integer_field(j, "doc", 0, std::numeric_limits<int64_t>::max());
            p.position = int32_t(integer_field(j, "pos", 1, std::numeric_limits<int32_t>::max()));
            const auto e = j.find("entropy");
            // The bound keeps the conversion to float defined.
            const double entropy = e != j.end() && e->is_number() ? e->get<double>() : HUGE_VAL;
            if (!(std::fabs(entropy) <= std::numeric_limits<float>::max()))
                throw std::invalid_argument("field 'entropy' must be a number in float range");
            p.entropy = float(entropy);
            out.push_back(p);
        } catch (const std::exception& e) {
            throw std::runtime_error(fmt::format("{}:{}: bad position record: {}", path, line_no, e.what()));
        }
    }
    return out;
}

}  // namespace rpt
