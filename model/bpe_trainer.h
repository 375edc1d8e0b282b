// Trains a byte-level BPE tokenizer (Qwen2 pre-processing: NFC + Qwen2 Split regex +
// ByteLevel) on in-memory texts, the way Hugging Face's BpeTrainer does.
#pragma once

#include <string>
#include <vector>

#include "model/tokenizer.h"

namespace rpt {

// Vocabulary layout: ids 0..255 are the 256 single bytes in GPT-2 byte order (the
// order of their ByteLevel characters, as in GPT-2 and Qwen2 vocabs), then one id per
// merge in merge order (a merge whose result already exists reuses its id), then
// `special_tokens` in the order given, as special added tokens.
//
// Each step merges the adjacent pair with the highest count over all pieces; ties go to
// the pair with the lowest (left id, right id). Occurrences of special tokens are cut
// out of the texts before counting. Training stops when the vocab (specials included)
// reaches `vocab_size`, or earlier if no pair is left to merge. Deterministic.
// Throws std::invalid_argument if vocab_size < 256 + special_tokens.size() or a special
// token is empty, invalid UTF-8 or repeated.
Tokenizer train_bpe(const std::vector<std::string>& texts, int vocab_size,
                    const std::vector<std::string>& special_tokens);

}  // namespace rpt
