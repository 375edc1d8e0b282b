// Checks of number flags, shared by every command. A value must be a number, finite
// (nan and inf are refused by name) and inside the flag's range; CLI11 then reports
// "--FLAG: why" and the program ends with that one line.
#pragma once

#include <CLI/CLI.hpp>

namespace rpt::cli {

CLI::Validator positive();          // (0, inf): learning rates, temperatures, budgets
CLI::Validator non_negative();      // [0, inf): weight decay, clipping, KL weight, thresholds
CLI::Validator fraction();          // [0, 1]: ratios and shares
CLI::Validator below_one();         // [0, 1): AdamW betas, the PPO clip below 1
CLI::Validator probability_mass();  // (0, 1]: top-p
CLI::Validator closed_range(double low, double high);  // [low, high]
CLI::Validator positive_at_most(double high);          // (0, high]

// The net under the per-flag ranges, for every flag of `app` and its subcommands: a
// float flag must be finite as a float (so "nan", "inf" and 1e39 are refused even
// where no range is given), and an unsigned flag must not be negative (CLI11 would
// wrap -1 to 2^64-1). Call once, after every command is registered.
void check_number_flags(CLI::App& app);

}  // namespace rpt::cli
