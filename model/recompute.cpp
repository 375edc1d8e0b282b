#include "model/recompute.h"

#include <stdexcept>

namespace rpt {

const char* recompute_name(Recompute recompute) { return recompute == Recompute::layer ? "layer" : "none"; }

Recompute parse_recompute(const std::string& name) {
    if (name == "none") return Recompute::none;
    if (name == "layer") return Recompute::layer;
    throw std::invalid_argument("--recompute must be none or layer, got '" + name + "'");
}

}  // namespace rpt
