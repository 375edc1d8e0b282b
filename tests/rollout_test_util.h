// Shared by the rollout tests: prompts of given lengths with token ids drawn from a seed.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/rng.h"

namespace rpt::test {

// One prompt per length; token t of prompt i is hash(seed, i, t) mod vocab.
inline std::vector<std::vector<int32_t>> prompts_of(const std::vector<int>& lengths, uint64_t seed, int vocab) {
    std::vector<std::vector<int32_t>> out;
    for (size_t i = 0; i < lengths.size(); ++i) {
        std::vector<int32_t> p;
        for (int t = 0; t < lengths[i]; ++t) p.push_back(int32_t(hash_keys(seed, i, t) % uint64_t(vocab)));
        out.push_back(p);
    }
    return out;
}

}  // namespace rpt::test
