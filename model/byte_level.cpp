// GPT-2 bytes_to_unicode and its inverse (see byte_level.h).
#include "model/byte_level.h"

namespace rpt {

namespace {

// Mapped code points lie in [0, kMaxMappedCodepoint]: printable bytes keep their value
// (< 256), the other 68 bytes go to 256..323.
constexpr uint32_t kMaxMappedCodepoint = 0x100 + 68 - 1;
constexpr int16_t kNotMapped = -1;

bool is_printable_byte(int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct ByteTables {
    std::array<uint32_t, kNumBytes> to_cp{};
    std::array<int16_t, kMaxMappedCodepoint + 1> from_cp{};
    std::array<uint8_t, kNumBytes> order{};

    ByteTables() {
        from_cp.fill(kNotMapped);
        int next_shifted = 0;
        for (int b = 0; b < kNumBytes; ++b) {
            to_cp[b] = is_printable_byte(b) ? uint32_t(b) : uint32_t(0x100 + next_shifted++);
            from_cp[to_cp[b]] = int16_t(b);
        }
        // Order of mapped code points: walking code points upward lists every byte once.
        int k = 0;
        for (uint32_t cp = 0; cp <= kMaxMappedCodepoint; ++cp)
            if (from_cp[cp] != kNotMapped) order[k++] = uint8_t(from_cp[cp]);
    }
};

// Immutable after construction (C++11 guarantees thread-safe initialisation).
const ByteTables& tables() {
    static const ByteTables t;
    return t;
}

}  // namespace

uint32_t byte_to_codepoint(uint8_t b) { return tables().to_cp[b]; }

const std::array<uint8_t, kNumBytes>& gpt2_byte_order() { return tables().order; }

void append_mapped(std::string_view bytes, std::string* out) {
    const auto& to_cp = tables().to_cp;
    for (unsigned char c : bytes) {
        uint32_t cp = to_cp[c];
        if (cp < 0x80) {
            out->push_back(char(cp));
        } else {  // all mapped code points are < 0x800: two UTF-8 bytes
            out->push_back(char(0xC0 | (cp >> 6)));
            out->push_back(char(0x80 | (cp & 0x3F)));
        }
    }
}

std::string bytes_to_mapped(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    append_mapped(bytes, &out);
    return out;
}

bool mapped_to_bytes(std::string_view mapped, std::string* out) {
    const auto& from_cp = tables().from_cp;
    out->clear();
    out->reserve(mapped.size());
    for (size_t i = 0; i < mapped.size();) {
        unsigned char c0 = mapped[i];
        uint32_t cp;
        if (c0 < 0x80) {
            cp = c0;
            i += 1;
        } else if ((c0 & 0xE0) == 0xC0 && i + 1 < mapped.size() &&
                   (uint8_t(mapped[i + 1]) & 0xC0) == 0x80) {
            cp = (uint32_t(c0 & 0x1F) << 6) | (uint8_t(mapped[i + 1]) & 0x3F);
            i += 2;
        } else {
            return false;  // 3+ byte characters are never in the alphabet
        }
        if (cp > kMaxMappedCodepoint || from_cp[cp] == kNotMapped) return false;
        out->push_back(char(from_cp[cp]));
    }
    return true;
}

}  // namespace rpt
