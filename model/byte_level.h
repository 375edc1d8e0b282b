// ByteLevel alphabet of GPT-2 style BPE: every byte 0..255 is shown as one printable
// Unicode character (printable Latin-1 bytes as themselves, the rest as U+0100 + n), so
// that vocab entries in tokenizer.json are readable strings. Token strings in a vocab
// are in this "mapped" form; the raw bytes of a token are recovered with mapped_to_bytes.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace rpt {

constexpr int kNumBytes = 256;

// The Unicode code point that byte `b` is shown as (GPT-2 bytes_to_unicode).
uint32_t byte_to_codepoint(uint8_t b);

// Bytes in "GPT-2 byte order": the order of their mapped code points. Vocabularies of
// GPT-2, Qwen2 and our trainer give token id k to the byte gpt2_byte_order()[k].
const std::array<uint8_t, kNumBytes>& gpt2_byte_order();

// Appends the mapped (UTF-8) form of `bytes` to `out`.
void append_mapped(std::string_view bytes, std::string* out);
std::string bytes_to_mapped(std::string_view bytes);

// Inverse of bytes_to_mapped. Returns false (leaving `out` unspecified) when `mapped`
// holds a character outside the ByteLevel alphabet.
bool mapped_to_bytes(std::string_view mapped, std::string* out);

}  // namespace rpt
