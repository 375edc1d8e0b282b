// libFuzzer target: the trainer_state.json reader (parse_training_state, the text half
// of load_training_state) on arbitrary bytes. A state that loads must hold a
// non-negative step and optimizer step count and an object of extras.
// std::runtime_error "FILE: reason" is the expected answer to bad input; anything else
// is a finding.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "model/trainer_state.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const rpt::TrainingStateFile f =
            rpt::parse_training_state(std::string_view(reinterpret_cast<const char*>(data), size), "trainer_state.json");
        if (f.state.step < 0 || f.optimizer_steps < 0 || !f.state.extra.is_object()) __builtin_trap();
    } catch (const std::runtime_error&) {
        // rejected with a message: the intended behaviour
    }
    return 0;
}
