// The precision side of the op dispatch (kernels/ops.cpp): which tensors of an op may be
// bf16 (the recipe's dtype table, kernels/cuda/cuda_mixed_ops.h), and the CPU emulation
// of the bf16 path. Internal to kernels/.
//
// An op runs in fp32 when all its floating tensors are f32, and on the bf16 path when any
// is bf16; then every tensor must have the dtype its Slot names. On the CPU the bf16 path
// is emulated once for every op, around the op's own fp32 twin (BF16Staging): bf16 inputs
// are widened into fp32 scratch (exact), the twin computes in fp32, and each bf16 output
// is rounded once at the store (to nearest even, kernels/bf16.h) -- the points where the
// CUDA kernels store bf16. An accumulated (+=) or in-place bf16 output is widened first,
// so the twin sums in fp32 and the sum is rounded once.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "kernels/tensor.h"

namespace rpt::ops::precision {

// What the bf16 path allows for one tensor of an op.
enum class Allowed : uint8_t {
    bf16,    // bf16 (activations, the working weights, activation gradients)
    f32,     // f32 always (statistics, parameter gradients, biases, master weights)
    either,  // f32 or bf16 (a norm feeding the fp32 LM head, a gradient arriving from it)
};

// How the op uses the tensor, which decides what the emulation stages.
enum class Role : uint8_t {
    in,     // read only: widened
    out,    // overwritten: computed in fp32 scratch, rounded back
    inout,  // accumulated (+=) or updated in place: widened, then rounded back
};

// One floating tensor of an op call. `tensor` is the call's own view; staging replaces it
// by an fp32 view of the scratch, so the op's fp32 code runs on it unchanged.
struct Slot {
    Tensor* tensor;
    const char* name;
    Allowed allowed;
    Role role;
};

// True when any non-empty tensor of `slots` is bf16: the op takes the bf16 path.
bool any_bf16(std::initializer_list<Slot> slots);
// Throws std::invalid_argument naming `op` and the first tensor whose dtype the bf16 path
// does not allow.
void check_bf16_dtypes(const char* op, std::initializer_list<Slot> slots);

// The CPU emulation of one bf16 op call (see the header comment). Construct it over the
// call's slots, run the fp32 twin on the (now f32) tensors, then commit() the outputs.
// Scratch is per call: speed in this mode is not a goal, exact rounding points are.
class BF16Staging {
public:
    explicit BF16Staging(std::initializer_list<Slot> slots);
    // Rounds every staged output into its bf16 tensor (after the twin ran).
    void commit();

private:
    struct Staged {
        Tensor bf16;     // the caller's tensor
        Tensor scratch;  // its fp32 stand-in
    };
    std::vector<std::vector<float>> scratch_;
    std::vector<Staged> outputs_;
};

}  // namespace rpt::ops::precision
