#include "rl/response_bytes.h"

#include <algorithm>
#include <climits>
#include <stdexcept>

#include <fmt/format.h>

namespace rpt {

int longest_token_bytes(const Tokenizer& tokenizer) {
    size_t longest = 1;
    for (const std::string& bytes : tokenizer.token_byte_table()) longest = std::max(longest, bytes.size());
    return int(std::min<size_t>(longest, INT_MAX));
}

int response_byte_capacity(const Tokenizer& tokenizer, int max_new_tokens) {
    if (max_new_tokens <= 0)
        throw std::invalid_argument(fmt::format("--max-new-tokens {} must be positive", max_new_tokens));
    const int64_t bytes = int64_t(max_new_tokens) * int64_t(longest_token_bytes(tokenizer));
    if (bytes > INT_MAX)
        throw std::invalid_argument(fmt::format("--max-new-tokens {}: responses could decode to {} bytes (tokens of "
                                                "up to {} bytes), more than the reward can index",
                                                max_new_tokens, bytes, longest_token_bytes(tokenizer)));
    return int(bytes);
}

}  // namespace rpt
