// SwiGLU gating: out = silu(gate) * up, silu(g) = g * sigmoid(g).
// Backward, with s = sigmoid(g):
//   dup   = dout * silu(g)
//   dgate = dout * up * s * (1 + g * (1 - s))
// Elementwise, threads over static chunks; overwrites its outputs. exp is the vectorisable
// detail::exp_poly (cpu_common.h), not a libm call per element.
#include <cmath>

#include "kernels/cpu/cpu_common.h"
#include "kernels/cpu/cpu_ops.h"

namespace rpt::cpu {

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        const float g = gate[i];
        out[i] = g / (1.0f + detail::exp_poly(-g)) * up[i];
    }
}

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        const float g = gate[i];
        const float s = 1.0f / (1.0f + detail::exp_poly(-g));
        dup[i] = dout[i] * g * s;
        dgate[i] = dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
    }
}

}  // namespace rpt::cpu
