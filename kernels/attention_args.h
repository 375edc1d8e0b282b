// The argument bundles of causal grouped-query attention and its visibility rule, shared
// by the op API (kernels/ops.cpp), the CPU twin (kernels/cpu/attention.cpp), the CUDA
// kernels (kernels/cuda/attention.cu) and the float64 reference (kernels/ref/). The rule
// is written once here, host/device, so the three cannot drift apart.
#pragma once

#include <cstdint>

#include "kernels/rng.h"  // RPT_HOST_DEVICE

namespace rpt::attn {

// q, out (B, T, H, D); k, v (B, T, KVH, D); lse (B, H, T); segments (B, T).
struct Shape {
    int64_t B, T, H, KVH, D;
};

// The forward pass: out and lse from q, k, v. segments is null for plain causal rows.
struct ForwardArgs {
    float* out;               // (B, T, H, D)
    float* lse;               // (B, H, T) log-sum-exp of each query's scaled scores
    const float* q;           // (B, T, H, D)
    const float* k;           // (B, T, KVH, D)
    const float* v;           // (B, T, KVH, D)
    const int32_t* segments;  // (B, T) or null
    Shape shape;
};

// The backward pass: dq, dk, dv (overwritten) from dout and the forward's tensors.
struct BackwardArgs {
    float* dq;                // (B, T, H, D)
    float* dk;                // (B, T, KVH, D)
    float* dv;                // (B, T, KVH, D)
    const float* dout;        // (B, T, H, D)
    const float* q;           // (B, T, H, D)
    const float* k;           // (B, T, KVH, D)
    const float* v;           // (B, T, KVH, D)
    const float* out;         // (B, T, H, D)
    const float* lse;         // (B, H, T)
    const int32_t* segments;  // (B, T) or null
    Shape shape;
};

// Whether a query of segment query_segment may see a key of segment key_segment in a
// packed row (kernels/ops.h): keys of the shared prompt (id 0) or of its own sequence.
RPT_HOST_DEVICE inline bool segment_visible(int32_t query_segment, int32_t key_segment) {
    return key_segment == 0 || key_segment == query_segment;
}

// The whole rule: query t sees key j iff j <= t and the segments allow it.
RPT_HOST_DEVICE inline bool key_visible(int64_t t, int64_t j, int32_t query_segment, int32_t key_segment) {
    return j <= t && segment_visible(query_segment, key_segment);
}

// The same on one row's segment ids (row_segments null: plain causal).
RPT_HOST_DEVICE inline bool key_visible(const int32_t* row_segments, int64_t t, int64_t j) {
    return j <= t && (!row_segments || segment_visible(row_segments[t], row_segments[j]));
}

}  // namespace rpt::attn
