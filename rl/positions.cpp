// Top-16 entropy scoring of every position (see positions.h); the file format is in
// positions_file.cpp.
#include "rl/positions.h"

#include <algorithm>
#include <stdexcept>

namespace rpt {

std::vector<ScoredPosition> score_positions(Transformer& proxy, const std::vector<std::vector<int32_t>>& docs,
                                            const std::vector<int64_t>& doc_ids, int seq_len, int batch_size) {
    if (docs.size() != doc_ids.size()) throw std::invalid_argument("score_positions: one id per document");
    // Work items: (document, first predicted position) windows of up to seq_len inputs.
    struct Window {
        size_t doc;
        int32_t first;  // first position predicted; inputs are tokens [first - 1 - ctx, ...)
        int32_t begin;  // first input token
        int32_t count;  // positions predicted
    };
    std::vector<Window> windows;
    for (size_t d = 0; d < docs.size(); ++d) {
        const int32_t len = int32_t(docs[d].size());
        // Position p (1 <= p < len) is predicted from inputs ending at p - 1. The first
        // window starts at 0; later windows keep seq_len / 2 tokens of context.
        int32_t p = 1;
        while (p < len) {
            const int32_t begin = p == 1 ? 0 : std::max(0, p - 1 - seq_len / 2);
            const int32_t count = std::min(len - p, seq_len - (p - 1 - begin));
            windows.push_back({d, p, begin, count});
            p += count;
        }
    }
    std::vector<ScoredPosition> out;
    std::vector<int32_t> tokens, targets;
    for (size_t w0 = 0; w0 < windows.size(); w0 += size_t(batch_size)) {
        const int B = int(std::min(windows.size() - w0, size_t(batch_size)));
        int T = 1;
        for (int b = 0; b < B; ++b) {
            const Window& w = windows[w0 + size_t(b)];
            T = std::max(T, w.first - 1 - w.begin + w.count);
        }
        tokens.assign(size_t(B) * T, 0);
        targets.assign(size_t(B) * T, -1);
        for (int b = 0; b < B; ++b) {
            const Window& w = windows[w0 + size_t(b)];
            const auto& doc = docs[w.doc];
            const int32_t inputs = w.first - 1 - w.begin + w.count;
            for (int32_t i = 0; i < inputs; ++i) tokens[size_t(b) * T + i] = doc[size_t(w.begin + i)];
        }
        HeadRequest request;
        request.topk_entropy = kProxyTopK;
        proxy.forward(tokens.data(), targets.data(), B, T, request);
        const std::vector<float> entropy = proxy.topk_entropies();
        for (int b = 0; b < B; ++b) {
            const Window& w = windows[w0 + size_t(b)];
            for (int32_t i = 0; i < w.count; ++i) {
                const int32_t position = w.first + i;
                const int32_t row_index = position - 1 - w.begin;  // the input predicting `position`
                out.push_back({doc_ids[w.doc], position, entropy[size_t(b) * T + row_index]});
            }
        }
    }
    std::sort(out.begin(), out.end(), [](const ScoredPosition& a, const ScoredPosition& b) {
        return a.doc != b.doc ? a.doc < b.doc : a.position < b.position;
    });
    return out;
}

std::vector<ScoredPosition> positions_above(const std::vector<ScoredPosition>& all, float threshold) {
    std::vector<ScoredPosition> out;
    for (const ScoredPosition& p : all)
        if (p.entropy > threshold) out.push_back(p);
    return out;
}

}  // namespace rpt
