// rpt_bench training: pre-training throughput of a preset on this machine's backend —
// tokens/s and achieved GFLOP/s of whole training steps (forward, backward, AdamW) at
// B x T tokens, the same work and FLOP convention as the PyTorch peer
// (../shared/anchors/torch_qwen2.py: 6 x matmul params + 12 x L x C x T per token).
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench/benches.h"
#include "kernels/context.h"
#include "kernels/rng.h"
#include "model/file_io.h"
#include "model/flops.h"
#include "model/optimizer.h"
#include "model/transformer.h"

namespace rpt::bench {

int training(int argc, char** argv) {
    CLI::App app{"pre-training tokens/s and GFLOP/s"};
    std::string preset = "tiny", json_path, device = "cpu", precision = "auto";
    int batch = 8, seq = 256, warmup = 2, steps = 5;
    double peak = 0;
    app.add_option("--preset", preset)->check(CLI::IsMember(model_preset_names()));
    app.add_option("--batch", batch);
    app.add_option("--seq", seq);
    app.add_option("--warmup", warmup);
    app.add_option("--steps", steps);
    app.add_option("--peak", peak, "fp32 peak GFLOP/s of this machine, for the % column");
    app.add_option("--device", device);
    app.add_option("--precision", precision, "bf16 or f32 (auto: bf16 on a GPU, f32 on the CPU)")
        ->check(CLI::IsMember({"auto", "bf16", "f32"}));
    app.add_option("--json", json_path);
    CLI11_PARSE(app, argc, argv);

    const OpContext ctx = make_context(device, false);
    ModelConfig config = model_preset(preset);
    config.max_position_embeddings = std::max(config.max_position_embeddings, seq);
    const Precision model_precision = precision == "auto" ? default_precision(ctx.device) : parse_precision(precision);
    Transformer model(config, ctx, model_precision);
    model.init_weights(1);
    AdamW opt(model.layout(), ctx);
    AdamWConfig adamw;
    const int64_t N = int64_t(batch) * seq;
    std::vector<int32_t> tokens(static_cast<size_t>(N)), targets(static_cast<size_t>(N));
    for (int64_t i = 0; i < N; ++i) {
        tokens[size_t(i)] = int32_t(hash_keys(1, uint64_t(i)) % uint64_t(config.vocab_size));
        targets[size_t(i)] = int32_t(hash_keys(2, uint64_t(i)) % uint64_t(config.vocab_size));
    }
    const std::vector<float> dlogprob(static_cast<size_t>(N), -1.0f / float(N));
    auto step = [&]() {
        model.zero_grad();
        model.forward(tokens.data(), targets.data(), batch, seq);
        model.backward(dlogprob.data());
        opt.step(model.params().flat, model.grads().flat, 1e-4f, adamw, model.working_params());
    };
    // The device finishes the warm-up before the clock starts and the last step before it
    // stops (a step itself never waits for the GPU).
    for (int i = 0; i < warmup; ++i) step();
    synchronize(ctx);
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i) step();
    synchronize(ctx);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / steps;
    const double tok_s = double(N) / seconds;
    const double gflops = training_flops_per_token(config, seq) * double(N) / seconds * 1e-9;
    std::printf("training %-5s B=%d T=%d on %s (%s): %.3f s/step, %.0f tokens/s, %.1f GFLOP/s%s\n", preset.c_str(), batch,
                seq, device_name(ctx.device), precision_name(model_precision), seconds, tok_s, gflops,
                peak > 0 ? fmt::format(" ({:.0f}% of {:.0f} peak)", 100.0 * gflops / peak, peak).c_str() : "");
    if (!json_path.empty()) {
        const nlohmann::json j = {{"bench", "training"}, {"preset", preset}, {"batch", batch}, {"seq", seq},
                                  {"device", device_name(ctx.device)},
                                  {"precision", precision_name(model_precision)}, {"seconds_per_step", seconds},
                                  {"tokens_per_s", tok_s}, {"gflops", gflops}, {"peak_gflops", peak},
                                  {"flops_per_token", training_flops_per_token(config, seq)},
                                  // The benched model as Hugging Face config.json: the PyTorch
                                  // peer builds the same model from it.
                                  {"config", config.to_hf_json()}};
        write_file_atomic(json_path, j.dump(2) + "\n");
    }
    return 0;
}

}  // namespace rpt::bench
