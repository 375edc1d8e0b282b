#include "tools/cli/model_setup.h"

#include <cstdio>
#include <stdexcept>

#include <fmt/format.h>

#include "kernels/context.h"
#include "model/bpe_trainer.h"
#include "rl/special_tokens.h"

namespace rpt::cli {

void ModelFlags::add_to(CLI::App& command, bool needs_out) {
    auto* preset_opt = command.add_option("--preset", preset, "start a fresh model: tiny or small")
                           ->check(CLI::IsMember({"tiny", "small"}));
    auto* model_opt = command.add_option("--model", model_dir, "start from a checkpoint / Hugging Face directory");
    auto* resume_opt = command.add_option("--resume", resume, "continue a training checkpoint (optimizer and step)");
    preset_opt->excludes(model_opt)->excludes(resume_opt);
    model_opt->excludes(resume_opt);
    command.add_option("--tokenizer", tokenizer, "tokenizer.json for a fresh --preset model");
    auto* out_opt = command.add_option("--out", out, "output checkpoint directory");
    if (needs_out) out_opt->required();
    command.add_option("--device", device, "auto, cpu or cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
    command.add_option("--seed", seed, "seed of parameter initialisation and data splits");
}

int32_t end_of_text_id(const Tokenizer& tokenizer) {
    const auto id = tokenizer.token_id(kEndOfText);
    if (!id) throw std::invalid_argument(fmt::format("the tokenizer has no '{}' token", kEndOfText));
    return *id;
}

namespace {

void report(const ModelSetup& s) {
    const ModelConfig& c = s.model->config();
    std::fprintf(stderr,
                 "model: %d layers, hidden %d, %d heads (%d kv), ffn %d, vocab %d, context %d: %.2fM parameters\n",
                 c.num_layers, c.hidden_size, c.num_heads, c.num_kv_heads, c.intermediate_size, c.vocab_size,
                 c.max_position_embeddings, double(c.num_parameters()) * 1e-6);
    std::fprintf(stderr, "memory on %s: parameters %.1f MiB, gradients %.1f MiB%s\n", device_name(s.ctx.device),
                 double(s.model->parameter_bytes()) / 1048576.0, double(s.model->parameter_bytes()) / 1048576.0,
                 s.optimizer ? fmt::format(", AdamW moments {:.1f} MiB",
                                           2.0 * double(s.model->parameter_bytes()) / 1048576.0)
                                   .c_str()
                             : "");
}

}  // namespace

ModelSetup setup_model(const ModelFlags& flags, const std::vector<std::string>& docs, bool with_optimizer) {
    ModelSetup s;
    s.ctx = make_context(flags.device, /*announce=*/true);
    const std::string& source = !flags.resume.empty() ? flags.resume : flags.model_dir;
    if (!source.empty()) {
        const ModelConfig config = read_checkpoint_config(source);
        s.tokenizer = read_checkpoint_tokenizer(source);
        if (s.tokenizer.vocab_size() > config.vocab_size)
            throw std::invalid_argument(fmt::format("{}: tokenizer has {} tokens but the model's vocab_size is {}",
                                                    source, s.tokenizer.vocab_size(), config.vocab_size));
        s.model = std::make_unique<Transformer>(config, s.ctx);
        load_checkpoint_weights(source, *s.model);
        if (with_optimizer) s.optimizer = std::make_unique<AdamW>(s.model->layout(), s.ctx);
        if (!flags.resume.empty()) {
            if (!has_training_state(flags.resume))
                throw std::invalid_argument(fmt::format("--resume {}: no trainer_state.json/optimizer.safetensors "
                                                        "(use --model to start from its weights)",
                                                        flags.resume));
            if (!s.optimizer) s.optimizer = std::make_unique<AdamW>(s.model->layout(), s.ctx);
            s.state = load_training_state(flags.resume, *s.optimizer);
            std::fprintf(stderr, "resumed %s at step %lld\n", flags.resume.c_str(), (long long)s.state.step);
        }
        report(s);
        return s;
    }
    if (flags.preset.empty()) throw std::invalid_argument("give one of --preset, --model or --resume");
    ModelConfig config = model_preset(flags.preset);
    if (!flags.tokenizer.empty()) {
        s.tokenizer = Tokenizer::load(flags.tokenizer);
    } else {
        std::fprintf(stderr, "training a %d-token BPE tokenizer on the corpus\n", config.vocab_size);
        s.tokenizer = train_bpe(docs, config.vocab_size, default_special_tokens());
    }
    if (s.tokenizer.vocab_size() > config.vocab_size)
        throw std::invalid_argument(fmt::format("--tokenizer {}: {} tokens do not fit the {} preset's vocabulary of {}",
                                                flags.tokenizer, s.tokenizer.vocab_size(), flags.preset,
                                                config.vocab_size));
    config.eos_token_id = end_of_text_id(s.tokenizer);
    s.model = std::make_unique<Transformer>(config, s.ctx);
    s.model->init_weights(flags.seed);
    if (with_optimizer) s.optimizer = std::make_unique<AdamW>(s.model->layout(), s.ctx);
    report(s);
    return s;
}

}  // namespace rpt::cli
