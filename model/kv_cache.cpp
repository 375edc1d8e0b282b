#include "model/kv_cache.h"

#include <stdexcept>

#include <fmt/format.h>

namespace rpt {
namespace {

constexpr const char* kAutoName = "auto";

// kv_dtype: the element type of keys and values (f32 or bf16); the step's rows are of
// the activation dtype of sh.precision, statistics and logits fp32, indices i32.
void carve_all(Arena& arena, const ModelConfig& c, const KvCacheShape& sh, DType kv_dtype, KvCache* cache) {
    const int64_t B = sh.contexts, S = sh.slots(), Tp = sh.prefix_capacity, R = sh.suffix_capacity;
    const int64_t KVH = c.num_kv_heads, D = c.head_dim, H = c.num_heads, C = c.hidden_size;
    const int64_t F = c.intermediate_size, V = c.vocab_size;
    // Keys and values first: kv_bytes() measures exactly this part.
    for (int l = 0; l < c.num_layers; ++l) {
        Tensor pk = arena.carve(kv_dtype, {B, Tp, KVH, D});
        Tensor pv = arena.carve(kv_dtype, {B, Tp, KVH, D});
        Tensor sk = arena.carve(kv_dtype, {S, R, KVH, D});
        Tensor sv = arena.carve(kv_dtype, {S, R, KVH, D});
        if (cache) {
            cache->prefix_k.push_back(pk);
            cache->prefix_v.push_back(pv);
            cache->suffix_k.push_back(sk);
            cache->suffix_v.push_back(sv);
        }
    }
    if (!cache) return;
    cache->prefix_len = arena.carve(DType::i32, {B});
    cache->step_inputs = arena.carve(DType::i32, {KvCache::kStepInputs, S});
    const auto input_row = [&](KvCache::StepInput row) {
        return cache->step_inputs.rows(int64_t(row), int64_t(row) + 1).reshaped({S});
    };
    using Row = KvCache::StepInput;
    cache->tokens = input_row(Row::tokens);
    cache->positions = input_row(Row::positions);
    cache->slots = input_row(Row::slots);
    cache->suffix_index = input_row(Row::suffix_index);
    cache->suffix_len = input_row(Row::suffix_len);
    cache->sequence_ids = input_row(Row::sequence_ids);
    cache->sample_positions = input_row(Row::sample_positions);
    const DType act = activation_dtype(sh.precision);
    cache->hidden_a = arena.carve(act, {S, C});
    cache->hidden_b = arena.carve(act, {S, C});
    cache->ln1 = arena.carve(act, {S, C});
    cache->ln2 = arena.carve(act, {S, C});
    cache->rstd1 = arena.carve(DType::f32, {S});
    cache->rstd2 = arena.carve(DType::f32, {S});
    cache->q = arena.carve(act, {S, H, D});
    cache->attn = arena.carve(act, {S, H, D});
    cache->k = arena.carve(act, {S, KVH, D});
    cache->v = arena.carve(act, {S, KVH, D});
    cache->mid = arena.carve(act, {S, C});
    cache->gate = arena.carve(act, {S, F});
    cache->up = arena.carve(act, {S, F});
    cache->act = arena.carve(act, {S, F});
    // In f32 the final norm writes into ln1 (free by then), as it always has.
    cache->lnf = act == DType::f32 ? cache->ln1 : arena.carve(DType::f32, {S, C});
    cache->logits = arena.carve(DType::f32, {S, V});
}

size_t measure_kv_bytes(const ModelConfig& c, const KvCacheShape& sh, DType kv_dtype) {
    Arena measure(nullptr);
    carve_all(measure, c, sh, kv_dtype, /*cache=*/nullptr);  // stops after keys and values
    return measure.used();
}

}  // namespace

DType resolve_kv_dtype(KvDType choice, DeviceKind device) {
    switch (choice) {
        case KvDType::f32: return DType::f32;
        case KvDType::bf16: return DType::bf16;
        case KvDType::automatic: break;
    }
    return device == DeviceKind::cuda ? DType::bf16 : DType::f32;
}

const char* kv_dtype_name(KvDType choice) {
    switch (choice) {
        case KvDType::f32: return dtype_name(DType::f32);
        case KvDType::bf16: return dtype_name(DType::bf16);
        case KvDType::automatic: break;
    }
    return kAutoName;
}

KvDType parse_kv_dtype(const std::string& name) {
    for (KvDType choice : {KvDType::automatic, KvDType::f32, KvDType::bf16})
        if (name == kv_dtype_name(choice)) return choice;
    throw std::invalid_argument(fmt::format("--kv-dtype: unknown value '{}' (auto, f32 or bf16)", name));
}

size_t KvCache::kv_bytes(const ModelConfig& config, const KvCacheShape& shape, DeviceKind device) {
    return measure_kv_bytes(config, shape, resolve_kv_dtype(shape.kv_dtype, device));
}

size_t KvCache::total_bytes(const ModelConfig& config, const KvCacheShape& shape, DeviceKind device) {
    Arena measure(nullptr);
    KvCache views;
    carve_all(measure, config, shape, resolve_kv_dtype(shape.kv_dtype, device), &views);
    return measure.used();
}

void KvCache::check_budget(const ModelConfig& config, const KvCacheShape& shape, DeviceKind device,
                           size_t budget_bytes) {
    if (shape.contexts <= 0 || shape.group_size <= 0 || shape.prefix_capacity <= 0 || shape.suffix_capacity <= 0)
        throw std::invalid_argument("KV cache shape must be positive");
    const size_t kv = kv_bytes(config, shape, device);
    const DType dtype = resolve_kv_dtype(shape.kv_dtype, device);
    if (kv > budget_bytes)
        throw std::invalid_argument(fmt::format(
            "the KV cache needs {:.1f} MiB ({} contexts x {} rollouts, prefix {} + {} new tokens, {} layers, {}) but "
            "--kv-budget-mb allows {:.1f} MiB: lower --contexts, --rollouts or --max-new-tokens, {}raise "
            "--kv-budget-mb",
            double(kv) / 1048576.0, shape.contexts, shape.group_size, shape.prefix_capacity, shape.suffix_capacity,
            config.num_layers, dtype_name(dtype), double(budget_bytes) / 1048576.0,
            dtype == DType::f32 ? "store it in half the memory with --kv-dtype bf16, or " : "or "));
}

KvCache::KvCache(const ModelConfig& config, OpContext ctx, const KvCacheShape& shape, size_t budget_bytes)
    : shape_(shape), kv_dtype_(resolve_kv_dtype(shape.kv_dtype, ctx.device)) {
    check_budget(config, shape, ctx.device, budget_bytes);
    Arena measure(nullptr);
    carve_all(measure, config, shape, kv_dtype_, this);
    prefix_k.clear();
    prefix_v.clear();
    suffix_k.clear();
    suffix_v.clear();
    buffer_ = Buffer(ctx.device, measure.used(), "KV cache");
    Arena arena(&buffer_);
    carve_all(arena, config, shape, kv_dtype_, this);
}

}  // namespace rpt
