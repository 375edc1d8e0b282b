// rpt generate: a prompt -> text with a checkpoint or Hugging Face Qwen2 directory,
// greedy or sampled, printing each token's bytes to stdout as soon as it is sampled.
// The prompt is wrapped by a template: "none" (raw text), "r1-chat" (the R1-Distill
// chat turn, no RPT instruction), or any RPT template (rl/templates.h).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "kernels/context.h"
#include "model/checkpoint.h"
#include "model/file_io.h"
#include "rl/rollout.h"
#include "rl/special_tokens.h"
#include "rl/templates.h"
#include "tools/cli/commands.h"
#include "tools/cli/flag_checks.h"
#include "tools/cli/precision_flag.h"
#include "tools/cli/rpt_flags.h"

namespace rpt::cli {
namespace {

constexpr const char* kNoTemplate = "none";
constexpr const char* kR1Chat = "r1-chat";
// DeepSeek-R1-Distill's chat turn (its tokenizer_config.json chat_template, one user turn).
constexpr const char* kR1ChatPrefix = "<｜begin▁of▁sentence｜><｜User｜>";
constexpr const char* kR1ChatSuffix = "<｜Assistant｜><think>\n";
constexpr const char* kR1EndOfSentence = "<｜end▁of▁sentence｜>";
// Only one sequence is generated: a small cache budget is plenty.
constexpr size_t kKvBudgetBytes = size_t(1) << 30;

struct GenerateFlags {
    std::string model_dir;
    std::string prompt;
    std::string template_name = kNoTemplate;
    std::string device = "auto";
    std::string precision = kAutoPrecision;  // the prefill's; decoding runs fp32 (model/transformer.h)
    int max_new_tokens = 256;
    bool greedy = false;
    float temperature = 0.6f;  // DeepSeek's recommendation for R1-Distill
    float top_p = 0.95f;
    int top_k = 0;
    uint64_t seed = 1;
    KvDType kv_dtype = KvDType::automatic;
    int kv_block_tokens = kDefaultKvBlockTokens;
};

// The prompt's token ids and the ids that end generation.
struct Prepared {
    std::vector<int32_t> prompt;
    std::vector<int32_t> stop_ids;
};

void add_stop(std::vector<int32_t>* stop, std::optional<int32_t> id) {
    if (id && std::find(stop->begin(), stop->end(), *id) == stop->end()) stop->push_back(*id);
}

// generation_config.json's eos_token_id (an id or a list), when the directory has one:
// chat models end turns with a token that config.json does not name.
std::vector<int32_t> generation_eos_ids(const std::string& dir) {
    const std::string path = dir + "/generation_config.json";
    if (!std::filesystem::exists(path)) return {};
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(read_file(path));
    } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error(fmt::format("{}: invalid JSON: {}", path, e.what()));
    }
    std::vector<int32_t> ids;
    const nlohmann::json eos = j.is_object() ? j.value("eos_token_id", nlohmann::json()) : nlohmann::json();
    for (const nlohmann::json& id : eos.is_array() ? eos : nlohmann::json::array({eos}))
        if (id.is_number_integer()) ids.push_back(id.get<int32_t>());
    return ids;
}

Prepared prepare(const GenerateFlags& f, const Tokenizer& tok, const ModelConfig& config) {
    Prepared p;
    const std::vector<int32_t> text = tok.encode(f.prompt);
    if (f.template_name == kNoTemplate) {
        p.prompt = text;
    } else if (f.template_name == kR1Chat) {
        const std::string wrapped = kR1ChatPrefix + f.prompt + kR1ChatSuffix;
        p.prompt = tok.encode(wrapped);  // the markers are added tokens: split out before BPE
        add_stop(&p.stop_ids, tok.token_id(kR1EndOfSentence));
    } else {
        const TemplateTokens t = bind_template(load_template(f.template_name), tok);
        p.prompt = t.prefix;
        p.prompt.insert(p.prompt.end(), text.begin(), text.end());
        p.prompt.insert(p.prompt.end(), t.suffix.begin(), t.suffix.end());
        for (int32_t id : t.stop_ids) add_stop(&p.stop_ids, id);
    }
    if (config.eos_token_id >= 0) add_stop(&p.stop_ids, config.eos_token_id);
    for (int32_t id : generation_eos_ids(f.model_dir)) add_stop(&p.stop_ids, id);
    add_stop(&p.stop_ids, tok.token_id(kEndOfText));
    if (p.prompt.empty()) throw std::invalid_argument("--prompt: the prompt has no tokens");
    return p;
}

void run_generate(const GenerateFlags& f) {
    const auto start = std::chrono::steady_clock::now();
    const auto since_start = [&start]() {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    const OpContext ctx = make_context(f.device, /*announce=*/true);
    const ModelConfig config = read_checkpoint_config(f.model_dir);
    const Tokenizer tok = read_checkpoint_tokenizer(f.model_dir);
    // Inference: parameters only (no gradients, no optimizer state; model/transformer.h).
    Transformer model(config, ctx, resolve_precision(f.precision, ctx.device));
    model.set_recompute(Recompute::layer);  // forward only: each layer's input is all the prefill keeps
    const WeightLoadReport load = load_checkpoint_weights(f.model_dir, model);
    std::fprintf(stderr, "loaded %.2f GB of weights in %.2f s (%.2f GB/s) into %.2f GiB of parameters on %s\n",
                 double(load.file_bytes) * 1e-9, load.seconds,
                 load.seconds > 0 ? double(load.file_bytes) * 1e-9 / load.seconds : 0.0,
                 double(model.parameter_bytes() + model.working_bytes()) / 1073741824.0, device_name(ctx.device));
    const Prepared p = prepare(f, tok, config);

    RolloutSettings settings;
    settings.group_size = 1;
    settings.max_new_tokens = f.max_new_tokens;
    settings.kv_budget_bytes = kKvBudgetBytes;
    settings.kv_dtype = f.kv_dtype;
    settings.kv_block_tokens = f.kv_block_tokens;
    settings.sampling.greedy = f.greedy;
    settings.sampling.temperature = f.temperature;
    settings.sampling.top_p = f.top_p;
    settings.sampling.top_k = f.top_k;
    settings.sampling.seed = f.seed;
    const std::vector<int32_t>& stop = p.stop_ids;
    double first_token_seconds = -1;
    settings.on_token = [&](int, int32_t id) {
        if (first_token_seconds < 0) first_token_seconds = since_start();
        // Stop tokens end the text unprinted; ids past the tokenizer (padding rows of
        // the embedding) have no text.
        if (std::find(stop.begin(), stop.end(), id) != stop.end() || id >= tok.vocab_size()) return;
        const std::string& bytes = tok.token_bytes(id);
        std::fwrite(bytes.data(), 1, bytes.size(), stdout);
        std::fflush(stdout);
    };
    const RolloutResult r = generate_rollouts(model, {p.prompt}, {0}, stop, settings);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    std::fprintf(stderr,
                 "%zu prompt tokens, %lld new tokens in %.2f s (%.1f tokens/s), KV cache %.1f MiB in %s at its "
                 "largest (%lld blocks of %d tokens; %.1f MiB at max length)\n",
                 p.prompt.size(), (long long)r.generated_tokens, r.seconds,
                 r.seconds > 0 ? double(r.generated_tokens) / r.seconds : 0.0, double(r.kv_peak_bytes) / 1048576.0,
                 dtype_name(r.kv_dtype), (long long)r.kv_peak_blocks, r.kv_block_tokens,
                 double(r.kv_cache_bytes) / 1048576.0);
    std::fprintf(stderr, "first token %.2f s after start, done after %.2f s\n", first_token_seconds, since_start());
}

}  // namespace

void add_generate_command(CLI::App& app) {
    auto f = std::make_shared<GenerateFlags>();
    CLI::App* cmd = app.add_subcommand("generate", "prompt -> text with a model directory, streamed to stdout");
    cmd->add_option("--model", f->model_dir, "checkpoint or Hugging Face Qwen2 directory")->required();
    cmd->add_option("--prompt", f->prompt, "the prompt text")->required();
    cmd->add_option("--template", f->template_name,
                    fmt::format("{} (raw text), {} (R1-Distill chat turn), an RPT template name or a JSON file",
                                kNoTemplate, kR1Chat));
    cmd->add_option("--max-new-tokens", f->max_new_tokens, "most tokens to generate")->check(CLI::Range(1, 1 << 20));
    auto* greedy = cmd->add_flag("--greedy", f->greedy, "always take the most likely token");
    cmd->add_option("--temperature", f->temperature, "sampling temperature")->check(positive())->excludes(greedy);
    cmd->add_option("--top-p", f->top_p, "nucleus mass kept, in (0, 1]")->check(probability_mass())->excludes(greedy);
    cmd->add_option("--top-k", f->top_k, "keep the k most likely tokens (0: all)")->check(non_negative())->excludes(greedy);
    cmd->add_option("--seed", f->seed, "sampling seed");
    cmd->add_option("--device", f->device, "auto, cpu or cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
    add_precision_flag(*cmd, f->precision);
    add_kv_dtype_flag(*cmd, f->kv_dtype);
    add_kv_block_flag(*cmd, f->kv_block_tokens);
    cmd->callback([f]() { run_generate(*f); });
}

}  // namespace rpt::cli
