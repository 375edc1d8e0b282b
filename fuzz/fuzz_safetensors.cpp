// libFuzzer target: the safetensors reader (header length, JSON header, offsets,
// dtypes, shapes) on arbitrary bytes. Each input is written to a file (the reader
// memory-maps a path) and opened; every tensor of a file that validates is converted
// to fp32, so the bounds the validation promises are exercised by real reads.
// A std::runtime_error is the expected answer to bad input; anything else (a crash,
// a sanitizer report, another exception type) is a finding.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/file_io.h"
#include "model/safetensors.h"

namespace {

// Tensors larger than this are not converted (keeps each run fast and small).
constexpr int64_t kMaxConvertElements = int64_t(1) << 20;

// One scratch file per fuzzing process, on tmpfs when there is one.
std::string scratch_path() {
    const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    return std::string(dir) + "/rpt_fuzz_safetensors_" + std::to_string(getpid()) + ".st";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string path = scratch_path();
    rpt::write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(data), size));
    try {
        const rpt::SafetensorsFile file = rpt::SafetensorsFile::open(path);
        std::vector<float> buffer;
        for (const rpt::SafetensorsEntry& e : file.entries()) {
            if (e.numel() > kMaxConvertElements) continue;
            if (e.dtype != "F32" && e.dtype != "BF16" && e.dtype != "F16") continue;
            buffer.resize(static_cast<size_t>(e.numel()));
            file.read_f32(e.name, e.shape, buffer.data());
        }
        (void)file.find("absent");
    } catch (const std::runtime_error&) {
        // rejected with a message: the intended behaviour
    }
    return 0;
}
