// rpt_bench training: pre-training throughput of a preset on this machine's backend —
// tokens/s and achieved GFLOP/s of whole training steps (forward, backward, AdamW) at
// B x T tokens, the same work and FLOP convention as the PyTorch peer
// (../shared/anchors/torch_qwen2.py: 6 x matmul params + 12 x L x C x T per token).
//
// --recompute both measures what activation recomputation costs (model/recompute.h):
// the same steps from the same initial weights, once saving every layer's activations
// and once only each layer's input, side by side in one run. It reports the slowdown,
// the activation bytes of each, and whether the two runs ended on identical weights (on
// the CPU they must; on the GPU they do as long as every kernel of the step is
// deterministic).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench/benches.h"
#include "kernels/context.h"
#include "kernels/host_sync.h"
#include "kernels/rng.h"
#include "model/file_io.h"
#include "model/flops.h"
#include "model/optimizer.h"
#include "model/recompute.h"
#include "model/transformer.h"

namespace rpt::bench {
namespace {

struct TrainingShape {
    ModelConfig config;
    Precision precision = Precision::f32;
    int batch = 0, seq = 0;
    int warmup = 0, steps = 0;
};

// What one recomputation mode measured.
struct ModeResult {
    Recompute recompute = Recompute::none;
    double seconds_per_step = 0;
    size_t activation_bytes = 0;       // the forward's saved activations at B x T
    std::vector<float> final_params;   // (P) host copy after the last step
};

// warmup + steps training steps of a freshly initialised model (seed 1) on fixed random
// tokens; only the timed steps count.
ModeResult time_mode(const OpContext& ctx, const TrainingShape& shape, Recompute recompute) {
    Transformer model(shape.config, ctx, shape.precision);
    model.init_weights(1);
    model.set_recompute(recompute);
    AdamW opt(model.layout(), ctx);
    const AdamWConfig adamw;
    const int64_t N = int64_t(shape.batch) * shape.seq;
    std::vector<int32_t> tokens(static_cast<size_t>(N)), targets(static_cast<size_t>(N));
    for (int64_t i = 0; i < N; ++i) {
        tokens[size_t(i)] = int32_t(hash_keys(1, uint64_t(i)) % uint64_t(shape.config.vocab_size));
        targets[size_t(i)] = int32_t(hash_keys(2, uint64_t(i)) % uint64_t(shape.config.vocab_size));
    }
    const std::vector<float> dlogprob(static_cast<size_t>(N), -1.0f / float(N));
    auto step = [&]() {
        model.zero_grad();
        model.forward(tokens.data(), targets.data(), shape.batch, shape.seq);
        model.backward(dlogprob.data());
        opt.step(model.params().flat, model.grads().flat, 1e-4f, adamw, model.working_params());
    };
    // The device finishes the warm-up before the clock starts and the last step before it
    // stops (a step itself never waits for the GPU).
    for (int i = 0; i < shape.warmup; ++i) step();
    synchronize(ctx);
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < shape.steps; ++i) step();
    synchronize(ctx);
    ModeResult r;
    r.recompute = recompute;
    r.seconds_per_step = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / shape.steps;
    r.activation_bytes = model.activation_bytes();
    r.final_params.resize(size_t(model.layout().total()));
    copy_to_host(ctx, r.final_params.data(), model.params().flat);
    return r;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

int training(int argc, char** argv) {
    CLI::App app{"pre-training tokens/s and GFLOP/s"};
    std::string preset = "tiny", json_path, device = "cpu", precision = "auto", recompute = "none";
    int batch = 8, seq = 256, warmup = 2, steps = 5;
    double peak = 0;
    app.add_option("--preset", preset)->check(CLI::IsMember(model_preset_names()));
    app.add_option("--batch", batch)->check(CLI::PositiveNumber);
    app.add_option("--seq", seq)->check(CLI::PositiveNumber);
    app.add_option("--warmup", warmup)->check(CLI::NonNegativeNumber);
    app.add_option("--steps", steps)->check(CLI::PositiveNumber);
    app.add_option("--peak", peak, "fp32 peak GFLOP/s of this machine, for the % column");
    app.add_option("--device", device);
    app.add_option("--precision", precision, "bf16 or f32 (auto: bf16 on a GPU, f32 on the CPU)")
        ->check(CLI::IsMember({"auto", "bf16", "f32"}));
    app.add_option("--recompute", recompute,
                   "none or layer (model/recompute.h), or both: the two side by side and the cost of recomputing")
        ->check(CLI::IsMember({"none", "layer", "both"}));
    app.add_option("--json", json_path);
    CLI11_PARSE(app, argc, argv);

    // 1. The model and the modes to time.
    const OpContext ctx = make_context(device, false);
    TrainingShape shape;
    shape.config = model_preset(preset);
    shape.config.max_position_embeddings = std::max(shape.config.max_position_embeddings, seq);
    shape.precision = precision == "auto" ? default_precision(ctx.device) : parse_precision(precision);
    shape.batch = batch;
    shape.seq = seq;
    shape.warmup = warmup;
    shape.steps = steps;
    std::vector<Recompute> modes;
    if (recompute == "both") modes = {Recompute::none, Recompute::layer};
    else modes = {parse_recompute(recompute)};

    // 2. Time each mode from the same initial weights.
    std::vector<ModeResult> results;
    for (Recompute mode : modes) results.push_back(time_mode(ctx, shape, mode));

    // 3. Report: the first mode is the headline (what the PyTorch peer is compared with).
    const int64_t N = int64_t(batch) * seq;
    const ModeResult& head = results.front();
    const double tok_s = double(N) / head.seconds_per_step;
    const double gflops = training_flops_per_token(shape.config, seq) * double(N) / head.seconds_per_step * 1e-9;
    std::printf("training %-5s B=%d T=%d on %s (%s, recompute %s): %.3f s/step, %.0f tokens/s, %.1f GFLOP/s%s\n",
                preset.c_str(), batch, seq, device_name(ctx.device), precision_name(shape.precision),
                recompute_name(head.recompute), head.seconds_per_step, tok_s, gflops,
                peak > 0 ? fmt::format(" ({:.0f}% of {:.0f} peak)", 100.0 * gflops / peak, peak).c_str() : "");
    nlohmann::json cost;
    if (results.size() == 2) {
        const ModeResult& layer = results.back();
        const double slowdown = layer.seconds_per_step / head.seconds_per_step;
        const bool identical = same_bits(head.final_params, layer.final_params);
        std::printf("recompute layer: %.3f s/step (%.2fx the time), activations %.1f MiB -> %.1f MiB, "
                    "final weights %s\n",
                    layer.seconds_per_step, slowdown, double(head.activation_bytes) / 1048576.0,
                    double(layer.activation_bytes) / 1048576.0, identical ? "bit-identical" : "DIFFER");
        cost = {{"seconds_per_step_none", head.seconds_per_step},
                {"seconds_per_step_layer", layer.seconds_per_step},
                {"slowdown", slowdown},
                {"activation_bytes_none", head.activation_bytes},
                {"activation_bytes_layer", layer.activation_bytes},
                {"final_weights_identical", identical}};
    }
    if (!json_path.empty()) {
        nlohmann::json j = {{"bench", "training"}, {"preset", preset}, {"batch", batch}, {"seq", seq},
                            {"device", device_name(ctx.device)}, {"precision", precision_name(shape.precision)},
                            {"recompute", recompute_name(head.recompute)},
                            {"seconds_per_step", head.seconds_per_step}, {"tokens_per_s", tok_s},
                            {"gflops", gflops}, {"peak_gflops", peak},
                            {"flops_per_token", training_flops_per_token(shape.config, seq)},
                            {"activation_bytes", head.activation_bytes},
                            // The benched model as Hugging Face config.json: the PyTorch
                            // peer builds the same model from it.
                            {"config", shape.config.to_hf_json()}};
        if (!cost.is_null()) j["recompute_cost"] = cost;
        write_file_atomic(json_path, j.dump(2) + "\n");
    }
    return 0;
}

}  // namespace rpt::bench
