#include "rl/token_data.h"

#include "rl/corpus.h"

namespace rpt {
namespace {

constexpr const char* kAnswerMarkers[] = {"Answer:", "####"};

}  // namespace

size_t answer_start_byte(const std::string& text) {
    size_t best = std::string::npos;
    for (const char* marker : kAnswerMarkers) {
        const size_t at = text.rfind(marker);
        if (at != std::string::npos) {
            const size_t after = at + std::char_traits<char>::length(marker);
            if (best == std::string::npos || after > best) best = after;
        }
    }
    return best;
}

size_t token_index_at_byte(const Tokenizer& tokenizer, const std::vector<int32_t>& tokens, size_t byte_offset) {
    size_t bytes = 0;
    for (size_t i = 0; i < tokens.size(); ++i) {
        if (bytes >= byte_offset) return i;
        bytes += tokenizer.token_bytes(tokens[i]).size();
    }
    return tokens.size();
}

std::vector<std::vector<int32_t>> tokenize_documents(const std::vector<std::string>& documents,
                                                     const Tokenizer& tokenizer) {
    std::vector<std::vector<int32_t>> out(documents.size());
#pragma omp parallel for schedule(dynamic, 16)
    for (size_t i = 0; i < documents.size(); ++i) out[i] = tokenizer.encode(documents[i]);
    return out;
}

TokenizedCorpus tokenize_corpus(const std::vector<std::string>& documents, const Tokenizer& tokenizer,
                                int32_t end_of_text, uint64_t seed, double heldout_fraction) {
    std::vector<std::vector<int32_t>> ids = tokenize_documents(documents, tokenizer);
    std::vector<TokenizedDocument> docs(documents.size());
    for (size_t i = 0; i < documents.size(); ++i) {
        docs[i].tokens = std::move(ids[i]);
        const size_t answer = answer_start_byte(documents[i]);
        docs[i].answer_begin = answer == std::string::npos ? docs[i].tokens.size()
                                                           : token_index_at_byte(tokenizer, docs[i].tokens, answer);
    }
    TokenizedCorpus corpus;
    for (size_t i = 0; i < docs.size(); ++i) {
        if (is_heldout(seed, i, heldout_fraction)) {
            corpus.heldout.push_back(std::move(docs[i]));
        } else {
            corpus.train_stream.insert(corpus.train_stream.end(), docs[i].tokens.begin(), docs[i].tokens.end());
            corpus.train_stream.push_back(end_of_text);
            ++corpus.train_documents;
        }
    }
    return corpus;
}

}  // namespace rpt
