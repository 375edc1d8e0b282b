// The special tokens of tokenizers rpt trains from scratch: the end-of-text separator
// and the markers of the compact RPT template (DESIGN §1), reserved from the start so
// pre-training and RPT share one vocabulary.
#pragma once

#include <string>
#include <vector>

namespace rpt {

inline const char* const kEndOfText = "<|endoftext|>";
inline const char* const kContextOpen = "<ctx>";
inline const char* const kThinkOpen = "<think>";
inline const char* const kThinkClose = "</think>";
inline const char* const kAnswerOpen = "<answer>";
inline const char* const kAnswerClose = "</answer>";

inline std::vector<std::string> default_special_tokens() {
    return {kEndOfText, kContextOpen, kThinkOpen, kThinkClose, kAnswerOpen, kAnswerClose};
}

}  // namespace rpt
