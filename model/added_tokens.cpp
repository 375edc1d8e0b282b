// Added-token matching with Hugging Face's semantics; see added_tokens.h.
#include "model/added_tokens.h"

#include <algorithm>
#include <cstring>

#include "model/unicode_class.h"

namespace rpt {

void AddedTokenMatcher::add(std::string pattern, const AddedToken& token) {
    if (pattern.empty()) return;
    if (by_first_byte_.empty()) by_first_byte_.resize(256);
    patterns_.push_back(Pattern{std::move(pattern), token.id, token.single_word, token.lstrip, token.rstrip});
    auto& candidates = by_first_byte_[uint8_t(patterns_.back().text[0])];
    candidates.push_back(patterns_.size() - 1);
    // Longest first, so that the first candidate that matches is the longest one.
    std::stable_sort(candidates.begin(), candidates.end(),
                     [&](size_t a, size_t b) { return patterns_[a].text.size() > patterns_[b].text.size(); });
}

AddedTokenMatcher::Match AddedTokenMatcher::find(std::string_view text, size_t from) const {
    if (patterns_.empty()) return {};
    for (size_t i = from; i < text.size(); ++i)
        for (size_t k : by_first_byte_[uint8_t(text[i])]) {
            const std::string& p = patterns_[k].text;
            if (text.size() - i >= p.size() && std::memcmp(text.data() + i, p.data(), p.size()) == 0) return {i, k};
        }
    return {};
}

void AddedTokenMatcher::split(std::string_view text, std::vector<AddedSplit>* out) const {
    out->clear();
    size_t done = 0;  // end of the previous token's span: plain text resumes here
    for (Match m = find(text, 0); m.start != std::string_view::npos;) {
        const Pattern& p = patterns_[m.pattern];
        size_t start = m.start, stop = m.start + p.text.size();
        m = find(text, stop);  // the next match, found before this one is stripped
        if (p.single_word && (is_word_char_before(text, start) || (stop < text.size() && is_word_char_at(text, stop))))
            continue;
        if (p.lstrip) {
            size_t n = 0;
            size_t s = start;
            while (s > done && is_white_space_before(text, s, &n)) s -= n;
            start = s;
        }
        if (p.rstrip) {
            size_t n = 0;
            while (stop < text.size() && is_white_space_at(text, stop, &n)) stop += n;
        }
        if (done < start) out->push_back({done, start, -1});
        out->push_back({start, stop, p.id});
        done = stop;
    }
    if (done < text.size()) out->push_back({done, text.size(), -1});
}

}  // namespace rpt
