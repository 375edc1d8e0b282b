// rpt_bench rpt-step: the time of one RPT step split by phase (rollout, reward, update)
// at B contexts x G rollouts, on this machine's backend, for a preset model with random
// weights. The work per step depends on what the model knows only through response
// lengths (a random model rarely samples a stop token early), so the mean length is
// reported with the times. The GRPO update runs twice, with each group's prompt shared
// by its responses (packed rows, the default) and recomputed per response.
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/benches.h"
#include "kernels/context.h"
#include "model/bpe_trainer.h"
#include "model/file_io.h"
#include "rl/rpt_trainer.h"
#include "rl/special_tokens.h"
#include "rl/synth_corpus.h"
#include "rl/token_data.h"

namespace rpt::bench {

int rpt_step(int argc, char** argv) {
    CLI::App app{"one RPT step split by phase"};
    std::string preset = "tiny", device = "cpu", json_path;
    int contexts = 32, group = 8, max_new = 8, context_tokens = 64, steps = 3;
    app.add_option("--preset", preset)->check(CLI::IsMember(model_preset_names()));
    app.add_option("--contexts", contexts);
    app.add_option("--rollouts", group);
    app.add_option("--max-new-tokens", max_new);
    app.add_option("--context-tokens", context_tokens);
    app.add_option("--steps", steps, "measured steps (after one warm-up)");
    app.add_option("--device", device);
    app.add_option("--json", json_path);
    CLI11_PARSE(app, argc, argv);

    const OpContext ctx = make_context(device, false);
    const ModelConfig base = model_preset(preset);
    const std::vector<std::string> texts = synth_corpus(1, 400);
    const Tokenizer tokenizer = train_bpe(texts, base.vocab_size, default_special_tokens());
    const auto docs = tokenize_documents(texts, tokenizer);
    std::vector<ScoredPosition> positions;
    for (size_t d = 0; d < docs.size(); ++d)
        for (size_t p = 1; p < docs[d].size(); p += 7) positions.push_back({int64_t(d), int32_t(p), 1.0f});
    // One measurement per GRPO layout: each group's prompt computed once (packed rows,
    // the default) or once per response (one padded row each), side by side.
    struct Phases {
        double rollout = 0, bookkeeping = 0, reward = 0, update = 0, tokens = 0, train_tokens = 0;
        double total() const { return rollout + reward + update; }
    };
    const auto measure = [&](PromptLayout layout) {
        Transformer model(base, ctx);
        model.init_weights(1);
        AdamW opt(model.layout(), ctx);
        TrainerState state;
        RptOptions o;
        o.contexts = contexts;
        o.group_size = group;
        o.max_new_tokens = max_new;
        o.context_tokens = context_tokens;
        o.steps = steps + 1;
        o.quiet = true;
        o.grpo.skip_zero_advantage = false;  // time the update of every row, as with informative rewards
        o.grpo.prompt_layout = layout;
        Phases p;
        train_rpt(model, opt, tokenizer, load_template("compact"), docs, positions, o, state,
                  [&](const RptStepRecord& r, nlohmann::json&) {
                      if (r.step == 1) return;  // warm-up
                      p.rollout += r.seconds_rollout / steps;
                      p.bookkeeping += r.seconds_rollout_bookkeeping / steps;
                      p.reward += r.seconds_reward / steps;
                      p.update += r.seconds_update / steps;
                      p.tokens += r.response_len / steps;
                      p.train_tokens += double(r.grpo.train_tokens) / steps;
                  });
        std::printf("RPT step, %s, %d contexts x %d rollouts, up to %d new tokens (mean %.1f), on %s, prompt %s: "
                    "%.3f s = rollout %.3f (%.0f%%; active-set bookkeeping %.5f) + reward %.4f (%.1f%%) + update "
                    "%.3f (%.0f%%, %.0f tokens)\n",
                    preset.c_str(), contexts, group, max_new, p.tokens, device_name(ctx.device),
                    layout == PromptLayout::shared ? "shared" : "per response", p.total(), p.rollout, 100 * p.rollout / p.total(),
                    p.bookkeeping, p.reward, 100 * p.reward / p.total(), p.update, 100 * p.update / p.total(),
                    p.train_tokens);
        return p;
    };
    const Phases shared = measure(PromptLayout::shared), separate = measure(PromptLayout::separate);
    std::printf("shared prompt: update %.2fx faster, step %.2fx faster, %.2fx fewer tokens trained on\n",
                separate.update / shared.update, separate.total() / shared.total(),
                separate.train_tokens / shared.train_tokens);
    const auto phases_json = [](const Phases& p) {
        return nlohmann::json({{"seconds_rollout", p.rollout}, {"seconds_rollout_bookkeeping", p.bookkeeping},
                               {"seconds_reward", p.reward},
                               {"seconds_update", p.update}, {"mean_response_tokens", p.tokens},
                               {"train_tokens", p.train_tokens}});
    };
    if (!json_path.empty())
        write_file_atomic(json_path, nlohmann::json({{"bench", "rpt-step"}, {"preset", preset}, {"contexts", contexts},
                                                     {"rollouts", group}, {"device", device_name(ctx.device)},
                                                     {"shared_prompt", phases_json(shared)},
                                                     {"prompt_per_response", phases_json(separate)}})
                                             .dump(2) +
                                         "\n");
    return 0;
}

}  // namespace rpt::bench
