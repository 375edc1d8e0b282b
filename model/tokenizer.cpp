// Byte-level BPE tokenizer and its Hugging Face tokenizer.json reader/writer; see
// tokenizer.h for the pipeline and guarantees.
#include "model/tokenizer.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "model/byte_level.h"
#include "model/json_depth.h"

namespace rpt {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

namespace {

constexpr int64_t kMaxTokenId = (int64_t(1) << 30) - 1;  // far above any real vocab

[[noreturn]] void fail(const std::string& source, const std::string& field, const std::string& why) {
    throw std::runtime_error(source + ": " + field + ": " + why);
}

// The member `key` of object `obj` (called `field` in messages); throws if absent.
const json& require(const json& obj, const char* key, const std::string& field, const std::string& source) {
    if (!obj.is_object()) fail(source, field, "parent is not a JSON object");
    auto it = obj.find(key);
    if (it == obj.end()) fail(source, field, "missing");
    return *it;
}

// An optional member; null when absent.
json optional_member(const json& obj, const char* key) {
    auto it = obj.find(key);
    return it == obj.end() ? json() : *it;
}

std::string type_of(const json& obj, const std::string& field, const std::string& source) {
    const json& t = require(obj, "type", field + ".type", source);
    if (!t.is_string()) fail(source, field + ".type", "not a string");
    return t.get<std::string>();
}

// A boolean option that we only support with value `supported` (absent counts as it).
void require_bool(const json& obj, const char* key, bool supported, const std::string& field,
                  const std::string& source) {
    json v = optional_member(obj, key);
    if (v.is_null()) return;
    if (!v.is_boolean()) fail(source, field, "not a boolean");
    if (v.get<bool>() != supported)
        fail(source, field, std::string("only ") + (supported ? "true" : "false") + " is supported");
}

// The ByteLevel pre-tokenizer / post-processor / decoder object of Hugging Face.
ordered_json byte_level_json(bool trim_offsets, bool use_regex) {
    ordered_json o;
    o["type"] = "ByteLevel";
    o["add_prefix_space"] = false;
    o["trim_offsets"] = trim_offsets;
    o["use_regex"] = use_regex;
    return o;
}

std::string json_quoted(const std::string& s) { return json(s).dump(); }

// An optional boolean flag (absent or null: `fallback`).
bool flag(const json& obj, const char* key, bool fallback, const std::string& field, const std::string& source) {
    const json v = optional_member(obj, key);
    if (v.is_null()) return fallback;
    if (!v.is_boolean()) fail(source, field + "." + key, "not a boolean");
    return v.get<bool>();
}

// What Hugging Face's ByteLevel decoder makes of one token string: the bytes its
// characters stand for when all are in the ByteLevel alphabet, else its UTF-8 text.
std::string decoded_bytes(const std::string& token) {
    std::string bytes;
    return mapped_to_bytes(token, &bytes) ? bytes : token;
}

}  // namespace

// Per-encode() buffers, reused across pieces so that merging allocates nothing.
struct Tokenizer::BpeScratch {
    struct Candidate {
        int32_t rank, left, right;  // a mergeable adjacent pair at symbols left, right
    };
    std::vector<AddedSplit> raw_splits, normalized_splits;
    std::vector<std::string_view> pieces;
    std::vector<int32_t> ids, prev, next;
    std::vector<Candidate> heap;
    std::string mapped;
};

// ---------------------------------------------------------------- loading

Tokenizer Tokenizer::load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(path, "file", "cannot open for reading");
    std::stringstream buf;
    buf << in.rdbuf();
    json j;
    try {
        j = json::parse(buf.str());
    } catch (const json::exception& e) {
        fail(path, "json", e.what());
    }
    return from_json(j, path);
}

Tokenizer Tokenizer::from_json(const json& j, const std::string& src) {
    if (!j.is_object()) fail(src, "json", "top level is not an object");
    // Values are copied and kept (post_processor), so bound their nesting first.
    if (!json_depth_within(j, kMaxJsonDepth))
        fail(src, "json", "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    Tokenizer t;

    // --- model: vocab
    const json& model = require(j, "model", "model", src);
    if (!model.is_object()) fail(src, "model", "not an object");
    if (model.contains("type") && type_of(model, "model", src) != "BPE")
        fail(src, "model.type", "unsupported model '" + type_of(model, "model", src) + "' (only BPE)");
    const json& vocab = require(model, "vocab", "model.vocab", src);
    if (!vocab.is_object()) fail(src, "model.vocab", "not an object");
    int64_t max_id = -1;
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
        if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
            it.value().get<int64_t>() > kMaxTokenId)
            fail(src, "model.vocab", "token '" + it.key() + "' has no valid id");
        max_id = std::max(max_id, it.value().get<int64_t>());
    }
    t.id_to_token_.assign(size_t(max_id + 1), std::string());
    t.token_bytes_.assign(size_t(max_id + 1), std::string());
    std::vector<bool> used(size_t(max_id + 1), false);
    t.vocab_.reserve(vocab.size());
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
        const auto id = it.value().get<int32_t>();
        if (used[size_t(id)]) fail(src, "model.vocab", "id " + std::to_string(id) + " is used twice");
        used[size_t(id)] = true;
        // Entries outside the alphabet (special tokens a trainer put in the vocab) can
        // only come from added-token matches; they decode to their text, as in HF.
        t.token_bytes_[size_t(id)] = decoded_bytes(it.key());
        t.vocab_.emplace(it.key(), id);
        t.id_to_token_[size_t(id)] = it.key();
    }
    for (int b = 0; b < kNumBytes; ++b) {
        auto it = t.vocab_.find(bytes_to_mapped(std::string(1, char(b))));
        if (it == t.vocab_.end())
            fail(src, "model.vocab", "no token for byte " + std::to_string(b) + " (byte-level BPE needs all 256)");
        t.byte_to_id_[b] = it->second;
    }

    // --- model: merges, as "a b" or ["a", "b"]
    const json& merges = require(model, "merges", "model.merges", src);
    if (!merges.is_array()) fail(src, "model.merges", "not an array");
    t.merges_.reserve(merges.size());
    t.merge_map_.reserve(merges.size());
    for (size_t r = 0; r < merges.size(); ++r) {
        const std::string field = "model.merges[" + std::to_string(r) + "]";
        const json& m = merges[r];
        std::string a, b;
        if (m.is_string()) {
            const std::string& s = m.get_ref<const std::string&>();
            const size_t sp = s.find(' ');
            if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
                fail(src, field, "expected \"a b\", got " + json_quoted(s));
            a = s.substr(0, sp);
            b = s.substr(sp + 1);
        } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
            a = m[0].get<std::string>();
            b = m[1].get<std::string>();
        } else {
            fail(src, field, "expected \"a b\" or [\"a\", \"b\"]");
        }
        auto ia = t.vocab_.find(a), ib = t.vocab_.find(b), iab = t.vocab_.find(a + b);
        if (ia == t.vocab_.end()) fail(src, field, "unknown token " + json_quoted(a));
        if (ib == t.vocab_.end()) fail(src, field, "unknown token " + json_quoted(b));
        if (iab == t.vocab_.end()) fail(src, field, "merged token " + json_quoted(a + b) + " is not in the vocab");
        t.merges_.emplace_back(ia->second, ib->second);
        // emplace keeps the first (lowest-rank) entry if a file lists a pair twice.
        t.merge_map_.emplace(pair_key(ia->second, ib->second), Merge{int32_t(r), iab->second});
    }

    // --- model: options
    const json dropout = optional_member(model, "dropout");
    if (!dropout.is_null() && !(dropout.is_number() && dropout.get<double>() == 0.0))
        fail(src, "model.dropout", "BPE dropout is not supported");
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
        const json v = optional_member(model, key);
        if (!v.is_null() && !(v.is_string() && v.get<std::string>().empty()))
            fail(src, std::string("model.") + key, "only null or \"\" is supported");
    }
    const json ignore_merges = optional_member(model, "ignore_merges");
    if (!ignore_merges.is_null()) {
        if (!ignore_merges.is_boolean()) fail(src, "model.ignore_merges", "not a boolean");
        t.ignore_merges_ = ignore_merges.get<bool>();
    }

    // --- added tokens, with ids assigned as tokenizers assigns them (see tokenizer.h)
    t.model_vocab_entries_ = int64_t(vocab.size());
    const json added = optional_member(j, "added_tokens");
    if (!added.is_null() && !added.is_array()) fail(src, "added_tokens", "not an array");
    for (size_t i = 0; i < added.size(); ++i) {
        const std::string field = "added_tokens[" + std::to_string(i) + "]";
        const json& a = added[i];
        const json& id_json = require(a, "id", field + ".id", src);
        const json& content = require(a, "content", field + ".content", src);
        if (!id_json.is_number_integer()) fail(src, field + ".id", "not an integer");
        if (!content.is_string()) fail(src, field + ".content", "not a string");
        AddedToken tok;
        tok.content = content.get<std::string>();
        tok.special = flag(a, "special", false, field, src);
        tok.single_word = flag(a, "single_word", false, field, src);
        tok.lstrip = flag(a, "lstrip", false, field, src);
        tok.rstrip = flag(a, "rstrip", false, field, src);
        tok.normalized = flag(a, "normalized", !tok.special, field, src);  // tokenizers' default
        if (tok.content.empty()) continue;  // can never match; tokenizers skips it too
        if (auto it = t.added_by_content_.find(tok.content); it != t.added_by_content_.end()) {
            tok.id = t.added_[it->second].id;  // listed again: the last flags win
            t.added_[it->second] = std::move(tok);
            continue;
        }
        const auto in_vocab = t.vocab_.find(tok.content);
        const int64_t id = in_vocab != t.vocab_.end() ? in_vocab->second : t.next_added_id();
        if (id > kMaxTokenId) fail(src, field, "too many added tokens");
        if (in_vocab == t.vocab_.end()) t.added_outside_vocab_++;
        tok.id = int32_t(id);
        if (size_t(id) >= t.token_bytes_.size()) t.token_bytes_.resize(size_t(id) + 1);
        t.token_bytes_[size_t(id)] = decoded_bytes(tok.content);
        t.added_by_content_.emplace(tok.content, t.added_.size());
        t.added_.push_back(std::move(tok));
    }

    // --- normalizer: NFC or none
    const json norm = optional_member(j, "normalizer");
    if (norm.is_null()) {
        t.nfc_ = false;
    } else {
        const std::string type = type_of(norm, "normalizer", src);
        if (type != "NFC") fail(src, "normalizer.type", "unsupported '" + type + "' (only NFC or null)");
        t.nfc_ = true;
    }

    // --- pre_tokenizer: Sequence[Split(Regex, Isolated), ByteLevel(use_regex=false)]
    //     or ByteLevel alone (use_regex=true: the GPT-2 regex).
    const json& pre = require(j, "pre_tokenizer", "pre_tokenizer", src);
    if (pre.is_null()) fail(src, "pre_tokenizer", "null is not supported (byte-level BPE needs ByteLevel)");
    const std::string pre_type = type_of(pre, "pre_tokenizer", src);
    auto check_byte_level = [&](const json& bl, const std::string& field) {
        if (type_of(bl, field, src) != "ByteLevel") fail(src, field + ".type", "expected ByteLevel");
        require_bool(bl, "add_prefix_space", false, field + ".add_prefix_space", src);
    };
    if (pre_type == "Sequence") {
        const json& seq = require(pre, "pretokenizers", "pre_tokenizer.pretokenizers", src);
        if (!seq.is_array() || seq.size() != 2)
            fail(src, "pre_tokenizer.pretokenizers", "expected [Split, ByteLevel]");
        const std::string f0 = "pre_tokenizer.pretokenizers[0]", f1 = "pre_tokenizer.pretokenizers[1]";
        if (type_of(seq[0], f0, src) != "Split") fail(src, f0 + ".type", "expected Split");
        const json& pattern = require(seq[0], "pattern", f0 + ".pattern", src);
        const json regex = pattern.is_object() ? optional_member(pattern, "Regex") : json();
        if (!regex.is_string()) fail(src, f0 + ".pattern", "expected {\"Regex\": \"...\"}");
        const json behavior = optional_member(seq[0], "behavior");
        if (!behavior.is_string() || behavior.get<std::string>() != "Isolated")
            fail(src, f0 + ".behavior", "only \"Isolated\" is supported");
        require_bool(seq[0], "invert", false, f0 + ".invert", src);
        check_byte_level(seq[1], f1);
        require_bool(seq[1], "use_regex", false, f1 + ".use_regex", src);
        try {
            t.split_.emplace(regex.get<std::string>());
        } catch (const std::runtime_error& e) {
            fail(src, f0 + ".pattern.Regex", e.what());
        }
        t.split_then_byte_level_ = true;
    } else if (pre_type == "ByteLevel") {
        check_byte_level(pre, "pre_tokenizer");
        const json use_regex = optional_member(pre, "use_regex");
        if (use_regex.is_null() || use_regex.get<bool>()) t.split_.emplace(kGpt2SplitPattern);
        t.split_then_byte_level_ = false;
    } else {
        fail(src, "pre_tokenizer.type", "unsupported '" + pre_type + "' (expected Sequence[Split, ByteLevel] or ByteLevel)");
    }

    // --- decoder: ByteLevel (or null); post_processor: kept as is.
    const json dec = optional_member(j, "decoder");
    if (!dec.is_null() && type_of(dec, "decoder", src) != "ByteLevel")
        fail(src, "decoder.type", "only ByteLevel is supported");
    t.post_processor_ = optional_member(j, "post_processor");
    t.rebuild_added_index();  // after the normalizer: normalised tokens are matched NFC'd
    return t;
}

void Tokenizer::rebuild_added_index() {
    raw_added_ = AddedTokenMatcher();
    normalized_added_ = AddedTokenMatcher();
    for (const AddedToken& a : added_) {
        if (a.normalized) normalized_added_.add(nfc_ ? nfc_normalize(a.content) : a.content, a);
        else raw_added_.add(a.content, a);
    }
}

// The id tokenizers gives a new added token that is not a vocab entry: the vocab's
// entry count plus the number of such tokens before it.
int32_t Tokenizer::next_added_id() const {
    return int32_t(std::min<int64_t>(model_vocab_entries_ + added_outside_vocab_, kMaxTokenId + 1));
}

// ---------------------------------------------------------------- saving

std::string Tokenizer::to_json_text() const {
    ordered_json pre;
    if (split_then_byte_level_) {
        ordered_json split;
        split["type"] = "Split";
        split["pattern"]["Regex"] = split_->pattern();
        split["behavior"] = "Isolated";
        split["invert"] = false;
        pre["type"] = "Sequence";
        pre["pretokenizers"] = ordered_json::array({split, byte_level_json(false, false)});
    } else {
        pre = byte_level_json(true, split_.has_value());
    }
    ordered_json added = ordered_json::array();
    for (const AddedToken& a : added_) {
        ordered_json o;
        o["id"] = a.id;
        o["content"] = a.content;
        o["single_word"] = a.single_word;
        o["lstrip"] = a.lstrip;
        o["rstrip"] = a.rstrip;
        o["normalized"] = a.normalized;
        o["special"] = a.special;
        added.push_back(o);
    }
    ordered_json normalizer;
    if (nfc_) normalizer["type"] = "NFC";

    // Hugging Face's key order; vocab by id and one merge per line, built by hand
    // because ordered_json inserts in O(n) and vocabs have 150k entries.
    std::string out;
    out.reserve(id_to_token_.size() * 24 + merges_.size() * 24 + 4096);
    out += "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n";
    out += "  \"added_tokens\": [";
    for (size_t i = 0; i < added.size(); ++i) out += (i ? ",\n    " : "\n    ") + added[i].dump();
    out += added.empty() ? "],\n" : "\n  ],\n";
    out += "  \"normalizer\": " + normalizer.dump() + ",\n";
    out += "  \"pre_tokenizer\": " + pre.dump() + ",\n";
    out += "  \"post_processor\": " + post_processor_.dump() + ",\n";
    out += "  \"decoder\": " + byte_level_json(false, false).dump() + ",\n";
    out += "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n";
    out += "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n";
    out += "    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n";
    out += std::string("    \"ignore_merges\": ") + (ignore_merges_ ? "true" : "false") + ",\n";
    out += "    \"vocab\": {";
    bool first = true;
    for (size_t id = 0; id < id_to_token_.size(); ++id) {
        if (id_to_token_[id].empty()) continue;
        out += first ? "\n      " : ",\n      ";
        first = false;
        out += json_quoted(id_to_token_[id]) + ": " + std::to_string(id);
    }
    out += first ? "},\n" : "\n    },\n";
    out += "    \"merges\": [";
    for (size_t r = 0; r < merges_.size(); ++r) {
        out += r ? ",\n      " : "\n      ";
        out += json_quoted(id_to_token_[size_t(merges_[r].first)] + " " + id_to_token_[size_t(merges_[r].second)]);
    }
    out += merges_.empty() ? "]\n" : "\n    ]\n";
    out += "  }\n}\n";
    return out;
}

json Tokenizer::to_json() const { return json::parse(to_json_text()); }

void Tokenizer::save(const std::string& path) const {
    const std::string text = to_json_text();
    const std::string tmp = path + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (f == nullptr) fail(tmp, "file", std::string("cannot open for writing: ") + std::strerror(errno));
    const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size() && std::fflush(f) == 0 &&
                    ::fsync(fileno(f)) == 0;
    const int saved_errno = errno;
    if (std::fclose(f) != 0 || !ok) {
        std::remove(tmp.c_str());
        fail(tmp, "file", std::string("write failed: ") + std::strerror(saved_errno));
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
        fail(path, "file", std::string("rename failed: ") + std::strerror(errno));
}

// ---------------------------------------------------------------- lookups

const std::string& Tokenizer::token_bytes(int32_t id) const {
    if (id < 0 || id >= vocab_size())
        throw std::out_of_range("token id " + std::to_string(id) + " outside [0, " +
                                std::to_string(vocab_size()) + ")");
    return token_bytes_[size_t(id)];
}

std::optional<int32_t> Tokenizer::token_id(std::string_view content) const {
    const std::string key(content);
    if (auto it = added_by_content_.find(key); it != added_by_content_.end()) return added_[it->second].id;
    if (auto it = vocab_.find(key); it != vocab_.end()) return it->second;
    return std::nullopt;
}

bool Tokenizer::is_added_token(int32_t id) const {
    for (const AddedToken& a : added_)
        if (a.id == id) return true;
    return false;
}

int32_t Tokenizer::add_special_token(std::string content) {
    if (auto it = added_by_content_.find(content); it != added_by_content_.end()) return added_[it->second].id;
    bool valid = !content.empty();
    for (size_t i = 0; valid && i < content.size();) {
        const int len = utf8_char_length(content, i);
        valid = len > 0;
        i += size_t(len);
    }
    if (!valid) throw std::invalid_argument("add_special_token: content must be non-empty valid UTF-8");
    const auto in_vocab = vocab_.find(content);
    const int32_t id = in_vocab != vocab_.end() ? in_vocab->second : next_added_id();
    if (in_vocab == vocab_.end() && size_t(id) < id_to_token_.size() && !id_to_token_[size_t(id)].empty())
        throw std::invalid_argument("add_special_token: id " + std::to_string(id) + " for " + json_quoted(content) +
                                    " is vocab token " + json_quoted(id_to_token_[size_t(id)]));
    if (id > kMaxTokenId) throw std::invalid_argument("add_special_token: too many tokens");
    if (in_vocab == vocab_.end()) added_outside_vocab_++;
    if (size_t(id) >= token_bytes_.size()) token_bytes_.resize(size_t(id) + 1);
    token_bytes_[size_t(id)] = decoded_bytes(content);
    AddedToken tok;
    tok.id = id;
    tok.content = std::move(content);
    tok.special = true;
    tok.normalized = false;
    added_by_content_.emplace(tok.content, added_.size());
    added_.push_back(std::move(tok));
    rebuild_added_index();
    return id;
}

const Tokenizer::Merge* Tokenizer::find_merge(int32_t a, int32_t b) const {
    auto it = merge_map_.find(pair_key(a, b));
    return it == merge_map_.end() ? nullptr : &it->second;
}

// ---------------------------------------------------------------- encoding

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 16);
    BpeScratch scratch;
    raw_added_.split(text, &scratch.raw_splits);
    for (const AddedSplit& s : scratch.raw_splits) {
        if (s.id >= 0) out.push_back(s.id);
        else encode_segment(text.substr(s.begin, s.end - s.begin), &scratch, &out);
    }
    return out;
}

// A piece of raw text between added tokens: normalised as a whole, then split again at
// the normalised added tokens.
void Tokenizer::encode_segment(std::string_view segment, BpeScratch* s, std::vector<int32_t>* out) const {
    std::string normalized;
    if (nfc_) {
        normalized = nfc_normalize(segment);
        segment = normalized;
    }
    if (normalized_added_.empty()) {
        encode_normalized(segment, s, out);
        return;
    }
    normalized_added_.split(segment, &s->normalized_splits);
    for (const AddedSplit& n : s->normalized_splits) {
        if (n.id >= 0) out->push_back(n.id);
        else encode_normalized(segment.substr(n.begin, n.end - n.begin), s, out);
    }
}

// Normalised text without added tokens: regex pieces, each merged by BPE.
void Tokenizer::encode_normalized(std::string_view text, BpeScratch* s, std::vector<int32_t>* out) const {
    s->pieces.clear();
    if (split_) split_->split(text, &s->pieces);
    else s->pieces.push_back(text);
    for (std::string_view piece : s->pieces) bpe_piece(piece, s, out);
}

// Merges the bytes of one piece, lowest rank first and, among equal ranks (the same
// pair at several places), leftmost first, as Hugging Face does. Symbols form a linked
// list over byte positions; a merge keeps the left symbol and kills the right one. The
// heap holds candidate pairs, re-validated when popped since merges around them may
// have changed them.
void Tokenizer::bpe_piece(std::string_view piece, BpeScratch* s, std::vector<int32_t>* out) const {
    const int32_t n = int32_t(piece.size());
    if (n == 0) return;
    if (n == 1) {
        out->push_back(byte_to_id_[uint8_t(piece[0])]);
        return;
    }
    if (ignore_merges_) {
        s->mapped.clear();
        append_mapped(piece, &s->mapped);
        if (auto it = vocab_.find(s->mapped); it != vocab_.end()) {
            out->push_back(it->second);
            return;
        }
    }
    constexpr int32_t kDead = -1;
    auto& ids = s->ids;
    auto& prev = s->prev;
    auto& next = s->next;
    auto& heap = s->heap;
    ids.resize(size_t(n));
    prev.resize(size_t(n));
    next.resize(size_t(n));
    heap.clear();
    // Min-heap on (rank, left position).
    auto later = [](const BpeScratch::Candidate& x, const BpeScratch::Candidate& y) {
        return x.rank != y.rank ? x.rank > y.rank : x.left > y.left;
    };
    auto push = [&](int32_t left, int32_t right) {
        if (const Merge* m = find_merge(ids[size_t(left)], ids[size_t(right)])) {
            heap.push_back({m->rank, left, right});
            std::push_heap(heap.begin(), heap.end(), later);
        }
    };
    for (int32_t i = 0; i < n; ++i) {
        ids[size_t(i)] = byte_to_id_[uint8_t(piece[size_t(i)])];
        prev[size_t(i)] = i - 1;
        next[size_t(i)] = i + 1;
    }
    for (int32_t i = 0; i + 1 < n; ++i)
        if (const Merge* m = find_merge(ids[size_t(i)], ids[size_t(i + 1)])) heap.push_back({m->rank, i, i + 1});
    std::make_heap(heap.begin(), heap.end(), later);

    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), later);
        const BpeScratch::Candidate c = heap.back();
        heap.pop_back();
        const auto l = size_t(c.left), r = size_t(c.right);
        if (ids[l] == kDead || next[l] != c.right) continue;  // stale: a neighbour merged
        const Merge* m = find_merge(ids[l], ids[r]);
        if (m == nullptr || m->rank != c.rank) continue;      // stale: the pair changed
        ids[l] = m->id;
        ids[r] = kDead;
        next[l] = next[r];
        if (next[l] < n) prev[size_t(next[l])] = c.left;
        if (prev[l] >= 0) push(prev[l], c.left);
        if (next[l] < n) push(c.left, next[l]);
    }
    for (int32_t i = 0; i < n; i = next[size_t(i)]) out->push_back(ids[size_t(i)]);
}

// ---------------------------------------------------------------- decoding

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
    std::string out;
    for (int32_t id : ids) out += token_bytes(id);
    return out;
}

std::string Tokenizer::decode_sampled(const std::vector<int32_t>& ids) const {
    std::string out;
    for (int32_t id : ids)
        if (id >= 0 && id < vocab_size()) out += token_bytes_[size_t(id)];
    return out;
}

std::vector<std::string> Tokenizer::pre_tokenize(std::string_view text) const {
    const std::string normalized = nfc_ ? nfc_normalize(text) : std::string(text);
    std::vector<std::string_view> pieces;
    if (split_) split_->split(normalized, &pieces);
    else if (!normalized.empty()) pieces.push_back(normalized);
    return std::vector<std::string>(pieces.begin(), pieces.end());
}

}  // namespace rpt
