// rpt demo: the whole RPT pipeline on the embedded default (what `make run` runs).
//   synthetic corpus -> BPE tokenizer -> NTP pre-training of `tiny`, with worked
//   next-token-reasoning examples in the RPT template (the demo's analogue of
//   R1-Distill's distillation) -> top-16-entropy filter with the pre-trained model as
//   proxy -> a learning-rate grid per arm on validation positions -> from that
//   checkpoint, RPT and continued NTP at equal training compute -> evaluation of all
//   three on the same held-out positions, with intervals and paired tests -> table,
//   summary JSON and a plot; all of it repeated over --seeds.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "model/file_io.h"
#include "model/output_guard.h"
#include "tools/cli/commands.h"
#include "tools/cli/demo_report.h"
#include "tools/cli/demo_run.h"
#include "tools/cli/flag_checks.h"
#include "tools/cli/output_flags.h"
#include "tools/cli/precision_flag.h"
#include "tools/cli/recompute_flag.h"
#include "tools/cli/rpt_flags.h"

namespace rpt::cli {
namespace {

// Which size flags were given on the command line: --quick does not override them.
struct ExplicitSizes {
    bool pretrain_steps = false;
    bool rpt_steps = false;
};

// The --quick preset: the whole pipeline in about two minutes on two cores, for CI. Its
// pre-training (150 steps of 2 sequences) leaves a start model that barely answers in
// format, and it skips the grids: the table shows that the stages run, not what RPT does.
void apply_quick_sizes(DemoFlags& f, ExplicitSizes given) {
    f.docs = 1000;
    f.pretrain_batch = 2;
    if (!given.pretrain_steps) f.pretrain_steps = 150;
    if (!given.rpt_steps) f.rpt_steps = 10;
    f.filter_docs = 200;
    f.eval_hard_positions = 60;
    f.curve_positions = 30;
    f.grid_positions = 30;
    f.eval_points = 2;
    f.response_tokens = 24;
    f.rpt_lrs = {1e-4f};
    f.ntp_lrs = {3e-4f};
    f.show_traces = 1;
}

// The demo's directory, once its --out is claimed (a new one, an empty one, an earlier
// demo's, whose files a rerun replaces, or with --overwrite whatever was there; a file
// is replaced). A bad --corpus is found before anything is made.
void create_demo_directory(const DemoFlags& f) {
    if (std::filesystem::is_regular_file(f.out)) std::filesystem::remove(f.out);
    ensure_directory(f.out);
    write_output_marker(f.out, kDemoOutput);
}

void run_demo(const DemoFlags& f) {
    claim_directory_output("--out", f.out, kDemoOutput, f.overwrite);
    if (!f.corpus.path.empty()) (void)f.corpus.load();  // its errors before any directory is made
    const OpContext ctx = make_context(f.device, true);
    create_demo_directory(f);
    std::vector<DemoSeedResult> results;
    double seconds = 0;
    for (int k = 0; k < f.seeds; ++k) {
        const uint64_t seed = f.seed + uint64_t(k);
        const std::string dir = f.seeds == 1 ? f.out : fmt::format("{}/seed-{}", f.out, seed);
        ensure_directory(dir);
        ensure_directory(dir + "/grid");
        if (f.seeds > 1) std::fprintf(stderr, "\n==== seed %llu (%d of %d)\n", (unsigned long long)seed, k + 1, f.seeds);
        results.push_back(run_demo_seed(f, seed, dir, ctx));
        report_seed(f, results.back());
        seconds += results.back().seconds;
    }
    report_seeds(f, results);
    std::printf("\nwrote %s/summary.json and curves.svg (%.0f s in all)\n", f.out.c_str(), seconds);
}

std::vector<float> parse_lr_list(const std::string& flag, const std::string& text) {
    std::vector<float> lrs;
    size_t begin = 0;
    while (begin <= text.size()) {
        const size_t end = std::min(text.find(',', begin), text.size());
        const std::string item = text.substr(begin, end - begin);
        size_t used = 0;
        float v = 0;
        try {
            v = std::stof(item, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != item.size() || item.empty() || !(v > 0) || !(v < 1))
            throw std::invalid_argument(fmt::format("{}: '{}' is not a learning rate in (0, 1)", flag, item));
        lrs.push_back(v);
        begin = end + 1;
    }
    return lrs;
}

}  // namespace

void add_demo_command(CLI::App& app) {
    CLI::App* cmd = app.add_subcommand("demo", "the whole RPT pipeline on the built-in corpus (make run)");
    auto f = std::make_shared<DemoFlags>();
    auto rpt_lrs = std::make_shared<std::string>(), ntp_lrs = std::make_shared<std::string>();
    cmd->add_option("--out", f->out, "output directory");
    cmd->add_flag("--quick", f->quick,
                  "the pipeline at a smoke-test size (about 2 minutes on 2 cores, no grids; explicit --pretrain-steps "
                  "and --rpt-steps still apply), for CI");
    add_overwrite_flag(*cmd, f->overwrite, OutputRule::demo);
    cmd->add_option("--seed", f->seed, "seed of everything (the first seed with --seeds)");
    cmd->add_option("--seeds", f->seeds, "repeat the whole comparison over N seeds; report mean and spread")
        ->check(CLI::Range(1, 100));
    cmd->add_option("--device", f->device, "auto, cpu or cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
    add_precision_flag(*cmd, f->precision);
    add_recompute_flag(*cmd, f->recompute);
    CLI::Option* rpt_steps = cmd->add_option("--rpt-steps", f->rpt_steps, "RPT steps")->check(positive());
    CLI::Option* pretrain_steps =
        cmd->add_option("--pretrain-steps", f->pretrain_steps, "pre-training steps")->check(positive());
    cmd->add_option("--format-share", f->format_share, "share of pre-training tokens in template examples")
        ->check(closed_range(0.0, 0.9));
    cmd->add_option("--eval-hard-positions", f->eval_hard_positions,
                    "held-out hard positions to evaluate (2000: about +/-2 points at 95%)")
        ->check(positive());
    cmd->add_option("--rpt-lr-grid", *rpt_lrs, "RPT learning rates to try, comma-separated (one: no grid)");
    cmd->add_option("--ntp-lr-grid", *ntp_lrs, "NTP-continued learning rates to try, comma-separated (one: no grid)");
    cmd->add_option("--grid-fraction", f->grid_fraction, "a grid trial's share of the full run's steps")
        ->check(closed_range(0.01, 1.0));
    f->corpus.add_file_flags_to(*cmd);
    cmd->callback([f, rpt_steps, pretrain_steps, rpt_lrs, ntp_lrs]() {
        if (f->quick) apply_quick_sizes(*f, {pretrain_steps->count() > 0, rpt_steps->count() > 0});
        if (!rpt_lrs->empty()) f->rpt_lrs = parse_lr_list("--rpt-lr-grid", *rpt_lrs);
        if (!ntp_lrs->empty()) f->ntp_lrs = parse_lr_list("--ntp-lr-grid", *ntp_lrs);
        run_demo(*f);
    });
}

}  // namespace rpt::cli
