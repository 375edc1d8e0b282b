#include "tools/cli/flag_checks.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>

#include <fmt/format.h>

namespace rpt::cli {
namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

// The value of a whole-string number, or nothing ("1.5x", "", "abc").
std::optional<long double> parse_number(const std::string& text) {
    if (text.empty()) return std::nullopt;
    char* end = nullptr;
    errno = 0;
    const long double value = std::strtold(text.c_str(), &end);
    if (end != text.c_str() + text.size()) return std::nullopt;
    return value;
}

// Float flags land in a float (or a double whose value must fit one): a value too
// large for a float would become inf there.
std::string finite_error(const std::string& text) {
    const std::optional<long double> value = parse_number(text);
    if (!value) return fmt::format("'{}' is not a number", text);
    if (!std::isfinite(static_cast<float>(*value))) return fmt::format("{} is not a finite number", text);
    return "";
}

// A finite value inside low..high, each end open or closed.
CLI::Validator bounded(double low, bool low_open, double high, bool high_open) {
    const std::string range = fmt::format("{}{}, {}{}", low_open ? "(" : "[", low, high == kInfinity ? "inf" : fmt::format("{}", high),
                                          high_open ? ")" : "]");
    auto check = [=](std::string& text) -> std::string {
        if (std::string error = finite_error(text); !error.empty()) return error;
        const float value = static_cast<float>(*parse_number(text));
        const bool inside = (low_open ? value > low : value >= low) && (high_open ? value < high : value <= high);
        return inside ? "" : fmt::format("{} is outside {}", text, range);
    };
    return CLI::Validator(check, "in " + range);
}

}  // namespace

CLI::Validator positive() { return bounded(0, true, kInfinity, true); }
CLI::Validator non_negative() { return bounded(0, false, kInfinity, true); }
CLI::Validator fraction() { return bounded(0, false, 1, false); }
CLI::Validator below_one() { return bounded(0, false, 1, true); }
CLI::Validator probability_mass() { return bounded(0, true, 1, false); }
CLI::Validator closed_range(double low, double high) { return bounded(low, false, high, false); }
CLI::Validator positive_at_most(double high) { return bounded(0, true, high, false); }

void check_number_flags(CLI::App& app) {
    // CLI11 names each option's type: FLOAT (float, double), UINT, INT, TEXT, ...,
    // followed by its validators' descriptions.
    const CLI::Validator finite([](std::string& text) { return finite_error(text); }, "");
    const CLI::Validator not_negative(
        [](std::string& text) { return text.rfind('-', 0) == 0 ? fmt::format("{} is negative", text) : std::string(); },
        "");
    for (CLI::Option* option : app.get_options()) {
        const std::string type = option->get_type_name();
        if (type.rfind("FLOAT", 0) == 0) option->check(finite);
        else if (type.rfind("UINT", 0) == 0) option->check(not_negative);
    }
    for (CLI::App* command : app.get_subcommands([](CLI::App*) { return true; })) check_number_flags(*command);
}

}  // namespace rpt::cli
