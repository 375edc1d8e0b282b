// How many bytes the reward must decode per response so that no response is judged on a
// truncated prefix: the answer (`\boxed{...}` after `</think>`) comes at the very end of
// a reasoning trace, so a decode buffer shorter than the longest response would silently
// score long responses 0. The trainer and the evaluation size their reward scorer here.
#pragma once

#include <cstdint>

#include "model/tokenizer.h"

namespace rpt {

// The most bytes any single token of `tokenizer` decodes to (at least 1).
int longest_token_bytes(const Tokenizer& tokenizer);

// max_new_tokens * longest_token_bytes: what a response of at most max_new_tokens tokens
// can decode to. Throws std::invalid_argument (naming --max-new-tokens) when that does
// not fit an int.
int response_byte_capacity(const Tokenizer& tokenizer, int max_new_tokens);

}  // namespace rpt
