// libFuzzer target: the sharded-checkpoint index reader (parse_safetensors_index, for
// model.safetensors.index.json) on arbitrary bytes. Every shard it accepts must be a
// plain file name: never empty, ".", "..", or holding '/', '\' or NUL, so no index can
// point outside its checkpoint directory. std::runtime_error "FILE: reason" is the
// expected answer to bad input; anything else is a finding.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "model/safetensors_index.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const auto map = rpt::parse_safetensors_index(std::string_view(reinterpret_cast<const char*>(data), size),
                                                      "model.safetensors.index.json");
        for (const auto& [name, file] : map)
            if (file.empty() || file == "." || file == ".." ||
                file.find_first_of(std::string("/\\\0", 3)) != std::string::npos)
                __builtin_trap();
    } catch (const std::runtime_error&) {
        // rejected with a message: the intended behaviour
    }
    return 0;
}
