#include "model/weight_streaming.h"

#include "kernels/context.h"

namespace rpt {

void WeightStreamer::load(const SafetensorsFile& file, const ParameterEntry& entry, const Tensor& dst) {
    const SafetensorsEntry& e = file.expect_float(entry.name, entry.shape);
    bytes_read_ += e.end - e.begin;
    if (dst.device == DeviceKind::cpu) {
        file.read_f32(entry.name, entry.shape, dst.f32());  // converts in place, releases the pages
        return;
    }
    if (entry.numel == 0) return;
    if (e.dtype == "F32") {
        copy_from_host(dst, file.raw_data(e));
    } else if (e.dtype == "BF16") {
        const size_t bytes = size_t(entry.numel) * sizeof(uint16_t);
        if (device_staging_.bytes() < bytes) {
            device_staging_ = Buffer();  // free the smaller one first
            device_staging_ = Buffer(ctx_.device, bytes, "checkpoint staging");
        }
        const Tensor staged = device_staging_.view(DType::bf16, 0, {entry.numel});
        copy_from_host(staged, file.raw_data(e));
        ops::copy(ctx_, dst, staged);  // bf16 -> fp32 is exact
        synchronize(ctx_);             // the next tensor reuses the staging buffer
    } else {
        host_staging_.resize(size_t(entry.numel));
        file.read_f32(entry.name, entry.shape, host_staging_.data());
        copy_from_host(dst, host_staging_.data());
    }
    file.release_pages(e);
}

}  // namespace rpt
