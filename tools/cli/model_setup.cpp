#include "tools/cli/model_setup.h"

#include <cstdio>
#include <stdexcept>

#include <fmt/format.h>

#include "kernels/context.h"
#include "model/bpe_trainer.h"
#include "rl/special_tokens.h"
#include "tools/cli/precision_flag.h"
#include "tools/cli/recompute_flag.h"

namespace rpt::cli {

void ModelFlags::add_to(CLI::App& command, const char* out_help) {
    auto* preset_opt = command.add_option("--preset", preset, "start a fresh model: tiny, small or qwen2-124m")
                           ->check(CLI::IsMember(model_preset_names()));
    auto* model_opt = command.add_option("--model", model_dir, "start from a checkpoint / Hugging Face directory");
    auto* resume_opt = command.add_option("--resume", resume, "continue a training checkpoint (optimizer and step)");
    preset_opt->excludes(model_opt)->excludes(resume_opt);
    model_opt->excludes(resume_opt);
    command.add_option("--tokenizer", tokenizer, "tokenizer.json for a fresh --preset model");
    if (out_help) command.add_option("--out", out, out_help)->required();
    command.add_option("--device", device, "auto, cpu or cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
    add_precision_flag(command, precision);
    command.add_option("--seed", seed, "seed of parameter initialisation and data splits");
}

void ModelFlags::add_zero_flag(CLI::App& command) {
    // A bare --zero keeps meaning what it did before levels: ZeRO-1.
    command
        .add_option("--zero", zero,
                    "ZeRO level over the MPI ranks: 0 none, 1 AdamW moments sharded, 2 + gradients sharded "
                    "(each backward reduce-scatters them into the rank's shard), 3 + parameters gathered "
                    "layer by layer "
                    "(a bare --zero is 1)")
        ->expected(0, 1)
        ->default_str("1")
        ->check(CLI::Range(0, 3));
    command.add_flag("--overlap-reduce", overlap_reduce,
                     "with --zero 2 or 3: run the bucket reductions (and ZeRO-3's gathers, one layer ahead) on "
                     "a communication thread while the backward (forward) goes on; results are bit-identical");
}

void ModelFlags::add_recompute_flag(CLI::App& command) { cli::add_recompute_flag(command, recompute); }

int32_t end_of_text_id(const Tokenizer& tokenizer) {
    const auto id = tokenizer.token_id(kEndOfText);
    if (!id) throw std::invalid_argument(fmt::format("the tokenizer has no '{}' token", kEndOfText));
    return *id;
}

namespace {

// What the training step's gradients hold: the model's buffer (allocated by the first
// step; none from ZeRO-2) and ZeRO's shard and slots.
size_t training_gradient_bytes(const ModelSetup& s) {
    const ZeroRuntime* zero = s.optimizer->zero_runtime();
    const size_t buffer = zero && zero->lends_slots() ? 0 : size_t(s.model->layout().total()) * sizeof(float);
    return buffer + (zero ? zero->gradient_bytes() : 0);
}

void report(const ModelSetup& s) {
    if (!s.comm->is_root()) return;
    const ModelConfig& c = s.model->config();
    std::fprintf(stderr,
                 "model: %d layers, hidden %d, %d heads (%d kv), ffn %d, vocab %d, context %d: %.2fM parameters\n",
                 c.num_layers, c.hidden_size, c.num_heads, c.num_kv_heads, c.intermediate_size, c.vocab_size,
                 c.max_position_embeddings, double(c.num_parameters()) * 1e-6);
    std::fprintf(stderr, "precision: %s%s\n", precision_name(s.model->precision()),
                 s.optimizer ? fmt::format(", recompute: {}", recompute_name(s.model->recompute())).c_str() : "");
    // Gradients are allocated by the first training step (none for inference).
    std::fprintf(stderr, "memory on %s: parameters %.1f MiB%s%s\n", device_name(s.ctx.device),
                 double(s.model->parameter_bytes() + s.model->working_bytes()) / 1048576.0,
                 s.optimizer ? fmt::format(", gradients {:.1f} MiB", double(training_gradient_bytes(s)) / 1048576.0)
                                   .c_str()
                             : " (inference: no gradients)",
                 s.optimizer ? fmt::format(", AdamW moments {:.1f} MiB{}",
                                           2.0 * double(s.optimizer->m().nbytes()) / 1048576.0,
                                           s.optimizer->sharded() ? " (this rank's ZeRO shard)" : "")
                                   .c_str()
                             : "");
    if (s.comm->size() > 1)
        std::fprintf(stderr, "distributed: %d ranks (%s)%s%s\n", s.comm->size(), s.comm->backend(),
                     s.optimizer && s.optimizer->sharded()
                         ? fmt::format(", ZeRO-{}", s.optimizer->zero_level()).c_str()
                         : "",
                     s.optimizer && s.optimizer->zero_runtime() && s.optimizer->zero_runtime()->overlapped()
                         ? ", reductions overlapped"
                         : "");
}

}  // namespace

namespace {

// The tokenizer a run uses: the checkpoint's, the --tokenizer file, or one trained on docs.
Tokenizer choose_tokenizer(const ModelFlags& flags, const std::string& source, const ModelConfig& config,
                           const std::vector<std::string>& docs, bool announce) {
    if (!source.empty()) return read_checkpoint_tokenizer(source);
    if (!flags.tokenizer.empty()) return Tokenizer::load(flags.tokenizer);
    // Every rank trains the same (deterministic) tokenizer on the same documents.
    if (announce) std::fprintf(stderr, "training a %d-token BPE tokenizer on the corpus\n", config.vocab_size);
    return train_bpe(docs, config.vocab_size, default_special_tokens());
}

}  // namespace

ModelSetup setup_model(const ModelFlags& flags, const std::vector<std::string>& docs, bool with_optimizer,
                       const MpiRuntime* runtime) {
    const bool root = !runtime || runtime->rank() == 0;
    // Before any CUDA allocation: ranks on a node spread over its GPUs.
    if (runtime && runtime->active()) bind_local_gpu(runtime->local_rank());
    const OpContext ctx = make_context(flags.device, /*announce=*/root);
    const std::string& source = !flags.resume.empty() ? flags.resume : flags.model_dir;
    if (source.empty() && flags.preset.empty()) throw std::invalid_argument("give one of --preset, --model or --resume");
    if (flags.zero && !with_optimizer) throw std::invalid_argument("--zero applies to training only");
    if (flags.overlap_reduce && flags.zero < 2)
        throw std::invalid_argument("--overlap-reduce needs --zero 2 or 3 (reductions during the backward)");
    const Recompute recompute = parse_recompute(flags.recompute);
    if (recompute != Recompute::none && !with_optimizer)
        throw std::invalid_argument("--recompute applies to training only");
    ModelConfig config = source.empty() ? model_preset(flags.preset) : read_checkpoint_config(source);
    ModelSetup s{ctx, make_comm(runtime, ctx), choose_tokenizer(flags, source, config, docs, root), nullptr, nullptr, {}};
    if (s.tokenizer.vocab_size() > config.vocab_size)
        throw std::invalid_argument(fmt::format("{}: the tokenizer's {} tokens do not fit the model's vocab_size of {}",
                                                source.empty() ? "--tokenizer " + flags.tokenizer : source,
                                                s.tokenizer.vocab_size(), config.vocab_size));
    if (source.empty()) config.eos_token_id = end_of_text_id(s.tokenizer);
    s.model = std::make_unique<Transformer>(config, ctx, resolve_precision(flags.precision, ctx.device));
    // A model that never trains keeps only each layer's input: nothing reads the rest.
    s.model->set_recompute(with_optimizer ? recompute : Recompute::layer);
    if (source.empty()) s.model->init_weights(flags.seed);
    else load_checkpoint_weights(source, *s.model);
    if (with_optimizer || !flags.resume.empty())
        s.optimizer = std::make_unique<AdamW>(s.model->layout(), ctx, s.comm.get(),
                                              ZeroSettings{flags.zero, flags.overlap_reduce});
    if (s.optimizer && s.optimizer->zero_runtime())
        s.model->set_zero_hooks(s.optimizer->zero_runtime(), s.optimizer->zero_runtime());
    if (!flags.resume.empty()) {
        if (!has_training_state(flags.resume))
            throw std::invalid_argument(fmt::format("--resume {}: no trainer_state.json/optimizer.safetensors "
                                                    "(use --model to start from its weights)",
                                                    flags.resume));
        s.state = load_training_state(flags.resume, *s.optimizer);
        if (root) std::fprintf(stderr, "resumed %s at step %lld\n", flags.resume.c_str(), (long long)s.state.step);
    }
    report(s);
    return s;
}

}  // namespace rpt::cli
