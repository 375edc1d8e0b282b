// model.safetensors.index.json, the index of a sharded Hugging Face checkpoint: which
// shard file holds each tensor. Shard names are taken verbatim from the index (never
// constructed from a pattern) but must be plain file names, so a hostile index cannot
// point outside the checkpoint directory.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace rpt {

// Tensor name -> shard file name, from the index's text (`source` names it in errors,
// which are std::runtime_error "<source>: <why>").
std::map<std::string, std::string> parse_safetensors_index(std::string_view text, const std::string& source);

}  // namespace rpt
