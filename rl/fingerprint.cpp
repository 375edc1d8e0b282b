#include "rl/fingerprint.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

#include <fmt/format.h>

namespace rpt {

uint64_t fnv1a64(std::string_view bytes) {
    constexpr uint64_t kOffsetBasis = 0xcbf29ce484222325ull, kPrime = 0x100000001b3ull;
    uint64_t hash = kOffsetBasis;
    for (const char c : bytes) {
        hash ^= uint64_t(static_cast<unsigned char>(c));
        hash *= kPrime;
    }
    return hash;
}

std::string hex64(uint64_t value) { return fmt::format("{:016x}", value); }

FileFingerprint fingerprint_file(const std::string& path) {
    namespace fs = std::filesystem;
    FileFingerprint f;
    std::error_code ec;
    f.path = fs::absolute(path, ec).lexically_normal().string();
    if (ec) f.path = path;
    const uintmax_t size = fs::file_size(path, ec);
    std::ifstream in(path, std::ios::binary);
    if (ec || !in) return f;
    std::vector<char> head(size_t(std::min<uintmax_t>(size, kFingerprintHeadBytes)));
    in.read(head.data(), std::streamsize(head.size()));
    if (in.gcount() != std::streamsize(head.size())) return f;
    f.readable = true;
    f.bytes = uint64_t(size);
    f.head_hash = fnv1a64(std::string_view(head.data(), head.size()));
    return f;
}

}  // namespace rpt
