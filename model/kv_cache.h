// The KV cache of batched rollouts (B contexts x G rollouts, S = B * G slots), laid out
// for the shared-prefix decode-attention kernel (kernels/rl_ops.h): each context's
// keys and values are computed and stored once (the prefix) and read by all G of its
// rollouts; each slot appends only what it generates (the suffix). Also holds the
// decode step's scratch rows.
//
// The suffix is paged (kernels/paged_kv.h) when KvCacheShape::block_tokens is set: a
// pool of blocks of that many tokens per layer, handed to a slot as its length crosses
// a block boundary (reserve) and taken back when it finishes (release), by a
// lowest-first free list (model/kv_block_allocator.h). The pool starts with one block
// per slot and doubles when the free list runs short (the used blocks copied over, on
// the device), never past every slot at its full length; so the memory follows the
// tokens actually live, not S * R. The prefix stays contiguous: its size is known up
// front. Without block_tokens the suffix is the contiguous (S, R) of every slot,
// allocated whole (the layout tests and direct users of decode_step start from).
//
// Budget (--kv-budget-mb): checked at construction for what the cache needs at least
// (the prefix plus one block per slot; paged) or in all (contiguous), and again each time
// the pool grows.
//
// Keys and values are stored in fp32 or bf16. The default ("auto") is bf16 on the GPU,
// where decode attention is bound by reading the cache, so bf16 halves both its memory
// and its time; and fp32 on the CPU, the reference backend. Either can be asked for on
// either device (tests run the bf16 cache on the CPU).
//
// The decode step's scratch rows follow the model's precision (KvCacheShape::precision):
// in bf16 the residual stream, norms' outputs, q/k/v, attention output and MLP rows are
// bf16, as the batch forward's activations are (model/activations.h), so a bf16 decode
// step rounds at the same points as a bf16 forward; rstd, the final norm's output (the
// fp32 LM head's input) and the logits stay fp32. In f32 every row is fp32.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/buffer.h"
#include "kernels/ops.h"
#include "model/config.h"
#include "model/kv_block_allocator.h"
#include "model/precision.h"

namespace rpt {

// The element type asked for the cached keys and values (--kv-dtype).
enum class KvDType : uint8_t {
    automatic,  // bf16 on the GPU, f32 on the CPU
    f32,
    bf16,
};
// The dtype a choice means on `device`.
DType resolve_kv_dtype(KvDType choice, DeviceKind device);
const char* kv_dtype_name(KvDType choice);  // "auto", "f32", "bf16"
// Parses "auto", "f32" or "bf16"; throws std::invalid_argument naming --kv-dtype.
KvDType parse_kv_dtype(const std::string& name);

// Tokens per block of the rollouts' paged suffix cache by default (--kv-block-tokens):
// small enough that a slot wastes under a block and short responses take little, large
// enough that the block table (uploaded with every step's rows) stays small.
constexpr int kDefaultKvBlockTokens = 16;

struct KvCacheShape {
    int contexts = 0;         // B
    int group_size = 0;       // G
    int prefix_capacity = 0;  // Tp, the longest context prefix
    int suffix_capacity = 0;  // R, the most tokens a rollout generates
    KvDType kv_dtype = KvDType::automatic;  // element type of keys and values
    Precision precision = Precision::f32;   // of the decode rows: the model's (decode_step checks)
    int block_tokens = 0;     // Tb: the suffix paged in blocks of Tb tokens; 0: contiguous (S, R)
    int slots() const { return contexts * group_size; }
    bool paged() const { return block_tokens > 0; }
    // Blocks a slot may own (1 when contiguous: the whole suffix) and tokens per block.
    int max_blocks() const { return paged() ? (suffix_capacity + block_tokens - 1) / block_tokens : 1; }
    int tokens_per_block() const { return paged() ? block_tokens : suffix_capacity; }
};

class KvCache {
public:
    // Bytes of the cache proper (keys and values, in the dtype shape.kv_dtype resolves to
    // on `device`) at its largest: every slot at its full length (a paged pool never
    // grows past it). What `rpt plan` reports as the maximum.
    static size_t kv_bytes(const ModelConfig& config, const KvCacheShape& shape, DeviceKind device);
    // Keys and values the cache needs at least: the prefix and one block per slot when
    // paged (what it allocates first); kv_bytes when contiguous.
    static size_t min_kv_bytes(const ModelConfig& config, const KvCacheShape& shape, DeviceKind device);
    // Bytes of the whole allocation at its largest: keys and values plus the decode
    // step's scratch rows and next-token logits (what `rpt plan` counts).
    static size_t total_bytes(const ModelConfig& config, const KvCacheShape& shape, DeviceKind device);
    // Throws std::invalid_argument naming the knobs when min_kv_bytes exceeds budget_bytes.
    static void check_budget(const ModelConfig& config, const KvCacheShape& shape, DeviceKind device,
                             size_t budget_bytes);
    // Checks the budget first (check_budget), then allocates (a paged pool: one block per slot).
    KvCache(const ModelConfig& config, OpContext ctx, const KvCacheShape& shape, size_t budget_bytes);

    const KvCacheShape& shape() const { return shape_; }
    DType kv_dtype() const { return kv_dtype_; }  // f32 or bf16, resolved for the device
    size_t bytes() const { return buffer_.bytes() + pool_buffer_.bytes(); }

    // Gives each slot in `slots` the blocks to hold `tokens` tokens, growing the pool first
    // when the free list runs short; throws std::invalid_argument naming --kv-budget-mb
    // (and the live tokens) when the budget does not allow the growth. The host table
    // changes (blocks().table()); the caller uploads it with the step's rows. Nothing to
    // do for a contiguous cache.
    void reserve(const std::vector<int32_t>& slots, int tokens);
    // Takes back every block of a finished slot (paged; nothing to do contiguous).
    void release(int slot);
    const KvBlockAllocator& blocks() const { return blocks_; }
    // Keys and values allocated at the pool's largest so far: the prefix and the pool.
    size_t peak_kv_bytes() const { return prefix_bytes_ + peak_pool_bytes_; }

    // Per layer, of kv_dtype().
    std::vector<Tensor> prefix_k, prefix_v;  // L x (B, Tp, KVH, D)
    // The suffix pools (kernels/paged_kv.h): L x (N, Tb, KVH, D) paged, N blocks of Tb
    // tokens (N grows); L x (S, R, KVH, D) contiguous. Views change when the pool grows.
    std::vector<Tensor> suffix_k, suffix_v;
    Tensor prefix_len;                       // (B) i32

    // Decode-step inputs (first A entries used in a step of A active sequences), the rows
    // of one block so that a step uploads them with a single copy: row StepInput::x of
    // step_inputs is the tensor x below, and the paged cache's block table follows them.
    // The rollout fills the block's host image by the same names.
    enum class StepInput : int {
        tokens,
        positions,
        slots,
        suffix_index,
        suffix_len,
        sequence_ids,
        sample_positions,
        count,
    };
    static constexpr int kStepInputs = int(StepInput::count);
    // (kStepInputs * S + S * max_blocks) i32: the rows below in StepInput order, then
    // block_table when paged (max_blocks = shape().max_blocks()).
    Tensor step_inputs;
    Tensor tokens;        // (S) i32
    Tensor positions;     // (S) i32  RoPE position of the token being fed
    Tensor slots;         // (S) i32
    Tensor suffix_index;  // (S) i32  where this token's KV goes in the slot's suffix
    Tensor suffix_len;    // (S) i32  suffix_index + 1
    Tensor sequence_ids;  // (S) i32  the sampler's RNG key of each row (ops::sample_tokens)
    Tensor sample_positions;  // (S) i32  the generated position, the other part of that key
    Tensor block_table;   // (S, max_blocks) i32 paged (each slot's blocks, -1 past them); empty contiguous
    // The step's rows: of the activation dtype of shape().precision unless said.
    Tensor hidden_a, hidden_b;  // (S, C) ping-pong residual stream
    Tensor ln1, ln2;      // (S, C)
    Tensor rstd1, rstd2;  // (S) f32
    Tensor q, attn;       // (S, H, D)
    Tensor k, v;          // (S, KVH, D)
    Tensor mid;           // (S, C)
    Tensor gate, up, act; // (S, F)
    Tensor lnf;           // (S, C) f32, the final norm's output (the same memory as ln1 in f32)
    Tensor logits;        // (S, V) f32

private:
    KvCache() = default;  // views only, for total_bytes()'s measuring carve
    // Bytes of a pool of `blocks` blocks (all layers, keys and values).
    size_t pool_bytes(int blocks) const;
    // Reallocates the pool with `blocks` blocks, the current ones copied over.
    void grow_pool(int blocks);
    // The block count the pool grows to for `needed` blocks in all (doubling, capped by
    // the full size and the budget); throws naming --kv-budget-mb when it cannot.
    int grown_capacity(int needed, int new_tokens) const;

    ModelConfig config_;
    OpContext ctx_;
    KvCacheShape shape_;
    DType kv_dtype_ = DType::f32;
    size_t budget_bytes_ = 0;
    size_t prefix_bytes_ = 0, peak_pool_bytes_ = 0;
    KvBlockAllocator blocks_;  // paged only
    Buffer buffer_;            // the prefix, the step's rows and the logits
    Buffer pool_buffer_;       // the suffix pools of every layer
};

}  // namespace rpt
