// rpt: one binary, one subcommand per job (DESIGN §7). Errors end the program with one
// line on stderr and a non-zero exit status; under mpirun/srun the line names the rank
// and every rank is ended (MPI_Abort), so no rank waits forever in a collective.
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>

#include <CLI/CLI.hpp>

#include "comm/comm.h"
#include "tools/cli/commands.h"
#include "tools/cli/flag_checks.h"

namespace {

constexpr int kExitError = 1;

}  // namespace

int main(int argc, char** argv) {
    // Owns MPI from here to the end of main (a no-op outside mpirun/srun).
    const rpt::MpiRuntime runtime(&argc, &argv);
    CLI::App app{"rpt: Reinforcement Pre-Training (arXiv 2506.08007) in C++17/CUDA"};
    app.footer(rpt::comm_build_info());
    app.require_subcommand(1);
    app.set_help_all_flag("--help-all", "help for every command");
    try {
        rpt::cli::add_data_command(app);
        rpt::cli::add_tokenizer_command(app);
        rpt::cli::add_pretrain_command(app, runtime);
        rpt::cli::add_rpt_commands(app, runtime);
        rpt::cli::add_demo_command(app);
        rpt::cli::add_plot_command(app);
        rpt::cli::add_generate_command(app);
        rpt::cli::add_convert_command(app);
        rpt::cli::add_plan_command(app);
        rpt::cli::check_number_flags(app);
        // CLI11 reports a mistyped command as "a subcommand is required": name it instead.
        bool known = argc <= 1 || argv[1][0] == '-';
        for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
            known = known || sub->get_name() == argv[1];
        if (!known)
            throw std::invalid_argument(std::string("unknown command '") + argv[1] + "' (see rpt --help)");
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        // Every rank parses the same command line: rank 0 reports it, all exit.
        if (runtime.rank() == 0) std::fprintf(stderr, "rpt: error: %s (see rpt --help)\n", e.what());
        return kExitError;
    } catch (const std::exception& e) {
        // Several ranks: end them all now, naming this one. One process: a plain exit.
        if (runtime.size() > 1) runtime.abort_all(e.what());
        std::fprintf(stderr, "rpt: error: %s\n", e.what());
        return kExitError;
    }
    return 0;
}
