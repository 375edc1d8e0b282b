#include "tools/cli/rpt_flags.h"

#include <cstdio>
#include <stdexcept>

#include <fmt/format.h>

#include "tools/cli/flag_checks.h"

namespace rpt::cli {
namespace {

// 1 PiB: far above any machine, and small enough that the byte count fits a size_t.
constexpr double kMaxKvBudgetMb = double(1 << 30);
// Far beyond any useful bound; keeps the sampler keys' arithmetic small.
constexpr int kMaxRefillRoundsFlag = 1024;
// Rollouts per evaluated position: one group of the rollout engine.
constexpr int kMaxEvalSamples = 1024;
// Far beyond any useful block (a block is allocated whole); keeps block arithmetic in i32.
constexpr int kMaxKvBlockTokens = 1 << 20;

}  // namespace

void add_split_flags(CLI::App& command, EntropySplits& s) {
    command.add_option("--easy", s.easy, "entropy threshold of the easy split")->check(non_negative());
    command.add_option("--medium", s.medium, "entropy threshold of the medium split")->check(non_negative());
    command.add_option("--hard", s.hard, "entropy threshold of the hard split")->check(non_negative());
}

void add_kv_dtype_flag(CLI::App& command, KvDType& dtype) {
    command
        .add_option_function<std::string>(
            "--kv-dtype", [&dtype](const std::string& name) { dtype = parse_kv_dtype(name); },
            "element type of the KV cache: auto (bf16 on a GPU, f32 on the CPU), f32, or bf16 (half the memory)")
        ->check(CLI::IsMember({kv_dtype_name(KvDType::automatic), kv_dtype_name(KvDType::f32),
                               kv_dtype_name(KvDType::bf16)}));
}

void add_kv_block_flag(CLI::App& command, int& block_tokens) {
    command
        .add_option("--kv-block-tokens", block_tokens,
                    fmt::format("tokens per block of the rollouts' paged KV cache: blocks are allocated as responses "
                                "grow and freed when they end (default {}; 0: one contiguous suffix per rollout "
                                "at its maximum length)",
                                kDefaultKvBlockTokens))
        ->check(CLI::Range(0, kMaxKvBlockTokens));
}

void add_rpt_flags(CLI::App& cmd, RptOptions& o, RptFlagValues& values) {
    cmd.add_option("--steps", o.steps, "RPT steps in total")->check(positive());
    cmd.add_option("--contexts", o.contexts, "contexts (groups) per step")->check(positive());
    cmd.add_option("--rollouts", o.group_size, "rollouts per context (G)")->check(CLI::Range(1, 1024));
    cmd.add_option("--max-new-tokens", o.max_new_tokens, "response budget per rollout")->check(positive());
    cmd.add_option("--context-tokens", o.context_tokens, "left context shown to the policy")->check(positive());
    cmd.add_option("--truth-tokens", o.truth_tokens,
                   "cap the ground truth kept for the reward at N document tokens: a prediction longer than N "
                   "tokens then earns 0 (0: no cap, the continuation as far as the longest response reaches, as "
                   "in the paper)")
        ->check(non_negative());
    cmd.add_option("--reward", values.reward,
                   "prefix (paper eq. 3: the prediction is a whole-token prefix of the continuation), or an "
                   "Appendix A variant: first-token (1 iff the prediction starts with the true next token's bytes), "
                   "dense (that, else P(y[0]): exp of the sampler's log-prob (temperature softmax, behaviour policy, "
                   "given prompt and reasoning) of the response token holding the prediction's first byte, below 1), "
                   "conditional-dense (dense in groups with a right response, 0 in groups without)")
        ->check(CLI::IsMember({"prefix", "first-token", "dense", "conditional-dense"}));
    cmd.add_option("--temperature", o.temperature, "sampling temperature")->check(positive());
    cmd.add_option("--top-p", o.top_p, "nucleus mass, in (0, 1]")->check(probability_mass());
    cmd.add_option("--top-k", o.top_k, "keep the k most likely tokens (0: all)")->check(non_negative());
    cmd.add_flag("--dynamic-sampling", o.dynamic_sampling,
                 "drop groups whose rewards are all equal and refill (DAPO), every step");
    cmd.add_option("--max-refill-rounds", o.max_refill_rounds,
                   "dynamic sampling: refill rounds per step at most; refills continue until the batch is full "
                   "or this bound is hit, whose round keeps what it draws, all-equal groups included (default 3; "
                   "a bound above 3 changes the sampler keys, recorded with the run)")
        ->check(CLI::Range(0, kMaxRefillRoundsFlag));
    cmd.add_option("--dynamic-sampling-from", o.dynamic_sampling_from,
                   "dynamic sampling from this step on (0: per --dynamic-sampling; the paper: 500)")
        ->check(non_negative());
    cmd.add_option("--clip-low", o.grpo.loss.clip_low, "PPO ratio clip below 1")->check(below_one());
    cmd.add_option("--clip-high", o.grpo.loss.clip_high, "PPO ratio clip above 1")->check(non_negative());
    cmd.add_option("--kl-beta", o.grpo.loss.kl_beta, "weight of the k3 KL to the starting policy (0: off)")
        ->check(non_negative());
    cmd.add_option("--aggregation", values.aggregation, "token-mean, seq-mean-token-mean or dr-grpo")
        ->check(CLI::IsMember({"token-mean", "seq-mean-token-mean", "dr-grpo"}));
    cmd.add_flag("!--no-std-scale", o.grpo.scale_by_std, "advantages without std division (Dr. GRPO)");
    cmd.add_option("--updates-per-batch", o.grpo.updates_per_batch, "optimizer steps per rollout batch")
        ->check(positive());
    cmd.add_option("--micro-batch", o.grpo.micro_batch_rows, "responses per forward/backward")->check(positive());
    cmd.add_option("--prompt-layout", values.prompt_layout,
                   "GRPO update rows: shared (each group's prompt computed once) or separate (one row per "
                   "response, the prompt recomputed each time); same gradient")
        ->check(CLI::IsMember({"shared", "separate"}));
    cmd.add_option("--lr", o.adamw.lr, "learning rate")->check(positive());
    cmd.add_option("--warmup", o.warmup_steps, "linear warmup steps")->check(non_negative());
    cmd.add_option("--min-lr-ratio", o.min_lr_ratio, "cosine floor (1: constant)")->check(fraction());
    cmd.add_option("--weight-decay", o.adamw.weight_decay, "AdamW weight decay")->check(non_negative());
    cmd.add_option("--grad-clip", o.adamw.max_grad_norm, "global gradient-norm clip (0: off)")
        ->check(non_negative());
    cmd.add_option("--kv-budget-mb", values.kv_budget_mb, "largest KV cache allowed (MiB)")
        ->check(positive_at_most(kMaxKvBudgetMb));
    add_kv_dtype_flag(cmd, o.kv_dtype);
    add_kv_block_flag(cmd, o.kv_block_tokens);
    cmd.add_option("--rl-seed", o.seed, "seed of context sampling and rollouts");
    cmd.add_option("--metrics", o.metrics_path, "write one JSON object per step to this file");
    cmd.add_option("--checkpoint-every", o.checkpoint_every, "checkpoint every N steps (0: at the end)")
        ->check(non_negative());
    cmd.add_option("--log-every", o.log_every, "progress line every N steps")->check(positive());
}

void finish_rpt_options(RptOptions& o, const RptFlagValues& v) {
    if (v.aggregation == "token-mean") o.grpo.loss.aggregation = ops::LossAggregation::token_mean;
    else if (v.aggregation == "seq-mean-token-mean") o.grpo.loss.aggregation = ops::LossAggregation::seq_mean_token_mean;
    else if (v.aggregation == "dr-grpo") o.grpo.loss.aggregation = ops::LossAggregation::constant_normalizer;
    else throw std::invalid_argument("--aggregation: unknown value '" + v.aggregation + "'");
    if (v.prompt_layout == "shared") o.grpo.prompt_layout = PromptLayout::shared;
    else if (v.prompt_layout == "separate") o.grpo.prompt_layout = PromptLayout::separate;
    else throw std::invalid_argument("--prompt-layout: unknown value '" + v.prompt_layout + "'");
    if (v.reward == "prefix") o.reward = ops::RewardKind::prefix;
    else if (v.reward == "first-token") o.reward = ops::RewardKind::first_token;
    else if (v.reward == "dense") o.reward = ops::RewardKind::dense;
    else if (v.reward == "conditional-dense") o.reward = ops::RewardKind::conditional_dense;
    else throw std::invalid_argument("--reward: unknown value '" + v.reward + "'");
    o.kv_budget_bytes = size_t(double(v.kv_budget_mb) * 1048576.0);
}

void add_eval_flags(CLI::App& cmd, EvalOptions& o, std::string& mode) {
    cmd.add_option("--mode", mode, "standard, reasoning or both")->check(CLI::IsMember({"standard", "reasoning", "both"}));
    cmd.add_flag("!--sampled", o.greedy, "reasoning mode samples at --eval-temperature instead of greedy decoding");
    cmd.add_option("--eval-temperature", o.temperature, "temperature of sampled reasoning mode")
        ->check(positive());
    cmd.add_option("--eval-context-tokens", o.context_tokens, "left context shown")->check(positive());
    cmd.add_option("--eval-max-new-tokens", o.max_new_tokens, "reasoning response budget")->check(positive());
    cmd.add_option("--eval-truth-tokens", o.truth_tokens,
                   "cap the ground truth at N document tokens: a longer prediction earns 0 (0: no cap)")
        ->check(non_negative());
    cmd.add_option("--samples", o.samples,
                   "reasoning rollouts per position (n, with --sampled): the reasoning column is then Random@1, "
                   "their mean reward, and Pass@k is reported beside it")
        ->check(CLI::Range(1, kMaxEvalSamples));
    cmd.add_option("--pass-k", o.pass_k, "k of the unbiased Pass@k from --samples n (0: k = n)")
        ->check(CLI::Range(0, kMaxEvalSamples));
    add_kv_dtype_flag(cmd, o.kv_dtype);
    add_kv_block_flag(cmd, o.kv_block_tokens);
}

std::string describe_splits(const std::vector<ScoredPosition>& positions, const EntropySplits& s) {
    int64_t easy = 0, medium = 0, hard = 0;
    for (const ScoredPosition& p : positions) {
        easy += p.entropy > s.easy;
        medium += p.entropy > s.medium;
        hard += p.entropy > s.hard;
    }
    return fmt::format("easy (>{}) {} | medium (>{}) {} | hard (>{}) {} | scored {}", s.easy, easy, s.medium, medium,
                       s.hard, hard, positions.size());
}

void print_eval_table(const std::vector<std::pair<std::string, EvalReport>>& rows, bool reasoning) {
    if (rows.empty()) return;
    std::string header = fmt::format("{:<16}", "checkpoint");
    for (const SplitResult& s : rows[0].second.splits) header += fmt::format(" | {:>6} std", s.name);
    const int pass_k = reasoning ? rows[0].second.splits.at(0).pass_k : 0;
    const bool show_pass = reasoning && rows[0].second.samples > 1;
    if (reasoning)
        for (const SplitResult& s : rows[0].second.splits) header += fmt::format(" | {:>6} rsn", s.name);
    if (show_pass)
        for (const SplitResult& s : rows[0].second.splits) header += fmt::format(" | {:>6} p@{}", s.name, pass_k);
    std::printf("%s\n%s\n", header.c_str(), std::string(header.size(), '-').c_str());
    for (const auto& [name, report] : rows) {
        std::string line = fmt::format("{:<16}", name);
        for (const SplitResult& s : report.splits) line += fmt::format(" | {:>10.1f}", 100.0 * s.standard);
        if (reasoning)
            for (const SplitResult& s : report.splits) line += fmt::format(" | {:>10.1f}", 100.0 * s.reasoning);
        if (show_pass)
            for (const SplitResult& s : report.splits)
                line += fmt::format(" | {:>{}.1f}", 100.0 * s.pass_at_k, 8 + fmt::formatted_size("{}", pass_k));
        std::printf("%s\n", line.c_str());
    }
    const EvalReport& first = rows[0].second;
    if (show_pass)
        std::printf("(%% of positions; std = argmax next token, rsn = Random@1, the mean prefix reward of %s "
                    "rollouts, p@%d = unbiased Pass@%d; positions per split:",
                    first.mode.c_str(), pass_k, pass_k);
    else
        std::printf("(%% of positions; std = argmax next token, rsn = prefix reward of one %s rollout; positions "
                    "per split:",
                    first.mode.c_str());
    for (const SplitResult& s : first.splits) std::printf(" %s %lld", s.name, (long long)s.positions);
    std::printf(")\n");
}

}  // namespace rpt::cli
