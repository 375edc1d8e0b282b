#include "tools/cli/plot.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "model/file_io.h"

namespace rpt::cli {
namespace {

namespace fs = std::filesystem;

// The image's two panels; the number is also part of each data file's name.
enum class Panel : int { reward = 1, hard_accuracy = 2 };

// What the panels show, by metrics field.
struct Curve {
    const char* field;
    const char* what;
    Panel panel;
    bool noisy;   // per-step values: drawn thin, with a smoothed trend on top
};
constexpr Curve kCurves[] = {
    {"reward_mean", "training reward", Panel::reward, true},
    {"eval_hard_reasoning", "held-out hard reasoning reward", Panel::reward, false},
    {"eval_hard_standard", "held-out hard standard accuracy", Panel::hard_accuracy, false},
    {"eval_hard_reasoning", "held-out hard reasoning accuracy", Panel::hard_accuracy, false},
};
constexpr size_t kNumCurves = std::size(kCurves);
constexpr double kTera = 1e12;

// The gnuplot plot clauses of each panel.
struct PanelClauses {
    std::string reward, hard_accuracy;
    std::string& of(Panel p) { return p == Panel::reward ? reward : hard_accuracy; }
};


// Per curve, the "x y" lines of one run's metrics file (empty where it lacks the field).
std::vector<std::string> read_curves(const std::string& metrics_path, const std::string& x_field) {
    std::ifstream in(metrics_path);
    if (!in) throw std::runtime_error(fmt::format("{}: cannot open metrics file", metrics_path));
    std::vector<std::string> rows(kNumCurves);
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
            throw std::runtime_error(fmt::format("{}:{}: not a JSON object", metrics_path, line_no));
        }
        if (j.contains("flops") && j["flops"].is_number()) cumulative_flops += j["flops"].get<double>();
        const double x = x_field == "flops" ? cumulative_flops / kTera : j.value("step", 0.0);
        for (size_t c = 0; c < kNumCurves; ++c)
            if (j.contains(kCurves[c].field) && j[kCurves[c].field].is_number())
                rows[c] += fmt::format("{} {}\n", x, j[kCurves[c].field].get<double>());
    }
    return rows;
}

// Writes run r's curves as data files and adds their plot clauses to the panels.
void add_run(const PlotSeries& run, size_t r, const std::string& x_field, const std::string& data_dir,
             PanelClauses& plots) {
    const std::vector<std::string> rows = read_curves(run.metrics_path, x_field);
    for (size_t c = 0; c < kNumCurves; ++c) {
        if (rows[c].empty()) continue;
        const std::string dat =
            fmt::format("{}/run{}_{}_{}.dat", data_dir, r, int(kCurves[c].panel), kCurves[c].field);
        write_file_atomic(dat, rows[c]);
        std::string& clause = plots.of(kCurves[c].panel);
        const std::string title = run.label + ": " + kCurves[c].what;
        if (kCurves[c].noisy)
            clause += fmt::format("{}{} using 1:2 with lines lw 0.5 title {}, {} using 1:2 smooth bezier lw 2 title {}",
                                  clause.empty() ? "" : ", ", gnuplot_quoted(dat), gnuplot_quoted(title),
                                  gnuplot_quoted(dat), gnuplot_quoted(title + " (smoothed)"));
        else
            clause += fmt::format("{}{} using 1:2 with linespoints title {}", clause.empty() ? "" : ", ",
                                  gnuplot_quoted(dat), gnuplot_quoted(title));
    }
}

}  // namespace

void plot_metrics(const std::vector<PlotSeries>& runs, const std::string& out, const std::string& x_field) {
    const std::string ext = fs::path(out).extension().string();
    if (ext != ".svg" && ext != ".png") throw std::invalid_argument(fmt::format("--out {}: use .svg or .png", out));
    if (x_field != "flops" && x_field != "step") throw std::invalid_argument("--x must be flops or step");
    const std::string data_dir = out + ".data";
    ensure_directory(data_dir);

    PanelClauses plots;
    for (size_t r = 0; r < runs.size(); ++r) add_run(runs[r], r, x_field, data_dir, plots);
    if (plots.reward.empty() && plots.hard_accuracy.empty())
        throw std::runtime_error("no reward or hard-split accuracy fields in the metrics files");

    const std::string xlabel = x_field == "flops" ? "training compute (TFLOP)" : "step";
    std::string script = fmt::format(
        "set terminal {} size 1000,800\nset output {}\nset multiplot layout 2,1\nset grid\nset key outside right\n"
        "set xlabel {}\n",
        ext == ".svg" ? "svg dynamic" : "png", gnuplot_quoted(out + ".tmp"), gnuplot_quoted(xlabel));
    if (!plots.reward.empty())
        script += "set title \"mean reward\"\nset ylabel \"reward\"\nplot " + plots.reward + "\n";
    if (!plots.hard_accuracy.empty())
        script += "set title \"hard split (entropy > threshold)\"\nset ylabel \"accuracy\"\nplot " +
                  plots.hard_accuracy + "\n";
    script += "unset multiplot\n";
    run_gnuplot(script, data_dir, out);
}

std::string gnuplot_quoted(const std::string& s) {
    std::string out = "\"";
    for (char c : s) out += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
    return out + "\"";
}

void run_gnuplot(const std::string& script, const std::string& data_dir, const std::string& out) {
    const std::string script_path = data_dir + "/plot.gp";
    write_file_atomic(script_path, script);
    const std::string command =
        fmt::format("gnuplot {} 2>{}/gnuplot.log", gnuplot_quoted(script_path), gnuplot_quoted(data_dir));
    if (std::system(command.c_str()) != 0)
        throw std::runtime_error(fmt::format("gnuplot failed (is gnuplot-nox installed?); see {}/gnuplot.log", data_dir));
    std::filesystem::rename(out + ".tmp", out);
}

}  // namespace rpt::cli
