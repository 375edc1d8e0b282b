// Documents as token ids for training and evaluation: the training documents joined
// into one stream (each followed by the end-of-text token) that fixed-length windows are
// cut from, and the held-out documents kept whole. The split is by a hash of the
// document index, so it does not depend on corpus order or size.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/tokenizer.h"

namespace rpt {

struct TokenizedDocument {
    std::vector<int32_t> tokens;
    // Index of the first token of the final answer ("Answer:" / GSM8K "####"), or
    // tokens.size() when the document has none.
    size_t answer_begin = 0;
};

struct TokenizedCorpus {
    std::vector<int32_t> train_stream;            // all training documents, each + end-of-text
    std::vector<TokenizedDocument> heldout;       // held-out documents, whole
    size_t train_documents = 0;
};

// Byte offset where the final answer begins (just after the last "Answer:" or "####"
// marker), or std::string::npos.
size_t answer_start_byte(const std::string& text);

// Tokenises each document (in parallel) and splits train/held-out by
// is_heldout(seed, index, heldout_fraction).
TokenizedCorpus tokenize_corpus(const std::vector<std::string>& documents, const Tokenizer& tokenizer,
                                int32_t end_of_text, uint64_t seed, double heldout_fraction);

// Every document's tokens, indexed like the corpus (in parallel).
std::vector<std::vector<int32_t>> tokenize_documents(const std::vector<std::string>& documents,
                                                     const Tokenizer& tokenizer);

// Token index of the first token that starts at or after `byte_offset` (tokens' bytes
// concatenate to the document, so offsets are cumulative token byte lengths).
size_t token_index_at_byte(const Tokenizer& tokenizer, const std::vector<int32_t>& tokens, size_t byte_offset);

}  // namespace rpt
