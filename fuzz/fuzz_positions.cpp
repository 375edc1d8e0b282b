// libFuzzer target: the positions file reader (read_positions: `rpt filter`'s output as
// `rpt train` and `rpt eval` read it) on arbitrary bytes. Every record read must hold
// doc >= 0, pos >= 1 and a finite entropy. std::runtime_error "FILE:LINE: reason" is
// the expected answer to bad input; anything else is a finding.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

#include "rl/positions.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    try {
        for (const rpt::ScoredPosition& p : rpt::read_positions(in, "positions.jsonl"))
            if (p.doc < 0 || p.position < 1 || !std::isfinite(p.entropy)) __builtin_trap();
    } catch (const std::runtime_error&) {
        // rejected with a message: the intended behaviour
    }
    return 0;
}
