#include "model/kv_cache.h"

#include <stdexcept>

#include <fmt/format.h>

namespace rpt {
namespace {

void carve_all(Arena& arena, const ModelConfig& c, const KvCacheShape& sh, KvCache* cache) {
    const int64_t B = sh.contexts, S = sh.slots(), Tp = sh.prefix_capacity, R = sh.suffix_capacity;
    const int64_t KVH = c.num_kv_heads, D = c.head_dim, H = c.num_heads, C = c.hidden_size;
    const int64_t F = c.intermediate_size, V = c.vocab_size;
    // Keys and values first: kv_bytes() measures exactly this part.
    for (int l = 0; l < c.num_layers; ++l) {
        Tensor pk = arena.carve(DType::f32, {B, Tp, KVH, D});
        Tensor pv = arena.carve(DType::f32, {B, Tp, KVH, D});
        Tensor sk = arena.carve(DType::f32, {S, R, KVH, D});
        Tensor sv = arena.carve(DType::f32, {S, R, KVH, D});
        if (cache) {
            cache->prefix_k.push_back(pk);
            cache->prefix_v.push_back(pv);
            cache->suffix_k.push_back(sk);
            cache->suffix_v.push_back(sv);
        }
    }
    if (!cache) return;
    cache->prefix_len = arena.carve(DType::i32, {B});
    cache->tokens = arena.carve(DType::i32, {S});
    cache->positions = arena.carve(DType::i32, {S});
    cache->slots = arena.carve(DType::i32, {S});
    cache->suffix_index = arena.carve(DType::i32, {S});
    cache->suffix_len = arena.carve(DType::i32, {S});
    cache->hidden_a = arena.carve(DType::f32, {S, C});
    cache->hidden_b = arena.carve(DType::f32, {S, C});
    cache->ln1 = arena.carve(DType::f32, {S, C});
    cache->ln2 = arena.carve(DType::f32, {S, C});
    cache->rstd1 = arena.carve(DType::f32, {S});
    cache->rstd2 = arena.carve(DType::f32, {S});
    cache->q = arena.carve(DType::f32, {S, H, D});
    cache->attn = arena.carve(DType::f32, {S, H, D});
    cache->k = arena.carve(DType::f32, {S, KVH, D});
    cache->v = arena.carve(DType::f32, {S, KVH, D});
    cache->mid = arena.carve(DType::f32, {S, C});
    cache->gate = arena.carve(DType::f32, {S, F});
    cache->up = arena.carve(DType::f32, {S, F});
    cache->act = arena.carve(DType::f32, {S, F});
    cache->logits = arena.carve(DType::f32, {S, V});
}

size_t measure_kv_bytes(const ModelConfig& c, const KvCacheShape& sh) {
    Arena measure(nullptr);
    carve_all(measure, c, sh, /*cache=*/nullptr);  // stops after keys and values
    return measure.used();
}

}  // namespace

size_t KvCache::kv_bytes(const ModelConfig& config, const KvCacheShape& shape, DeviceKind) {
    return measure_kv_bytes(config, shape);
}

void KvCache::check_budget(const ModelConfig& config, const KvCacheShape& shape, DeviceKind device,
                           size_t budget_bytes) {
    if (shape.contexts <= 0 || shape.group_size <= 0 || shape.prefix_capacity <= 0 || shape.suffix_capacity <= 0)
        throw std::invalid_argument("KV cache shape must be positive");
    const size_t kv = kv_bytes(config, shape, device);
    if (kv > budget_bytes)
        throw std::invalid_argument(fmt::format(
            "the KV cache needs {:.1f} MiB ({} contexts x {} rollouts, prefix {} + {} new tokens, {} layers) but "
            "--kv-budget-mb allows {:.1f} MiB: lower --contexts, --rollouts or --max-new-tokens, or raise "
            "--kv-budget-mb",
            double(kv) / 1048576.0, shape.contexts, shape.group_size, shape.prefix_capacity, shape.suffix_capacity,
            config.num_layers, double(budget_bytes) / 1048576.0));
}

KvCache::KvCache(const ModelConfig& config, OpContext ctx, const KvCacheShape& shape, size_t budget_bytes)
    : shape_(shape) {
    check_budget(config, shape, ctx.device, budget_bytes);
    Arena measure(nullptr);
    carve_all(measure, config, shape, this);
    prefix_k.clear();
    prefix_v.clear();
    suffix_k.clear();
    suffix_v.clear();
    buffer_ = Buffer(ctx.device, measure.used(), "KV cache");
    Arena arena(&buffer_);
    carve_all(arena, config, shape, this);
}

}  // namespace rpt
