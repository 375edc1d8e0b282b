#include "tools/cli/recipe.h"

#include <stdexcept>

#include <fmt/format.h>

namespace rpt::cli {

const std::vector<Recipe>& recipes() {
    static const std::vector<Recipe> all = {
        {"paper",
         "the paper's RPT run (Table 5, §4; R1-Distill-Qwen-14B, OmniMATH)",
         {
             {"--steps", "1000", "1,000 training steps (§4)"},
             {"--contexts", "256", "batch size 256 (Table 5)"},
             {"--rollouts", "8", "rollout number 8 (Table 5)"},
             {"--updates-per-batch", "1", "PPO mini-batch 256 = batch: one update per rollout batch, exact on-policy"},
             {"--lr", "1e-6", "learning rate 1e-6 (Table 5)"},
             {"--warmup", "0", "no schedule stated: constant"},
             {"--min-lr-ratio", "1", "no schedule stated: constant"},
             {"--weight-decay", "0.01", "weight decay 0.01 (Table 5)"},
             {"--grad-clip", "0.2", "actor gradient clip 0.2 (Table 5), read as verl's actor.grad_clip (norm)"},
             {"--kl-beta", "0", "no KL penalty (§4)"},
             {"--dynamic-sampling-from", "500", "dynamic sampling from step 500 (§4)"},
             {"--max-refill-rounds", "16", "DAPO keeps sampling until the batch is full; rpt stops at 16 refill "
                                           "rounds (a stated bound, not the paper's)"},
             {"--temperature", "0.8", "sampling temperature 0.8 (Table 5)"},
             {"--top-p", "1", "top-p 1.0"},
             {"--max-new-tokens", "8192", "max response length 8,192 (Table 5)"},
             {"--context-tokens", "4096", "max prompt length 4,096 (Table 5); rpt counts the context, the template "
                                          "adds its own tokens"},
             {"--truth-tokens", "0", "the whole continuation (eq. 3's L_gt)"},
             {"--template", "v0", "prompt template v0 (Appendix D)"},
             {"--reward", "prefix", "prefix-matching reward (eq. 3)"},
         }},
        {"demo",
         "a laptop-sized run (rpt's defaults, named)",
         {
             {"--steps", "100", ""},
             {"--contexts", "16", ""},
             {"--rollouts", "8", ""},
             {"--max-new-tokens", "8", ""},
             {"--context-tokens", "64", ""},
             {"--template", "compact", ""},
             {"--reward", "prefix", ""},
         }},
    };
    return all;
}

std::string recipe_help() {
    std::string help = "a named preset of the flags below (explicit flags override it):";
    for (const Recipe& r : recipes()) {
        help += fmt::format("\n      {}: {}:", r.name, r.what);
        for (const RecipeSetting& s : r.settings) help += fmt::format(" {} {}", s.flag, s.value);
    }
    return help;
}

std::string apply_recipe(CLI::App& cmd, const std::string& name) {
    const Recipe* recipe = nullptr;
    for (const Recipe& r : recipes())
        if (name == r.name) recipe = &r;
    if (!recipe) throw std::invalid_argument(fmt::format("--recipe: unknown recipe '{}' (paper or demo)", name));
    std::string set, kept;
    for (const RecipeSetting& s : recipe->settings) {
        CLI::Option* option = cmd.get_option(s.flag);
        if (option->count() > 0) {
            kept += fmt::format(" {}", s.flag);
            continue;
        }
        option->add_result(s.value);
        option->run_callback();
        set += fmt::format(" {} {}", s.flag, s.value);
    }
    return fmt::format("recipe {} ({}):{}{}", recipe->name, recipe->what, set,
                       kept.empty() ? "" : fmt::format("; given explicitly:{}", kept));
}

}  // namespace rpt::cli
