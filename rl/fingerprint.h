// Fingerprints of a run's inputs, recorded in its checkpoints so that a resume can tell
// whether it reads the same corpus, positions and tokenizer: FNV-1a (64-bit) over the
// bytes, and for a file its size plus the hash of its first MiB (a multi-gigabyte corpus
// is not re-read at every start; appending to it changes the size).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rpt {

constexpr size_t kFingerprintHeadBytes = size_t(1) << 20;

// FNV-1a, 64-bit (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
uint64_t fnv1a64(std::string_view bytes);
// 16 lowercase hex digits.
std::string hex64(uint64_t value);

struct FileFingerprint {
    std::string path;        // absolute, as found
    bool readable = false;   // false: missing or unreadable (bytes and head_hash are 0)
    uint64_t bytes = 0;
    uint64_t head_hash = 0;  // fnv1a64 of the first kFingerprintHeadBytes bytes
};

// Never throws: a file that cannot be read is reported as such, for the caller to name.
FileFingerprint fingerprint_file(const std::string& path);

}  // namespace rpt
