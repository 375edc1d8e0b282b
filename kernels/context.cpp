#include "kernels/context.h"

#include "kernels/host_sync.h"

#include <cstdio>
#include <stdexcept>
#include <string>

#ifdef RPT_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace rpt {

int gpu_count() {
#ifdef RPT_WITH_CUDA
    int n = 0;
    // No driver or no device is not an error here: the CPU backend takes over.
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky error so later calls start clean
        return 0;
    }
    return n;
#else
    return 0;
#endif
}

OpContext make_context(std::string_view device, bool announce) {
    OpContext ctx;
    ctx.syncs = std::make_shared<HostSyncCounter>();  // this context's own count
    if (device == "cpu") return ctx;
    if (device != "auto" && device != "cuda")
        throw std::invalid_argument("--device must be auto, cpu or cuda, got '" + std::string(device) + "'");
    const int gpus = gpu_count();
    if (gpus == 0) {
        if (device == "cuda") {
#ifdef RPT_WITH_CUDA
            throw std::invalid_argument("--device cuda: no GPU is visible to this process");
#else
            throw std::invalid_argument("--device cuda: this build has no CUDA backend (rebuild with CUDA=1)");
#endif
        }
        if (announce) std::fprintf(stderr, "rpt: no GPU found, running on the CPU\n");
        return ctx;
    }
    // The CUDA kernels exist for the fp32 op set; model code picks them through the context.
    ctx.device = DeviceKind::cuda;
    if (announce) std::fprintf(stderr, "rpt: running on the GPU (%d visible)\n", gpus);
    return ctx;
}

void synchronize(const OpContext& ctx) {
    count_host_sync(ctx, HostSync::wait);
    if (ctx.device != DeviceKind::cuda) return;
#ifdef RPT_WITH_CUDA
    const cudaError_t status = cudaStreamSynchronize(static_cast<cudaStream_t>(ctx.stream));
    if (status != cudaSuccess)
        throw std::runtime_error(std::string("cudaStreamSynchronize: ") + cudaGetErrorString(status));
#endif
}

}  // namespace rpt
