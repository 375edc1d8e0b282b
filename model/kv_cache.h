// The KV cache of batched rollouts (B contexts x G rollouts, S = B * G slots), laid out
// for the shared-prefix decode-attention kernel (kernels/rl_ops.h): each context's
// keys and values are computed and stored once (the prefix) and read by all G of its
// rollouts; each slot appends only what it generates (the suffix). Also holds the
// decode step's scratch rows. Sizes are fixed at construction and checked against a
// memory budget first.
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

struct KvCacheShape {
    int contexts = 0;         // B
    int group_size = 0;       // G
    int prefix_capacity = 0;  // Tp, the longest context prefix
    int suffix_capacity = 0;  // R, the most tokens a rollout generates
    KvDType kv_dtype = KvDType::automatic;  // element type of keys and values
    Precision precision = Precision::f32;   // of the decode rows: the model's (decode_step checks)
    int slots() const { return contexts * group_size; }
};

class KvCache {
public:
    // Bytes of the cache proper (keys and values, in the dtype shape.kv_dtype resolves to
    // on `device`), the number the budget is about.
    static size_t kv_bytes(const ModelConfig& config, const KvCacheShape& shape, DeviceKind device);
    // Bytes of the whole allocation: keys and values plus the decode step's scratch rows
    // and next-token logits (what `rpt plan` counts).
    static size_t total_bytes(const ModelConfig& config, const KvCacheShape& shape, DeviceKind device);
    // Throws std::invalid_argument naming the knobs when kv_bytes exceeds budget_bytes.
    static void check_budget(const ModelConfig& config, const KvCacheShape& shape, DeviceKind device,
                             size_t budget_bytes);
    // Checks the budget first (check_budget), then allocates.
    KvCache(const ModelConfig& config, OpContext ctx, const KvCacheShape& shape, size_t budget_bytes);

    const KvCacheShape& shape() const { return shape_; }
    DType kv_dtype() const { return kv_dtype_; }  // f32 or bf16, resolved for the device
    size_t bytes() const { return buffer_.bytes(); }

    // Per layer, of kv_dtype().
    std::vector<Tensor> prefix_k, prefix_v;  // L x (B, Tp, KVH, D)
    std::vector<Tensor> suffix_k, suffix_v;  // L x (S, R, KVH, D)
    Tensor prefix_len;                       // (B) i32

    // Decode-step inputs (first A entries used in a step of A active sequences), the rows
    // of one block so that a step uploads them with a single copy: row StepInput::x of
    // step_inputs is the tensor x below. The rollout fills the block's host image by the
    // same names.
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
    Tensor step_inputs;   // (kStepInputs, S) i32, the rows below in StepInput order
    Tensor tokens;        // (S) i32
    Tensor positions;     // (S) i32  RoPE position of the token being fed
    Tensor slots;         // (S) i32
    Tensor suffix_index;  // (S) i32  where this token's KV goes in the slot's suffix
    Tensor suffix_len;    // (S) i32  suffix_index + 1
    Tensor sequence_ids;  // (S) i32  the sampler's RNG key of each row (ops::sample_tokens)
    Tensor sample_positions;  // (S) i32  the generated position, the other part of that key
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
    KvCacheShape shape_;
    DType kv_dtype_ = DType::f32;
    Buffer buffer_;
};

}  // namespace rpt
