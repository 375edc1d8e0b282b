// Byte-level BPE training with incremental pair counts (see bpe_trainer.h). Distinct
// pieces ("words") are counted once; a pair -> words index means each merge only
// revisits the words that contain the pair, and a lazy max-heap picks the next pair.
#include "model/bpe_trainer.h"

#include <algorithm>
#include <cstdint>
#include <queue>
#include <stdexcept>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "model/byte_level.h"
#include "model/pretokenizer.h"

namespace rpt {

namespace {

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
int32_t pair_left(uint64_t k) { return int32_t(k >> 32); }
int32_t pair_right(uint64_t k) { return int32_t(k & 0xFFFFFFFFu); }

struct Word {
    std::vector<int32_t> symbols;
    int64_t count = 0;
};

// A heap entry: the count a pair had when pushed (stale if it differs from now).
struct Candidate {
    int64_t count;
    uint64_t pair;
};
// Highest count first; ties: lowest (left, right) ids, i.e. lowest pair key.
struct CandidateOrder {
    bool operator()(const Candidate& x, const Candidate& y) const {
        return x.count != y.count ? x.count < y.count : x.pair > y.pair;
    }
};

// Cuts the special tokens (leftmost-longest) out of `text`; calls f on each remaining
// non-empty segment.
template <class F>
void for_each_segment(std::string_view text, const std::vector<std::string>& specials, F&& f) {
    std::vector<size_t> next(specials.size(), 0);  // next occurrence at or after `pos`
    for (size_t i = 0; i < specials.size(); ++i) next[i] = text.find(specials[i]);
    size_t pos = 0;
    while (true) {
        size_t best = std::string_view::npos, best_len = 0;
        for (size_t i = 0; i < specials.size(); ++i) {
            if (next[i] != std::string_view::npos && next[i] < pos) next[i] = text.find(specials[i], pos);
            if (next[i] < best || (next[i] == best && best != std::string_view::npos && specials[i].size() > best_len)) {
                best = next[i];
                best_len = specials[i].size();
            }
        }
        const size_t end = std::min(best, text.size());
        if (end > pos) f(text.substr(pos, end - pos));
        if (best == std::string_view::npos) return;
        pos = best + best_len;
    }
}

}  // namespace

Tokenizer train_bpe(const std::vector<std::string>& texts, int vocab_size,
                    const std::vector<std::string>& special_tokens) {
    const int num_special = int(special_tokens.size());
    if (vocab_size < kNumBytes + num_special)
        throw std::invalid_argument("train_bpe: vocab_size " + std::to_string(vocab_size) +
                                    " < 256 bytes + " + std::to_string(num_special) + " special tokens");
    for (size_t i = 0; i < special_tokens.size(); ++i) {
        const std::string& s = special_tokens[i];
        bool valid = !s.empty();
        for (size_t k = 0; valid && k < s.size();) {
            const int len = utf8_char_length(s, k);
            valid = len > 0;
            k += size_t(len);
        }
        if (!valid) throw std::invalid_argument("train_bpe: special token " + std::to_string(i) + " is empty or not UTF-8");
        if (std::count(special_tokens.begin(), special_tokens.end(), s) > 1)
            throw std::invalid_argument("train_bpe: special token '" + s + "' is repeated");
    }
    const int target_bpe = vocab_size - num_special;

    // 1. Count distinct pieces.
    const SplitRegex split(kQwen2SplitPattern);
    std::unordered_map<std::string, int64_t> piece_counts;
    std::vector<std::string_view> pieces;
    for (const std::string& text : texts) {
        for_each_segment(text, special_tokens, [&](std::string_view segment) {
            const std::string normalized = nfc_normalize(segment);
            pieces.clear();
            split.split(normalized, &pieces);
            for (std::string_view p : pieces) ++piece_counts[std::string(p)];
        });
    }

    // 2. Alphabet: id k is byte gpt2_byte_order()[k].
    std::vector<std::string> token_bytes;  // raw bytes of each id
    std::unordered_map<std::string, int32_t> id_of;
    int32_t byte_id[kNumBytes];
    for (int k = 0; k < kNumBytes; ++k) {
        const uint8_t b = gpt2_byte_order()[size_t(k)];
        byte_id[b] = k;
        token_bytes.emplace_back(1, char(b));
        id_of.emplace(token_bytes.back(), k);
    }

    // 3. Words, in sorted order so that nothing depends on hash-map iteration.
    std::vector<std::pair<std::string, int64_t>> sorted(piece_counts.begin(), piece_counts.end());
    piece_counts.clear();
    std::sort(sorted.begin(), sorted.end());
    std::vector<Word> words(sorted.size());
    for (size_t w = 0; w < sorted.size(); ++w) {
        for (unsigned char c : sorted[w].first) words[w].symbols.push_back(byte_id[c]);
        words[w].count = sorted[w].second;
    }
    sorted.clear();

    // 4. Pair counts and the pair -> words index (may hold stale or repeated entries).
    std::unordered_map<uint64_t, int64_t> pair_count;
    std::unordered_map<uint64_t, std::vector<int32_t>> pair_words;
    auto index_word = [&](int32_t w, uint64_t key) {
        auto& list = pair_words[key];
        if (list.empty() || list.back() != w) list.push_back(w);
    };
    for (size_t w = 0; w < words.size(); ++w) {
        const auto& s = words[w].symbols;
        for (size_t i = 0; i + 1 < s.size(); ++i) {
            const uint64_t key = pair_key(s[i], s[i + 1]);
            pair_count[key] += words[w].count;
            index_word(int32_t(w), key);
        }
    }
    std::priority_queue<Candidate, std::vector<Candidate>, CandidateOrder> heap;
    for (const auto& [key, count] : pair_count) heap.push({count, key});

    // 5. Merge until the vocab is full or no pair is left.
    std::vector<std::pair<int32_t, int32_t>> merges;
    std::vector<int32_t> visited(words.size(), -1);  // last merge step that rewrote a word
    std::vector<uint64_t> grown;                       // pairs whose count rose this step
    while (int(token_bytes.size()) < target_bpe && !heap.empty()) {
        const Candidate top = heap.top();
        heap.pop();
        auto it = pair_count.find(top.pair);
        const int64_t now = it == pair_count.end() ? 0 : it->second;
        if (now != top.count) {
            // Lower now: re-queue at its true count. Higher: a fresher entry is queued.
            if (now > 0 && now < top.count) heap.push({now, top.pair});
            continue;
        }
        if (now <= 0) continue;

        const int32_t a = pair_left(top.pair), b = pair_right(top.pair);
        const std::string merged = token_bytes[size_t(a)] + token_bytes[size_t(b)];
        int32_t new_id;
        if (auto found = id_of.find(merged); found != id_of.end()) {
            new_id = found->second;
        } else {
            new_id = int32_t(token_bytes.size());
            token_bytes.push_back(merged);
            id_of.emplace(merged, new_id);
        }
        const int32_t step = int32_t(merges.size());
        merges.emplace_back(a, b);

        std::vector<int32_t> affected = std::move(pair_words[top.pair]);
        pair_words.erase(top.pair);
        grown.clear();
        for (int32_t w : affected) {
            if (visited[size_t(w)] == step) continue;
            visited[size_t(w)] = step;
            Word& word = words[size_t(w)];
            auto& s = word.symbols;
            // Remove this word's pairs, merge left to right, add its new pairs back.
            for (size_t i = 0; i + 1 < s.size(); ++i) pair_count[pair_key(s[i], s[i + 1])] -= word.count;
            size_t out = 0;
            for (size_t i = 0; i < s.size(); ++i) {
                if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
                    s[out++] = new_id;
                    ++i;
                } else {
                    s[out++] = s[i];
                }
            }
            s.resize(out);
            for (size_t i = 0; i + 1 < s.size(); ++i) {
                const uint64_t key = pair_key(s[i], s[i + 1]);
                pair_count[key] += word.count;
                if (s[i] == new_id || s[i + 1] == new_id) {
                    index_word(w, key);
                    grown.push_back(key);
                }
            }
        }
        pair_count.erase(top.pair);
        std::sort(grown.begin(), grown.end());
        grown.erase(std::unique(grown.begin(), grown.end()), grown.end());
        for (uint64_t key : grown) heap.push({pair_count[key], key});
    }

    // 6. Assemble tokenizer.json and load it (which also validates it).
    nlohmann::json j;
    j["version"] = "1.0";
    j["normalizer"] = {{"type", "NFC"}};
    j["pre_tokenizer"] = {
        {"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"}, {"pattern", {{"Regex", kQwen2SplitPattern}}}, {"behavior", "Isolated"}, {"invert", false}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}}}};
    j["post_processor"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
    j["decoder"] = j["post_processor"];
    nlohmann::json vocab = nlohmann::json::object();
    for (size_t id = 0; id < token_bytes.size(); ++id) vocab[bytes_to_mapped(token_bytes[id])] = id;
    nlohmann::json merge_list = nlohmann::json::array();
    for (const auto& [l, r] : merges)
        merge_list.push_back(bytes_to_mapped(token_bytes[size_t(l)]) + " " + bytes_to_mapped(token_bytes[size_t(r)]));
    j["model"] = {{"type", "BPE"}, {"vocab", std::move(vocab)}, {"merges", std::move(merge_list)}};
    nlohmann::json added = nlohmann::json::array();
    for (int i = 0; i < num_special; ++i)
        added.push_back({{"id", int(token_bytes.size()) + i}, {"content", special_tokens[size_t(i)]}, {"special", true}});
    j["added_tokens"] = std::move(added);
    return Tokenizer::from_json(j, "train_bpe");
}

}  // namespace rpt
