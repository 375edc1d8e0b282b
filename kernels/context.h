// Choosing the backend at start-up: `--device auto|cpu|cuda`.
#pragma once

#include <string_view>

#include "kernels/ops.h"

namespace rpt {

// Number of usable GPUs (0 on a CPU-only build or a machine without a driver/GPU).
int gpu_count();

// "auto" picks the GPU when one is present and otherwise runs on the CPU, saying so on
// stderr; "cuda" without a GPU is an error naming the flag. `announce` prints the choice.
// The context comes with its own host-sync counter (kernels/host_sync.h).
OpContext make_context(std::string_view device, bool announce);

// Waits until every op enqueued on ctx has finished (a no-op on the CPU, where ops are
// synchronous): what a wall-clock timer around GPU work needs. Counted as a wait.
void synchronize(const OpContext& ctx);

}  // namespace rpt
