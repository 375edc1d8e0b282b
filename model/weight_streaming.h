// Loading parameters from mapped safetensors files, tensor by tensor, straight into the
// model's parameter buffer on its device: the peak is the parameters plus one tensor,
// never a whole-model host copy. On the CPU each tensor is converted (BF16/F16/F32 ->
// fp32) from the mapping into the parameters; on the GPU a BF16 tensor's raw bytes go
// to one tensor-sized device staging buffer and are widened there (ops::copy), F32 goes
// straight over, and F16 (no device kernel) is widened on the host first.
#pragma once

#include <cstddef>
#include <vector>

#include "kernels/buffer.h"
#include "kernels/ops.h"
#include "model/parameters.h"
#include "model/safetensors.h"

namespace rpt {

class WeightStreamer {
public:
    explicit WeightStreamer(const OpContext& ctx) : ctx_(ctx) {}

    // Parameter `entry` from `file` into dst ((numel) fp32 on the context's device),
    // names and shapes checked; the tensor's mapped pages are released afterwards.
    void load(const SafetensorsFile& file, const ParameterEntry& entry, const Tensor& dst);

    size_t bytes_read() const { return bytes_read_; }  // checkpoint bytes converted so far
    // The largest staging held (0 on the CPU): what loading adds to the parameters.
    size_t staging_bytes() const { return device_staging_.bytes() + host_staging_.size() * sizeof(float); }

private:
    OpContext ctx_;
    Buffer device_staging_;            // (largest BF16 tensor) bf16, on the GPU only
    std::vector<float> host_staging_;  // (largest F16 tensor) fp32, on the GPU only
    size_t bytes_read_ = 0;
};

}  // namespace rpt
