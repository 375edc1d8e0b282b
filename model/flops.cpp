// The FLOP model of model/flops.h, written once.
#include "model/flops.h"

namespace rpt {

namespace {
constexpr double kFlopsPerMac = 2.0;          // a multiply and an add
constexpr double kAttentionProducts = 2.0;    // q . k and p . v
constexpr double kTrainingOverForward = 3.0;  // forward + a backward of twice its cost
}  // namespace

double forward_flops(const ModelConfig& c, double tokens, double pairs) {
    const double matmuls = kFlopsPerMac * double(c.num_matmul_parameters()) * tokens;
    const double attention = kFlopsPerMac * kAttentionProducts * double(c.num_layers) * double(c.num_heads) *
                             double(c.head_dim) * pairs;
    return matmuls + attention;
}

double training_flops(const ModelConfig& c, double tokens, double pairs) {
    return kTrainingOverForward * forward_flops(c, tokens, pairs);
}

double forward_flops_per_token(const ModelConfig& c, double T) { return forward_flops(c, 1.0, T); }

double training_flops_per_token(const ModelConfig& c, double T) { return training_flops(c, 1.0, T); }

}  // namespace rpt
