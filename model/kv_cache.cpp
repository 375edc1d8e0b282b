#include "model/kv_cache.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

namespace rpt {
namespace {

constexpr const char* kAutoName = "auto";

// The prefix keys and values, L x (B, Tp, KVH, D) each: kv_bytes() measures this part
// with the pool's.
void carve_prefix(Arena& arena, const ModelConfig& c, const KvCacheShape& sh, DType kv_dtype, KvCache* cache) {
    const int64_t B = sh.contexts, Tp = sh.prefix_capacity, KVH = c.num_kv_heads, D = c.head_dim;
    for (int l = 0; l < c.num_layers; ++l) {
        Tensor pk = arena.carve(kv_dtype, {B, Tp, KVH, D});
        Tensor pv = arena.carve(kv_dtype, {B, Tp, KVH, D});
        if (cache) {
            cache->prefix_k.push_back(pk);
            cache->prefix_v.push_back(pv);
        }
    }
}

// The suffix pools of `blocks` blocks of the shape's tokens per block, L x (N, Tb, KVH, D).
void carve_pool(Arena& arena, const ModelConfig& c, const KvCacheShape& sh, DType kv_dtype, int blocks,
                std::vector<Tensor>* k, std::vector<Tensor>* v) {
    const int64_t N = blocks, Tb = sh.tokens_per_block(), KVH = c.num_kv_heads, D = c.head_dim;
    for (int l = 0; l < c.num_layers; ++l) {
        Tensor sk = arena.carve(kv_dtype, {N, Tb, KVH, D});
        Tensor sv = arena.carve(kv_dtype, {N, Tb, KVH, D});
        if (k) k->push_back(sk);
        if (v) v->push_back(sv);
    }
}

// The step's rows: of the activation dtype of sh.precision, statistics and logits fp32,
// indices i32.
void carve_rows(Arena& arena, const ModelConfig& c, const KvCacheShape& sh, KvCache* cache) {
    const int64_t B = sh.contexts, S = sh.slots(), H = c.num_heads, C = c.hidden_size, KVH = c.num_kv_heads;
    const int64_t D = c.head_dim, F = c.intermediate_size, V = c.vocab_size;
    const int64_t table = sh.paged() ? S * sh.max_blocks() : 0;
    cache->prefix_len = arena.carve(DType::i32, {B});
    cache->step_inputs = arena.carve(DType::i32, {KvCache::kStepInputs * S + table});
    const auto input_row = [&](KvCache::StepInput row) {
        return cache->step_inputs.rows(int64_t(row) * S, (int64_t(row) + 1) * S);
    };
    using Row = KvCache::StepInput;
    cache->tokens = input_row(Row::tokens);
    cache->positions = input_row(Row::positions);
    cache->slots = input_row(Row::slots);
    cache->suffix_index = input_row(Row::suffix_index);
    cache->suffix_len = input_row(Row::suffix_len);
    cache->sequence_ids = input_row(Row::sequence_ids);
    cache->sample_positions = input_row(Row::sample_positions);
    if (sh.paged())
        cache->block_table = cache->step_inputs.rows(KvCache::kStepInputs * S, KvCache::kStepInputs * S + table)
                                 .reshaped({S, int64_t(sh.max_blocks())});
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

size_t measure_prefix(const ModelConfig& c, const KvCacheShape& sh, DType kv_dtype) {
    Arena measure(nullptr);
    carve_prefix(measure, c, sh, kv_dtype, nullptr);
    return measure.used();
}

size_t measure_pool(const ModelConfig& c, const KvCacheShape& sh, DType kv_dtype, int blocks) {
    Arena measure(nullptr);
    carve_pool(measure, c, sh, kv_dtype, blocks, nullptr, nullptr);
    return measure.used();
}

// The pool's blocks at its largest: every slot's suffix whole.
int full_pool_blocks(const KvCacheShape& sh) { return sh.slots() * sh.max_blocks(); }
// The pool's blocks at first: one per slot (paged), or the whole (contiguous).
int first_pool_blocks(const KvCacheShape& sh) { return sh.paged() ? sh.slots() : full_pool_blocks(sh); }

double mib(size_t bytes) { return double(bytes) / 1048576.0; }

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
    const DType dtype = resolve_kv_dtype(shape.kv_dtype, device);
    return measure_prefix(config, shape, dtype) + measure_pool(config, shape, dtype, full_pool_blocks(shape));
}

size_t KvCache::min_kv_bytes(const ModelConfig& config, const KvCacheShape& shape, DeviceKind device) {
    const DType dtype = resolve_kv_dtype(shape.kv_dtype, device);
    return measure_prefix(config, shape, dtype) + measure_pool(config, shape, dtype, first_pool_blocks(shape));
}

size_t KvCache::total_bytes(const ModelConfig& config, const KvCacheShape& shape, DeviceKind device) {
    Arena measure(nullptr);
    KvCache views;
    carve_rows(measure, config, shape, &views);
    return kv_bytes(config, shape, device) + measure.used();
}

void KvCache::check_budget(const ModelConfig& config, const KvCacheShape& shape, DeviceKind device,
                           size_t budget_bytes) {
    if (shape.contexts <= 0 || shape.group_size <= 0 || shape.prefix_capacity <= 0 || shape.suffix_capacity <= 0 ||
        shape.block_tokens < 0)
        throw std::invalid_argument("KV cache shape must be positive");
    const size_t kv = min_kv_bytes(config, shape, device);
    const DType dtype = resolve_kv_dtype(shape.kv_dtype, device);
    if (kv <= budget_bytes) return;
    const std::string what =
        shape.paged() ? fmt::format("at least {:.1f} MiB (the prefix and one block of {} tokens per slot", mib(kv),
                                    shape.block_tokens)
                      : fmt::format("{:.1f} MiB (", mib(kv));
    throw std::invalid_argument(fmt::format(
        "the KV cache needs {}; {} contexts x {} rollouts, prefix {} + {} new tokens, {} layers, {}) but "
        "--kv-budget-mb allows {:.1f} MiB: lower --contexts, --rollouts or --max-new-tokens, {}raise "
        "--kv-budget-mb",
        what, shape.contexts, shape.group_size, shape.prefix_capacity, shape.suffix_capacity, config.num_layers,
        dtype_name(dtype), mib(budget_bytes),
        dtype == DType::f32 ? "store it in half the memory with --kv-dtype bf16, or " : "or "));
}

KvCache::KvCache(const ModelConfig& config, OpContext ctx, const KvCacheShape& shape, size_t budget_bytes)
    : config_(config), ctx_(ctx), shape_(shape), kv_dtype_(resolve_kv_dtype(shape.kv_dtype, ctx.device)),
      budget_bytes_(budget_bytes) {
    check_budget(config, shape, ctx.device, budget_bytes);
    // The prefix and the step's rows in one buffer (measured, then carved).
    Arena measure(nullptr);
    carve_prefix(measure, config, shape, kv_dtype_, this);
    prefix_bytes_ = measure.used();
    carve_rows(measure, config, shape, this);
    prefix_k.clear();
    prefix_v.clear();
    buffer_ = Buffer(ctx.device, measure.used(), "KV cache");
    Arena arena(&buffer_);
    carve_prefix(arena, config, shape, kv_dtype_, this);
    carve_rows(arena, config, shape, this);
    // The suffix pool in its own buffer, so that it can grow alone.
    const int blocks = first_pool_blocks(shape);
    pool_buffer_ = Buffer(ctx.device, pool_bytes(blocks), "KV cache blocks");
    Arena pool(&pool_buffer_);
    carve_pool(pool, config, shape, kv_dtype_, blocks, &suffix_k, &suffix_v);
    peak_pool_bytes_ = pool_buffer_.bytes();
    if (shape.paged()) {
        blocks_ = KvBlockAllocator(shape.slots(), shape.max_blocks(), shape.block_tokens);
        blocks_.add_blocks(blocks);
    }
}

size_t KvCache::pool_bytes(int blocks) const { return measure_pool(config_, shape_, kv_dtype_, blocks); }

int KvCache::grown_capacity(int needed, int new_tokens) const {
    const int full = full_pool_blocks(shape_);
    int blocks = std::min(full, std::max(needed, 2 * blocks_.capacity()));
    while (blocks > needed && prefix_bytes_ + pool_bytes(blocks) > budget_bytes_) {
        // The most the budget allows (pool bytes are linear in blocks but for alignment).
        const size_t per_block = pool_bytes(2) - pool_bytes(1);
        const size_t room = budget_bytes_ > prefix_bytes_ ? budget_bytes_ - prefix_bytes_ : 0;
        blocks = std::max(needed, std::min(blocks - 1, int(room / std::max<size_t>(per_block, 1))));
    }
    if (prefix_bytes_ + pool_bytes(blocks) > budget_bytes_)
        throw std::invalid_argument(fmt::format(
            "the KV cache outgrew --kv-budget-mb ({:.1f} MiB): {} tokens live in {} slots (+{} this step) need {} "
            "blocks of {} tokens, {:.1f} MiB with the prefix; raise --kv-budget-mb, lower --contexts, --rollouts "
            "or --max-new-tokens{}",
            mib(budget_bytes_), blocks_.live_tokens(), shape_.slots(), new_tokens, needed, shape_.block_tokens,
            mib(prefix_bytes_ + pool_bytes(needed)), kv_dtype_ == DType::f32 ? ", or use --kv-dtype bf16" : ""));
    return blocks;
}

void KvCache::grow_pool(int blocks) {
    Buffer next(ctx_.device, pool_bytes(blocks), "KV cache blocks");
    Arena arena(&next);
    std::vector<Tensor> k, v;
    carve_pool(arena, config_, shape_, kv_dtype_, blocks, &k, &v);
    // The blocks in use keep their ids: copy the old pool into the new one's first rows.
    const int64_t old_blocks = suffix_k.empty() ? 0 : suffix_k[0].dim(0);
    for (size_t l = 0; l < k.size(); ++l) {
        ops::copy(ctx_, k[l].rows(0, old_blocks), suffix_k[l]);
        ops::copy(ctx_, v[l].rows(0, old_blocks), suffix_v[l]);
    }
    suffix_k.swap(k);
    suffix_v.swap(v);
    pool_buffer_ = std::move(next);
    blocks_.add_blocks(blocks - blocks_.capacity());
    peak_pool_bytes_ = std::max(peak_pool_bytes_, pool_buffer_.bytes());
}

void KvCache::reserve(const std::vector<int32_t>& slots, int tokens) {
    if (!shape_.paged()) return;  // every slot holds its whole suffix already
    int missing = 0;
    for (int32_t s : slots) missing += blocks_.missing(s, tokens);
    const int needed = blocks_.used() + missing;
    if (needed > blocks_.capacity()) grow_pool(grown_capacity(needed, int(slots.size())));
    for (int32_t s : slots) blocks_.reserve(s, tokens);
}

void KvCache::release(int slot) {
    if (shape_.paged()) blocks_.release(slot);
}

}  // namespace rpt
