// Byte-level BPE tokenizer, compatible with Hugging Face tokenizer.json as written for
// Qwen2 (and GPT-2): added/special tokens are split out of the raw text first
// (leftmost-longest, never normalised or merged); the rest is NFC-normalised, cut into
// pieces by the Split regex, each piece's bytes shown in the GPT-2 ByteLevel alphabet
// and merged by BPE rank. Decoding maps tokens back to raw bytes.
//
// Round trip: decode(encode(s)) == s for every byte string s that is already NFC,
// including invalid UTF-8 (invalid bytes skip normalisation and become pieces of their
// own). Valid but non-NFC text decodes to its NFC form.
//
// Supported tokenizer.json subset (anything else is a load error): normalizer NFC or
// null; pre_tokenizer Sequence[Split(Regex, Isolated), ByteLevel(use_regex=false)] or
// ByteLevel(use_regex=true, the GPT-2 regex); decoder ByteLevel or null; model BPE with
// all 256 byte tokens, no dropout, no subword prefix/suffix (ignore_merges honoured).
// Added tokens are always matched on the raw text (their "normalized" flag is written
// as false); single_word/lstrip/rstrip must be false. The post_processor is kept for
// save() but never applied: encode() adds no BOS/EOS.
//
// Thread safety: every const method may be called from many threads at once (no
// caches, no mutable members). add_special_token must not run concurrently with
// anything else.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/pretokenizer.h"

namespace rpt {

struct AddedToken {
    int32_t id = 0;
    std::string content;   // raw UTF-8, matched on the raw text
    bool special = true;   // e.g. skipped by "skip special tokens" displays
};

class Tokenizer {
 public:
    // Hugging Face tokenizer.json. Throws std::runtime_error "<source>: <field>: <why>"
    // for unreadable files, malformed JSON, missing fields, merges naming unknown tokens
    // and unsupported options.
    static Tokenizer load(const std::string& path);
    static Tokenizer from_json(const nlohmann::json& j, const std::string& source_name);

    // Writes tokenizer.json atomically (path.tmp, fsync, rename). Keys in Hugging Face
    // order, vocab by id, merges as "a b".
    void save(const std::string& path) const;
    std::string to_json_text() const;  // what save() writes
    nlohmann::json to_json() const;    // the same content as a JSON value

    std::vector<int32_t> encode(std::string_view text) const;
    // Raw bytes (may be invalid UTF-8 if the ids end inside a character). Throws
    // std::out_of_range for ids outside [0, vocab_size()).
    std::string decode(const std::vector<int32_t>& ids) const;
    // The raw bytes of one token (an added token: its content; an unused id: "").
    const std::string& token_bytes(int32_t id) const;
    // token_bytes for every id in [0, vocab_size()).
    const std::vector<std::string>& token_byte_table() const { return token_bytes_; }

    // Max id + 1 over vocab and added tokens.
    int32_t vocab_size() const { return int32_t(token_bytes_.size()); }
    // Id of an added token (by content) or of a vocab token (by its mapped string).
    std::optional<int32_t> token_id(std::string_view content) const;
    // Appends an added token (special) with id vocab_size(); returns the existing id if
    // `content` is already an added token. Content must be non-empty valid UTF-8.
    int32_t add_special_token(std::string content);
    const std::vector<AddedToken>& added_tokens() const { return added_; }
    bool is_added_token(int32_t id) const;

    // NFC + regex pieces of `text` (no added-token splitting), as raw bytes; for tests
    // and for the trainer.
    std::vector<std::string> pre_tokenize(std::string_view text) const;
    int32_t num_merges() const { return int32_t(merges_.size()); }

 private:
    Tokenizer() = default;

    struct Merge {
        int32_t rank;
        int32_t id;  // the merged token
    };
    // Where an added token starts in a text (npos: none).
    struct AddedMatch {
        size_t start = std::string_view::npos;
        size_t length = 0;
        int32_t id = -1;
    };
    struct BpeScratch;

    static uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
    const Merge* find_merge(int32_t a, int32_t b) const;
    AddedMatch find_added(std::string_view text, size_t from) const;
    void encode_segment(std::string_view segment, BpeScratch* scratch, std::vector<int32_t>* out) const;
    void bpe_piece(std::string_view piece, BpeScratch* scratch, std::vector<int32_t>* out) const;
    void rebuild_added_index();

    // Vocabulary (mapped form) and per-id data.
    std::unordered_map<std::string, int32_t> vocab_;
    std::vector<std::string> id_to_token_;  // mapped form; "" for ids not in the vocab
    std::vector<std::string> token_bytes_;  // raw bytes, vocab and added tokens
    int32_t byte_to_id_[256] = {};

    // Merges in rank order, and (left id, right id) -> rank and result.
    std::vector<std::pair<int32_t, int32_t>> merges_;
    std::unordered_map<uint64_t, Merge> merge_map_;
    bool ignore_merges_ = false;  // a piece that is a whole vocab token is not merged

    // Added tokens and, per first byte, their indices into added_, longest first.
    std::vector<AddedToken> added_;
    std::unordered_map<std::string, int32_t> added_by_content_;
    std::vector<std::vector<int32_t>> added_by_first_byte_;

    // Pre-processing.
    bool nfc_ = true;
    bool split_then_byte_level_ = true;  // false: ByteLevel(use_regex = true) alone
    std::optional<SplitRegex> split_;
    nlohmann::json post_processor_;  // kept verbatim for save(); not applied by encode()
};

}  // namespace rpt
