// Counter-based random numbers: every draw is a pure function of (seed, counter), so
// results never depend on thread count, batch composition or rank count, and a run can
// be resumed from (seed, step) alone. splitmix64 mixes; Box-Muller makes normals.
// Usable from CUDA kernels too (the sampler draws the same numbers on both backends).
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define RPT_HOST_DEVICE __host__ __device__
#else
#define RPT_HOST_DEVICE
#endif

namespace rpt {

RPT_HOST_DEVICE inline uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// A 64-bit hash of several keys (seed, step, sequence, position, ...).
RPT_HOST_DEVICE inline uint64_t hash_keys(uint64_t a, uint64_t b) { return splitmix64(a ^ splitmix64(b)); }
RPT_HOST_DEVICE inline uint64_t hash_keys(uint64_t a, uint64_t b, uint64_t c) { return hash_keys(hash_keys(a, b), c); }
RPT_HOST_DEVICE inline uint64_t hash_keys(uint64_t a, uint64_t b, uint64_t c, uint64_t d) { return hash_keys(hash_keys(a, b, c), d); }

// Uniform in [0, 1) with 24 random bits (exactly representable as float).
RPT_HOST_DEVICE inline float uniform_from_bits(uint64_t bits) { return float(bits >> 40) * (1.0f / 16777216.0f); }
// Uniform in (0, 1]: safe under log().
RPT_HOST_DEVICE inline double uniform_open_from_bits(uint64_t bits) { return (double(bits >> 11) + 1.0) * (1.0 / 9007199254740992.0); }

// Standard normal, a pure function of (seed, index).
RPT_HOST_DEVICE inline float normal_at(uint64_t seed, uint64_t index) {
    const uint64_t h = hash_keys(seed, index);
    const double u1 = uniform_open_from_bits(h);
    const double u2 = uniform_open_from_bits(splitmix64(h));
    return float(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

// A small sequential generator for host-side choices (data order, sampling positions),
// whose whole state is one integer so it can be checkpointed.
struct SplitMix {
    uint64_t state = 0;
    uint64_t next() { return splitmix64(state++); }
    // Uniform integer in [0, n).
    uint64_t below(uint64_t n) { return n == 0 ? 0 : next() % n; }
    float uniform() { return uniform_from_bits(next()); }
};

}  // namespace rpt
