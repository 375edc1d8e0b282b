// Named presets of `rpt train` flags (--recipe): "paper", every setting of the paper's
// Table 5 and §4 (arXiv 2506.08007) that rpt has a flag for, and "demo", a laptop-sized
// run. A recipe is data, a list of (flag, value): each value is given to its flag as if
// typed, unless the flag was given explicitly, which wins.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace rpt::cli {

struct RecipeSetting {
    const char* flag;
    const char* value;
    const char* paper;  // what the paper says (its value and where), for the help and the README
};

struct Recipe {
    const char* name;
    const char* what;
    std::vector<RecipeSetting> settings;
};

const std::vector<Recipe>& recipes();
// The --recipe help text: every recipe with its settings.
std::string recipe_help();
// Sets every flag of the named recipe that `cmd` did not get explicitly, as if typed
// (so each value passes the flag's own checks). Returns the line to print at start:
// the recipe, its values, and the flags that overrode it. Throws std::invalid_argument
// naming --recipe for an unknown name.
std::string apply_recipe(CLI::App& cmd, const std::string& name);

}  // namespace rpt::cli
