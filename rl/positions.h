// Token positions RPT trains and evaluates on, chosen by a proxy model's top-16 entropy
// (DESIGN §1, token filtering): each position of each document gets the entropy of the
// proxy's next-token distribution renormalised over its 16 largest logits. Low-entropy
// positions are dropped for training; evaluation splits are nested thresholds.
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "model/transformer.h"
#include "rl/token_data.h"

namespace rpt {

constexpr int kProxyTopK = 16;

struct ScoredPosition {
    int64_t doc = 0;       // index of the document in its corpus
    int32_t position = 0;  // the token predicted: doc.tokens[position], from tokens [0, position)
    float entropy = 0;     // top-16 entropy (nats)
};

struct EntropySplits {
    float easy = 0.5f, medium = 1.0f, hard = 1.5f;  // a position is in a split when entropy > threshold
};

// Scores every position 1 .. len-1 of each document with `proxy` (windows of at most
// seq_len tokens; a longer document is scored in windows that each see up to seq_len
// tokens of left context). `doc_ids` gives each document's corpus index.
std::vector<ScoredPosition> score_positions(Transformer& proxy, const std::vector<std::vector<int32_t>>& docs,
                                            const std::vector<int64_t>& doc_ids, int seq_len, int batch_size);

void write_positions(const std::string& path, const std::vector<ScoredPosition>& positions);
// One JSON object per line: {"doc": int >= 0, "pos": int >= 1, "entropy": number}.
// Errors name the file and line.
std::vector<ScoredPosition> read_positions(const std::string& path);
// The same on a stream; `source` stands for the path in messages.
std::vector<ScoredPosition> read_positions(std::istream& in, const std::string& source);

// Positions with entropy > threshold.
std::vector<ScoredPosition> positions_above(const std::vector<ScoredPosition>& all, float threshold);

}  // namespace rpt
