// Activation recomputation (`--recompute`): what a training forward keeps for backward.
//   none   every layer's activations are saved (the fastest backward).
//   layer  only each layer's input is saved; the backward recomputes a layer's forward
//          from it, into one set of layer activations shared by all layers, just before
//          that layer's backward. Activations shrink from L layer sets to L inputs plus
//          one set, at the cost of one more forward; the gradients are bit-identical
//          (the recomputation runs the same kernels on the same inputs).
// Models that only run forward (generation, scoring, evaluation, the frozen KL
// reference) use the layer layout too: nothing reads the rest, and nothing is recomputed.
#pragma once

#include <cstdint>
#include <string>

namespace rpt {

enum class Recompute : uint8_t { none, layer };

const char* recompute_name(Recompute recompute);  // "none", "layer"
// Parses "none" or "layer"; throws std::invalid_argument naming --recompute.
Recompute parse_recompute(const std::string& name);

}  // namespace rpt
