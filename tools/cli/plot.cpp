#include "tools/cli/plot.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "model/file_io.h"

namespace rpt::cli {
namespace {

namespace fs = std::filesystem;

// What the two panels show, by metrics field.
struct Curve {
    const char* field;
    const char* what;
    int panel;    // 1: reward, 2: hard-split accuracy
    bool noisy;   // per-step values: drawn thin, with a smoothed trend on top
};
constexpr Curve kCurves[] = {
    {"reward_mean", "training reward", 1, true},
    {"eval_hard_reasoning", "held-out hard reasoning reward", 1, false},
    {"eval_hard_standard", "held-out hard standard accuracy", 2, false},
    {"eval_hard_reasoning", "held-out hard reasoning accuracy", 2, false},
};
constexpr double kTera = 1e12;

std::string quoted(const std::string& s) {
    std::string out = "\"";
    for (char c : s) out += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
    return out + "\"";
}

}  // namespace

void plot_metrics(const std::vector<PlotSeries>& runs, const std::string& out, const std::string& x_field) {
    const std::string ext = fs::path(out).extension().string();
    if (ext != ".svg" && ext != ".png") throw std::invalid_argument(fmt::format("--out {}: use .svg or .png", out));
    if (x_field != "flops" && x_field != "step") throw std::invalid_argument("--x must be flops or step");
    const std::string data_dir = out + ".data";
    ensure_directory(data_dir);

    std::string plots[3];  // per panel, the gnuplot plot clauses
    for (size_t r = 0; r < runs.size(); ++r) {
        std::ifstream in(runs[r].metrics_path);
        if (!in) throw std::runtime_error(fmt::format("{}: cannot open metrics file", runs[r].metrics_path));
        std::string rows[std::size(kCurves)];
        std::string line;
        int line_no = 0;
        double cumulative_flops = 0;
        while (std::getline(in, line)) {
            ++line_no;
            if (line.empty()) continue;
            nlohmann::json j;
            try {
                j = nlohmann::json::parse(line);
            } catch (const nlohmann::json::exception&) {
                throw std::runtime_error(fmt::format("{}:{}: not a JSON object", runs[r].metrics_path, line_no));
            }
            if (j.contains("flops") && j["flops"].is_number()) cumulative_flops += j["flops"].get<double>();
            const double x = x_field == "flops" ? cumulative_flops / kTera : j.value("step", 0.0);
            for (size_t c = 0; c < std::size(kCurves); ++c)
                if (j.contains(kCurves[c].field) && j[kCurves[c].field].is_number())
                    rows[c] += fmt::format("{} {}\n", x, j[kCurves[c].field].get<double>());
        }
        for (size_t c = 0; c < std::size(kCurves); ++c) {
            if (rows[c].empty()) continue;
            const std::string dat = fmt::format("{}/run{}_{}_{}.dat", data_dir, r, kCurves[c].panel, kCurves[c].field);
            write_file_atomic(dat, rows[c]);
            std::string& clause = plots[kCurves[c].panel];
            const std::string title = runs[r].label + ": " + kCurves[c].what;
            if (kCurves[c].noisy)
                clause += fmt::format("{}{} using 1:2 with lines lw 0.5 title {}, {} using 1:2 smooth bezier lw 2 title {}",
                                      clause.empty() ? "" : ", ", quoted(dat), quoted(title), quoted(dat),
                                      quoted(title + " (smoothed)"));
            else
                clause += fmt::format("{}{} using 1:2 with linespoints title {}", clause.empty() ? "" : ", ",
                                      quoted(dat), quoted(title));
        }
    }
    if (plots[1].empty() && plots[2].empty())
        throw std::runtime_error("no reward or hard-split accuracy fields in the metrics files");

    const std::string xlabel = x_field == "flops" ? "training compute (TFLOP)" : "step";
    std::string script = fmt::format(
        "set terminal {} size 1000,800\nset output {}\nset multiplot layout 2,1\nset grid\nset key outside right\n"
        "set xlabel {}\n",
        ext == ".svg" ? "svg dynamic" : "png", quoted(out + ".tmp"), quoted(xlabel));
    if (!plots[1].empty()) script += "set title \"mean reward\"\nset ylabel \"reward\"\nplot " + plots[1] + "\n";
    if (!plots[2].empty())
        script += "set title \"hard split (entropy > threshold)\"\nset ylabel \"accuracy\"\nplot " + plots[2] + "\n";
    script += "unset multiplot\n";
    const std::string script_path = data_dir + "/plot.gp";
    write_file_atomic(script_path, script);
    const std::string command = fmt::format("gnuplot {} 2>{}/gnuplot.log", quoted(script_path), quoted(data_dir));
    if (std::system(command.c_str()) != 0)
        throw std::runtime_error(fmt::format("gnuplot failed (is gnuplot-nox installed?); see {}/gnuplot.log", data_dir));
    fs::rename(out + ".tmp", out);
}

}  // namespace rpt::cli
