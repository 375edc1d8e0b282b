// Shared by the ZeRO tests: a model whose buckets no small rank count divides evenly, and
// the count behind their trajectory tolerances.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace rpt::test {

// At vocab 37 and 2 layers the buckets are 333 (embedding), 685 (each layer) and 342 (an
// untied head): P = 2045 is odd, and every rank count from 2 to 5 leaves some bucket uneven.
inline ModelConfig odd_zero_config(bool tied, int vocab = 37, int layers = 2) {
    ModelConfig c;
    c.vocab_size = vocab;
    c.hidden_size = 9;
    c.num_layers = layers;
    c.num_heads = 3;
    c.num_kv_heads = 1;
    c.head_dim = 2;
    c.intermediate_size = 19;
    c.max_position_embeddings = 16;
    c.tie_word_embeddings = tied;
    return c;
}

// How many elements of a and b differ by more than tol (NaN counts as differing).
inline int64_t count_beyond(const std::vector<float>& a, const std::vector<float>& b, float tol) {
    int64_t n = 0;
    for (size_t i = 0; i < a.size(); ++i) n += !(std::fabs(a[i] - b[i]) <= tol);
    return n;
}

}  // namespace rpt::test
