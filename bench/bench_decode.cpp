// rpt_bench decode: batched KV-cache decoding on this machine's backend.
//   1. Throughput: B prompts of P tokens, G = 1, `gen` greedy tokens each (the PyTorch
//      peer's decode benchmark: config B, batch 8 or 64, prompt 64, 193 new tokens).
//      Reported as tokens/s and as achieved bytes/s against the roofline of one decode
//      step (all weights once + every row's KV cache), measured against this machine's
//      own memory bandwidth (a triad over arrays far larger than the caches).
//   2. Shared prefix vs copied prefix: B contexts x G rollouts decoded with one shared
//      prefix per group, against the same work with every rollout holding its own copy
//      of the prefix (B*G contexts, G = 1): KV memory and time.
// --precision: the model's (auto: bf16 on a GPU, the decode step on bf16 weights and
// rows; f32 on the CPU). --kv-block-tokens: the paged cache's block (0: contiguous), to
// measure what paging costs.
#include <algorithm>
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
#include "model/kv_cache.h"
#include "model/transformer.h"
#include "rl/rollout.h"

namespace rpt::bench {
namespace {

constexpr size_t kTriadElements = size_t(64) << 20;  // 3 arrays x 256 MiB: far past any cache

// Sustained bytes/s of a = b + s * c over large arrays (3 streams), the decode ceiling.
double measure_bandwidth() {
    std::vector<float> a(kTriadElements), b(kTriadElements, 1.0f), c(kTriadElements, 2.0f);
    double best = 0;
    for (int rep = 0; rep < 4; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < kTriadElements; ++i) a[i] = b[i] + 0.5f * c[i];
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, 3.0 * double(kTriadElements) * sizeof(float) / s);
    }
    return best;
}

std::vector<std::vector<int32_t>> random_prompts(int n, int length, int vocab, uint64_t seed) {
    std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i)
        for (int t = 0; t < length; ++t) prompts[i].push_back(int32_t(hash_keys(seed, i, t) % uint64_t(vocab)));
    return prompts;
}

struct DecodeRun {
    double seconds = 0;  // decoding only (after the prefill), as the peer times it
    double bookkeeping_seconds = 0;  // host work of the active set within `seconds`
    int64_t tokens = 0;
    size_t kv_bytes = 0;       // at most (every slot at `gen`)
    size_t kv_peak_bytes = 0;  // allocated at the paged pool's largest
};

DecodeRun decode(Transformer& model, const std::vector<std::vector<int32_t>>& prompts, int group, int gen,
                 int block_tokens, KvDType kv_dtype = KvDType::automatic) {
    RolloutSettings s;
    s.kv_dtype = kv_dtype;
    s.kv_block_tokens = block_tokens;
    s.group_size = group;
    s.max_new_tokens = gen;
    s.sampling.greedy = true;
    std::vector<int64_t> ids(prompts.size());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = int64_t(i);
    const RolloutResult r = generate_rollouts(model, prompts, ids, /*stop_ids=*/{}, s);
    return {r.seconds - r.prefill_seconds, r.bookkeeping_seconds, r.generated_tokens, r.kv_cache_bytes,
            r.kv_peak_bytes};
}

}  // namespace

int decode(int argc, char** argv) {
    CLI::App app{"batched KV-cache decoding: tokens/s, bytes/s vs roofline, shared vs copied prefix"};
    std::string preset = "small", json_path, device = "cpu", precision = "auto";
    std::vector<int> batches = {8, 64};
    int prompt = 64, gen = 193, group = 8, group_contexts = 8, group_gen = 32;
    // The KV-dtype comparison: a long context, so the cache's bytes matter next to the weights'.
    int dtype_batch = 32, dtype_prompt = 448, dtype_gen = 64;
    int block_tokens = kDefaultKvBlockTokens;
    app.add_option("--preset", preset)->check(CLI::IsMember(model_preset_names()));
    app.add_option("--batch", batches, "batch sizes of the throughput runs");
    app.add_option("--prompt", prompt);
    app.add_option("--gen", gen);
    app.add_option("--group", group, "rollouts per context in the shared-prefix comparison");
    app.add_option("--group-contexts", group_contexts);
    app.add_option("--group-gen", group_gen);
    app.add_option("--dtype-batch", dtype_batch, "rows of the f32 vs bf16 KV-cache comparison");
    app.add_option("--dtype-prompt", dtype_prompt, "prompt tokens of that comparison");
    app.add_option("--dtype-gen", dtype_gen, "new tokens of that comparison");
    app.add_option("--kv-block-tokens", block_tokens, "tokens per block of the paged KV cache (0: contiguous)")
        ->check(CLI::Range(0, 1 << 20));
    app.add_option("--device", device);
    app.add_option("--precision", precision, "bf16 or f32 (auto: bf16 on a GPU, f32 on the CPU)")
        ->check(CLI::IsMember({"auto", "bf16", "f32"}));
    app.add_option("--json", json_path);
    CLI11_PARSE(app, argc, argv);

    const OpContext ctx = make_context(device, false);
    ModelConfig config = model_preset(preset);
    config.max_position_embeddings =
        std::max({config.max_position_embeddings, prompt + gen, dtype_prompt + dtype_gen});
    const Precision model_precision = precision == "auto" ? default_precision(ctx.device) : parse_precision(precision);
    Transformer model(config, ctx, model_precision);
    model.init_weights(1);
    const double bandwidth = ctx.device == DeviceKind::cpu ? measure_bandwidth() : 0.0;
    // The weights a step reads: fp32, or the bf16 working copy with the fp32 LM head.
    const double head_bytes = double(config.vocab_size) * config.hidden_size;
    const double weight_bytes = model_precision == Precision::bf16
                                    ? double(config.num_parameters()) * 2.0 + head_bytes * 2.0
                                    : double(config.num_parameters()) * sizeof(float);
    // The rollouts use the default cache dtype (RolloutSettings: auto, bf16 on the GPU).
    const DType kv_dtype = resolve_kv_dtype(KvDType::automatic, ctx.device);
    const double kv_bytes_per_token = 2.0 * config.num_layers * config.kv_dim() * double(dtype_size(kv_dtype));
    nlohmann::json out = {{"bench", "decode"}, {"preset", preset}, {"device", device_name(ctx.device)},
                          {"precision", precision_name(model_precision)},
                          {"kv_dtype", dtype_name(kv_dtype)}, {"kv_block_tokens", block_tokens},
                          {"bandwidth_gbs", bandwidth * 1e-9},
                          {"config", config.to_hf_json()}};  // for the PyTorch peer
    std::printf("decode %s on %s in %s, KV cache in %s, blocks of %d tokens (memory bandwidth %.1f GB/s measured by "
                "triad)\n",
                preset.c_str(), device_name(ctx.device), precision_name(model_precision), dtype_name(kv_dtype),
                block_tokens, bandwidth * 1e-9);
    for (int B : batches) {
        const DecodeRun r = decode(model, random_prompts(B, prompt, config.vocab_size, 7), 1, gen, block_tokens);
        // Bytes a decode step must move at least: the weights once, then every row's
        // cache up to its current length (prompt + i), summed over the gen steps.
        double bytes = 0;
        for (int i = 0; i < gen; ++i) bytes += weight_bytes + double(B) * kv_bytes_per_token * double(prompt + i);
        const double achieved = bytes / r.seconds;
        std::printf("  batch %3d: %8.0f tokens/s, %6.1f GB/s moved (%.0f%% of bandwidth), active-set bookkeeping "
                    "%.2f%% of the time\n",
                    B, double(r.tokens) / r.seconds, achieved * 1e-9, bandwidth > 0 ? 100.0 * achieved / bandwidth : 0.0,
                    100.0 * r.bookkeeping_seconds / r.seconds);
        out["throughput"].push_back({{"batch", B}, {"prompt", prompt}, {"gen", gen}, {"seconds", r.seconds},
                                     {"tokens_per_s", double(r.tokens) / r.seconds}, {"bytes_per_s", achieved},
                                     {"bookkeeping_seconds", r.bookkeeping_seconds}, {"kv_bytes", r.kv_bytes},
                                     {"kv_peak_bytes", r.kv_peak_bytes}});
    }
    // The same decode with the cache in f32 and in bf16 (half the KV bytes to stream).
    const auto long_prompts = random_prompts(dtype_batch, dtype_prompt, config.vocab_size, 11);
    const DecodeRun kv32 = decode(model, long_prompts, 1, dtype_gen, block_tokens, KvDType::f32);
    const DecodeRun kv16 = decode(model, long_prompts, 1, dtype_gen, block_tokens, KvDType::bf16);
    std::printf("  batch %d, %d-token prompts, %d new tokens: KV cache f32 %.1f MiB, %.0f tokens/s; bf16 %.1f MiB, "
                "%.0f tokens/s (%.2fx)\n",
                dtype_batch, dtype_prompt, dtype_gen, double(kv32.kv_bytes) / 1048576.0,
                double(kv32.tokens) / kv32.seconds, double(kv16.kv_bytes) / 1048576.0,
                double(kv16.tokens) / kv16.seconds, kv32.seconds / kv16.seconds);
    out["kv_dtype_comparison"] = {{"batch", dtype_batch}, {"prompt", dtype_prompt}, {"gen", dtype_gen},
                                  {"f32_kv_bytes", kv32.kv_bytes}, {"f32_seconds", kv32.seconds},
                                  {"bf16_kv_bytes", kv16.kv_bytes}, {"bf16_seconds", kv16.seconds}};

    const auto prompts = random_prompts(group_contexts, prompt, config.vocab_size, 9);
    std::vector<std::vector<int32_t>> copied;
    for (const auto& p : prompts)
        for (int g = 0; g < group; ++g) copied.push_back(p);
    const DecodeRun shared = decode(model, prompts, group, group_gen, block_tokens);
    const DecodeRun copy = decode(model, copied, 1, group_gen, block_tokens);
    std::printf("  %d contexts x %d rollouts, %d new tokens: shared prefix %.1f MiB KV, %.3f s; copied prefix "
                "%.1f MiB KV, %.3f s (%.2fx memory, %.2fx time)\n",
                group_contexts, group, group_gen, double(shared.kv_bytes) / 1048576.0, shared.seconds,
                double(copy.kv_bytes) / 1048576.0, copy.seconds, double(copy.kv_bytes) / double(shared.kv_bytes),
                copy.seconds / shared.seconds);
    out["shared_prefix"] = {{"contexts", group_contexts}, {"group", group}, {"gen", group_gen},
                            {"shared_kv_bytes", shared.kv_bytes}, {"shared_seconds", shared.seconds},
                            {"copied_kv_bytes", copy.kv_bytes}, {"copied_seconds", copy.seconds}};
    if (!json_path.empty()) write_file_atomic(json_path, out.dump(2) + "\n");
    return 0;
}

}  // namespace rpt::bench
