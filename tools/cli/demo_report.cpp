// The demo's report (see demo_report.h).
#include "tools/cli/demo_report.h"

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

#include "model/file_io.h"
#include "rl/statistics.h"
#include "tools/cli/plot.h"
#include "tools/cli/rpt_flags.h"

namespace rpt::cli {
namespace {

// The comparisons every seed reports, the paper's claim first.
struct ComparisonSpec {
    const char* a;
    EvalMode a_mode;
    const char* b;
    EvalMode b_mode;
    const char* why;
};
constexpr ComparisonSpec kComparisons[] = {
    {"RPT", EvalMode::reasoning, "NTP-continued", EvalMode::standard, "the paper's claim (Table 1)"},
    {"RPT", EvalMode::reasoning, "start", EvalMode::reasoning, "what RL adds to the reasoning"},
    {"start", EvalMode::reasoning, "start", EvalMode::standard, "what the worked examples gave the start model"},
    {"NTP-continued", EvalMode::standard, "start", EvalMode::standard, "what continued NTP adds"},
};
constexpr double kGoalPoints = 0.03;  // issue 14: RPT ahead by 3 points...
constexpr double kGoalP = 0.05;       // ...with p < 0.05

std::string comparison_key(const ComparisonSpec& c) {
    return fmt::format("{} {} - {} {}", c.a, eval_mode_name(c.a_mode), c.b, eval_mode_name(c.b_mode));
}

std::vector<SplitComparison> run_comparison(const DemoSeedResult& r, const ComparisonSpec& c) {
    const EvalSide a{c.a, &r.row(c.a), c.a_mode}, b{c.b, &r.row(c.b), c.b_mode};
    return compare_evaluations(a, b, r.eval_positions, r.seed);
}

nlohmann::json grid_json(const std::vector<GridTrial>& grid, float chosen) {
    nlohmann::json j = {{"chosen_lr", chosen}, {"trials", nlohmann::json::array()}};
    for (const GridTrial& t : grid) j["trials"].push_back({{"lr", t.lr}, {"validation_hard", t.score}, {"steps", t.steps}});
    return j;
}

void print_trace_metrics(const DemoSeedResult& r) {
    std::printf("\nreasoning on the hard split (trace tokens; traces whose equations all hold; rewarded predictions "
                "that followed such a trace):\n");
    for (const auto& [name, report] : r.rows) {
        const SplitResult& h = report.hard();
        std::printf("  %-14s %5.1f tokens | %5.1f%% correct traces | %5.1f%% of correct predictions\n", name.c_str(),
                    h.trace_tokens, 100 * h.traces_correct, 100 * h.correct_from_trace);
    }
}

// The hard split in two: positions inside a computed value (a trace can work them out)
// and the rest (numbers the problem draws, words: no trace can help).
nlohmann::json computed_breakdown(const DemoSeedResult& r) {
    nlohmann::json j;
    std::printf("\nhard split by kind of position (standard / reasoning accuracy):\n");
    for (const auto& [name, report] : r.rows) {
        const float hard = report.hard().threshold;
        std::string line = fmt::format("  {:<14}", name);
        for (const bool computed : {true, false}) {
            std::vector<double> standard, reasoning;
            for (size_t i = 0; i < r.eval_positions.size(); ++i) {
                if (!(r.eval_positions[i].entropy > hard) || bool(r.computed[i]) != computed) continue;
                standard.push_back(report.outcomes[i].standard_hit);
                reasoning.push_back(report.outcomes[i].reward);
            }
            const Estimate s = estimate_mean(standard), q = estimate_mean(reasoning);
            const char* kind = computed ? "computed" : "other";
            line += fmt::format(" | {} ({} positions): {:.1f} / {:.1f}", kind, s.n, 100 * s.mean, 100 * q.mean);
            j[name][kind] = {{"standard", s.to_json()}, {"reasoning", q.to_json()}};
        }
        std::printf("%s\n", line.c_str());
    }
    return j;
}

// The responses of the start model and of RPT at the first hard positions where the
// start model wrote a trace (or the first hard ones).
void print_traces(const DemoFlags& f, const DemoSeedResult& r) {
    if (f.show_traces <= 0) return;
    const EvalReport& start = r.row("start");
    const EvalReport& rpt = r.row("RPT");
    std::vector<size_t> shown;
    for (const bool need_trace : {true, false})
        for (size_t i = 0; i < r.eval_positions.size() && int(shown.size()) < f.show_traces; ++i)
            if (r.eval_positions[i].entropy > start.hard().threshold &&
                (!need_trace || start.outcomes[i].trace.equations > 0) &&
                std::find(shown.begin(), shown.end(), i) == shown.end())
                shown.push_back(i);
    std::printf("\ntraces at the same positions, before and after RPT:\n");
    for (size_t i : shown) {
        const ScoredPosition& p = r.eval_positions[i];
        std::printf("-- document %lld, position %lld (entropy %.2f)\n", (long long)p.doc, (long long)p.position,
                    p.entropy);
        for (const auto& [name, report] : {std::pair<const char*, const EvalReport*>{"start", &start}, {"RPT", &rpt}}) {
            const PositionOutcome& o = report->outcomes[i];
            std::printf("   %-5s reward %.0f: %s\n", name, o.reward, fmt::format("{:?}", o.response).c_str());
        }
    }
}

}  // namespace

void report_seed(const DemoFlags& f, const DemoSeedResult& r) {
    std::printf("\nrpt demo%s, seed %llu: tiny model, %zu documents, %d pre-training steps%s, %d RPT steps (16 contexts x 8 "
                "rollouts, lr %.0e) vs %lld continued-NTP steps (lr %.0e) at equal compute (%.2f TFLOP)\n\n",
                f.quick ? " --quick" : "", (unsigned long long)r.seed, r.documents, f.pretrain_steps,
                r.worked_examples ? " with worked examples" : "", f.rpt_steps, r.rpt_lr, (long long)r.ntp_steps,
                r.ntp_lr, r.rpt_flops * 1e-12);
    print_eval_table(r.rows, true);
    nlohmann::json summary = {{"quick", f.quick},         {"seed", r.seed},         {"rpt_flops", r.rpt_flops},
                              {"ntp_steps", r.ntp_steps}, {"rpt_steps", f.rpt_steps}, {"seconds", r.seconds},
                              {"worked_examples", r.worked_examples},
                              {"grids", {{"rpt", grid_json(r.rpt_grid, r.rpt_lr)}, {"ntp", grid_json(r.ntp_grid, r.ntp_lr)}}}};
    for (const auto& [name, report] : r.rows)
        for (const SplitResult& s : report.splits) summary["results"][name][s.name] = split_json(report, r.eval_positions, s);
    std::printf("\n");
    for (const ComparisonSpec& c : kComparisons) {
        const std::vector<SplitComparison> splits = run_comparison(r, c);
        const EvalSide a{c.a, &r.row(c.a), c.a_mode}, b{c.b, &r.row(c.b), c.b_mode};
        std::printf("%s", describe_comparison(a, b, splits).c_str());
        nlohmann::json j = comparison_json(a, b, splits);
        j["why"] = c.why;
        summary["comparisons"][comparison_key(c)] = j;
    }
    print_trace_metrics(r);
    if (r.worked_examples) summary["hard_by_kind"] = computed_breakdown(r);
    print_traces(f, r);
    write_file_atomic(r.dir + "/summary.json", summary.dump(2) + "\n");
    plot_metrics({{r.dir + "/rpt.jsonl", "RPT"}, {r.dir + "/ntp.jsonl", "NTP-continued"}}, r.dir + "/curves.svg",
                 "flops");
}

void report_seeds(const DemoFlags& f, const std::vector<DemoSeedResult>& results) {
    if (results.size() < 2) return;
    nlohmann::json summary = {{"quick", f.quick}, {"seeds", nlohmann::json::array()}};
    for (const DemoSeedResult& r : results) summary["seeds"].push_back({{"seed", r.seed}, {"dir", r.dir}});
    std::printf("\nover %zu seeds (mean, sd, 95%% t interval of the mean; per-seed paired tests in each seed's "
                "summary.json):\n", results.size());
    for (const ComparisonSpec& c : kComparisons) {
        std::printf("%s:\n", comparison_key(c).c_str());
        for (const char* split : {"easy", "medium", "hard"}) {
            std::vector<double> diffs, a, b;
            int goal_met = 0;
            for (const DemoSeedResult& r : results)
                for (const SplitComparison& s : run_comparison(r, c)) {
                    if (s.split != split) continue;
                    diffs.push_back(s.a_minus_b.difference);
                    a.push_back(s.a.mean);
                    b.push_back(s.b.mean);
                    goal_met += s.a_minus_b.difference >= kGoalPoints && s.a_minus_b.mcnemar_p < kGoalP;
                }
            const SeedSpread d = spread_over_seeds(diffs);
            std::printf("  %-6s %+5.1f points (sd %.1f) [%+.1f, %+.1f]; %d of %zu seeds ahead by >= 3 points with p "
                        "< 0.05\n", split, 100 * d.mean, 100 * d.sd, 100 * d.ci95.low, 100 * d.ci95.high, goal_met,
                        results.size());
            summary["comparisons"][comparison_key(c)][split] = {{"a_minus_b", d.to_json()},
                                                                {"a", spread_over_seeds(a).to_json()},
                                                                {"b", spread_over_seeds(b).to_json()},
                                                                {"seeds_ahead_3_points_p05", goal_met}};
        }
    }
    write_file_atomic(f.out + "/summary.json", summary.dump(2) + "\n");
}

}  // namespace rpt::cli
