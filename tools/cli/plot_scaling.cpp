#include "tools/cli/plot_scaling.h"

#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "model/file_io.h"
#include "tools/cli/plot.h"

namespace rpt::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kSplits[] = {"easy", "medium", "hard"};


// A number the study must hold at `where`, named in the error when it does not.
double number_at(const json& j, const std::string& key, const std::string& source, const std::string& where) {
    if (!j.is_object() || !j.contains(key) || !j[key].is_number())
        throw std::runtime_error(fmt::format("{}: {}.{} is missing or not a number (is it the JSON of `rpt eval "
                                             "--checkpoints`?)",
                                             source, where, key));
    return j[key].get<double>();
}

// "flops accuracy" lines of one split's checkpoints at positive compute.
std::string split_points(const json& study, const std::string& split, const std::string& metric,
                         const std::string& source) {
    std::string rows;
    for (const json& c : study.at("checkpoints")) {
        const double flops = number_at(c, "rpt_flops", source, "checkpoints[]");
        if (flops <= 0) continue;
        const json& s = c.at("splits").at(split);
        rows += fmt::format("{} {}\n", flops, number_at(s, metric, source, "splits." + split));
    }
    return rows;
}

// The gnuplot clauses of one split: its points, and its fitted curve.
std::string split_clauses(const json& fit, const std::string& split, const std::string& dat, int colour,
                          const std::string& source) {
    const std::string where = "fits." + split;
    const double p = number_at(fit, "p_star", source, where), a = number_at(fit, "a", source, where);
    const double alpha = number_at(fit, "alpha", source, where), r2 = number_at(fit, "r_squared", source, where);
    const bool flat = fit.value("flat", false);
    const std::string curve = flat ? fmt::format("{}", 100.0 * p) : fmt::format("100*({} - ({})*x**(-{}))", p, a, alpha);
    const std::string title = flat ? fmt::format("{} fit: flat at {:.1f}", split, 100.0 * p)
                                   : fmt::format("{} fit: P* {:.1f}, alpha {:.3f}, R² {:.3f}", split, 100.0 * p,
                                                 alpha, r2);
    return fmt::format("{} using 1:(100*$2) with points pt 7 lc {} title {}, {} with lines lc {} title {}",
                       gnuplot_quoted(dat), colour, gnuplot_quoted(split + " checkpoints"), curve, colour,
                       gnuplot_quoted(title));
}

}  // namespace

void plot_scaling(const std::string& study_json, const std::string& out, const std::string& metric) {
    const std::string ext = fs::path(out).extension().string();
    if (ext != ".svg" && ext != ".png") throw std::invalid_argument(fmt::format("--out {}: use .svg or .png", out));
    json study;
    try {
        study = json::parse(read_file(study_json));
    } catch (const json::exception& e) {
        throw std::runtime_error(fmt::format("{}: not JSON: {}", study_json, e.what()));
    }
    if (!study.is_object() || !study.contains("checkpoints") || !study["checkpoints"].is_array() ||
        !study.contains("fits") || !study["fits"].is_object())
        throw std::runtime_error(fmt::format("{}: not the JSON of `rpt eval --checkpoints` (no checkpoints and fits)",
                                             study_json));
    const std::string data_dir = out + ".data";
    ensure_directory(data_dir);
    std::string clauses;
    int colour = 1;
    for (const char* split : kSplits) {
        if (!study["fits"].contains(split) || !study["fits"][split].contains(metric)) continue;
        const std::string dat = fmt::format("{}/{}_{}.dat", data_dir, split, metric);
        write_file_atomic(dat, split_points(study, split, metric, study_json));
        clauses += (clauses.empty() ? "" : ", ") +
                   split_clauses(study["fits"][split][metric], split, dat, colour++, study_json);
    }
    if (clauses.empty())
        throw std::runtime_error(fmt::format("{}: no {} fits (was it evaluated with --mode standard?)", study_json,
                                             metric));
    const std::string script = fmt::format(
        "set terminal {} size 900,700 noenhanced\nset output {}\nset grid\nset key below\nset logscale x\n"
        "set format x \"%.0e\"\nset xlabel \"RPT training compute (FLOPs)\"\nset ylabel \"{} accuracy (%)\"\n"
        "set title \"scaling: P(C) = P* - A / C^alpha per split\"\nplot {}\n",
        ext == ".svg" ? "svg dynamic" : "png", gnuplot_quoted(out + ".tmp"), metric, clauses);
    run_gnuplot(script, data_dir, out);
}

}  // namespace rpt::cli
