// Byte-level BPE tokenizer, compatible with Hugging Face tokenizer.json as written for
// Qwen2 (and GPT-2): added/special tokens are split out of the text first (added_tokens.h:
// leftmost-longest, raw-text tokens before normalisation, normalised ones after it;
// never merged); the rest is NFC-normalised, cut into pieces by the Split regex, each
// piece's bytes shown in the GPT-2 ByteLevel alphabet and merged by BPE rank. Decoding
// maps tokens back to raw bytes as Hugging Face's ByteLevel decoder does.
//
// Round trip: decode(encode(s)) == s for every byte string s that is already NFC,
// including invalid UTF-8 (invalid bytes skip normalisation and become pieces of their
// own). Valid but non-NFC text decodes to its NFC form. Two exceptions follow Hugging
// Face: white space taken by an lstrip/rstrip added token is dropped, and an added
// token whose content is written wholly in ByteLevel characters decodes to the bytes
// those characters stand for ("Ġhi" decodes to " hi").
//
// Supported tokenizer.json subset (anything else is a load error): normalizer NFC or
// null; pre_tokenizer Sequence[Split(Regex, Isolated), ByteLevel(use_regex=false)] or
// ByteLevel(use_regex=true, the GPT-2 regex); decoder ByteLevel or null; model BPE with
// all 256 byte tokens, no dropout, no subword prefix/suffix (ignore_merges honoured),
// merges as "a b" strings or ["a", "b"] pairs. Vocab entries outside the ByteLevel
// alphabet (special tokens a trainer put in the vocab, e.g. "<｜User｜>") decode to their
// UTF-8 text. Added tokens keep every flag (special, normalized, lstrip, rstrip,
// single_word) and get their ids as tokenizers assigns them: the vocab id when the
// content is a vocab entry, otherwise the next id after the vocab (the file's "id" is
// checked to be an integer but not used, as in tokenizers); a repeated content updates
// the flags; empty contents are ignored. The post_processor is kept for save() but never
// applied: encode() adds no BOS/EOS.
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

#include "model/added_tokens.h"
#include "model/pretokenizer.h"

namespace rpt {

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
    // decode for ids a model sampled: an id past the vocabulary (a head padded beyond
    // the tokenizer, as Qwen2's is) has no text and is skipped instead of thrown on.
    std::string decode_sampled(const std::vector<int32_t>& ids) const;
    // The raw bytes of one token (an added token: its content, unless written wholly in
    // ByteLevel characters, see above; an unused id: "").
    const std::string& token_bytes(int32_t id) const;
    // token_bytes for every id in [0, vocab_size()).
    const std::vector<std::string>& token_byte_table() const { return token_bytes_; }

    // Max id + 1 over vocab and added tokens.
    int32_t vocab_size() const { return int32_t(token_bytes_.size()); }
    // Id of an added token (by content) or of a vocab token (by its mapped string).
    std::optional<int32_t> token_id(std::string_view content) const;
    // Adds a special token (matched on the raw text, no stripping) with the id
    // tokenizers would give it: the vocab id if `content` is a vocab entry, else the
    // next id after the vocab and the added tokens (vocab_size() for a vocab without
    // holes). Returns the existing id if `content` is already an added token. Content
    // must be non-empty valid UTF-8; throws std::invalid_argument otherwise, or if that
    // id is taken by another vocab token.
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
    struct BpeScratch;

    static uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
    const Merge* find_merge(int32_t a, int32_t b) const;
    int32_t next_added_id() const;
    void encode_segment(std::string_view segment, BpeScratch* scratch, std::vector<int32_t>* out) const;
    void encode_normalized(std::string_view text, BpeScratch* scratch, std::vector<int32_t>* out) const;
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

    // Added tokens, by content (index into added_), and their matchers: the tokens
    // matched on the raw text, and the normalised ones (their content normalised).
    std::vector<AddedToken> added_;
    std::unordered_map<std::string, size_t> added_by_content_;
    AddedTokenMatcher raw_added_, normalized_added_;
    int64_t model_vocab_entries_ = 0;  // entries of model.vocab: where new added ids start
    int64_t added_outside_vocab_ = 0;  // added tokens that are not vocab entries

    // Pre-processing.
    bool nfc_ = true;
    bool split_then_byte_level_ = true;  // false: ByteLevel(use_regex = true) alone
    std::optional<SplitRegex> split_;
    nlohmann::json post_processor_;  // kept verbatim for save(); not applied by encode()
};

}  // namespace rpt
