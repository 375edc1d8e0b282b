// corpus: JSONL corpus reading and writing, and the held-out split (see corpus.h).
#include "rl/corpus.h"

#include <fstream>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "model/file_io.h"

namespace rpt {

namespace {

// One line's failure; the caller adds "PATH:LINE: ".
struct MalformedLine {
  std::string reason;
};

std::string string_field(const nlohmann::json& obj, const std::string& field) {
  auto it = obj.find(field);
  if (it == obj.end()) throw MalformedLine{fmt::format("missing field '{}'", field)};
  if (!it->is_string()) throw MalformedLine{fmt::format("field '{}' is not a string", field)};
  std::string s = it->get<std::string>();
  if (s.empty()) throw MalformedLine{fmt::format("field '{}' is empty", field)};
  return s;
}

std::string parse_document(const std::string& line, const CorpusOptions& options) {
  nlohmann::json obj;
  try {
    obj = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    throw MalformedLine{fmt::format("invalid JSON ({})", e.what())};
  }
  if (!obj.is_object()) throw MalformedLine{"not a JSON object"};
  if (!options.problem_field.empty() && !options.solution_field.empty())
    return string_field(obj, options.problem_field) + "\n" + string_field(obj, options.solution_field);
  return string_field(obj, options.text_field);
}

bool is_blank(const std::string& line) { return line.find_first_not_of(" \t\r") == std::string::npos; }

uint64_t mix64(uint64_t z) {  // splitmix64 finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

CorpusOptions corpus_preset(std::string_view name) {
  CorpusOptions o;
  if (name == "text") return o;
  if (name == "gsm8k") {
    o.problem_field = "question";
    o.solution_field = "answer";
    return o;
  }
  if (name == "omni-math" || name == "omnimath") {
    o.problem_field = "problem";
    o.solution_field = "solution";
    return o;
  }
  throw std::invalid_argument(fmt::format("unknown corpus format '{}' (expected text, gsm8k or omni-math)", name));
}

std::vector<std::string> read_jsonl_corpus(const std::string& path, const CorpusOptions& options, size_t* skipped) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot open corpus '{}'", path));
  return read_jsonl_corpus(in, path, options, skipped);
}

std::vector<std::string> read_jsonl_corpus(std::istream& in, const std::string& path, const CorpusOptions& options,
                                           size_t* skipped) {
  std::vector<std::string> docs;
  size_t n_skipped = 0, line_no = 0;
  std::string line;
  while (std::getline(in, line)) {
    line_no++;
    if (is_blank(line)) continue;  // trailing newlines and blank separators are harmless
    try {
      docs.push_back(parse_document(line, options));
    } catch (const MalformedLine& bad) {
      if (!options.skip_malformed) throw std::runtime_error(fmt::format("{}:{}: {}", path, line_no, bad.reason));
      n_skipped++;
    }
  }
  if (in.bad()) throw std::runtime_error(fmt::format("{}:{}: read error", path, line_no));
  if (skipped) *skipped = n_skipped;
  return docs;
}

void write_jsonl_corpus(const std::string& path, const std::vector<std::string>& docs) {
  AtomicFileWriter out(path);
  // Buffer lines so that a million short documents are not a million write() calls.
  constexpr size_t kFlushBytes = 1 << 20;
  std::string buf;
  for (size_t i = 0; i < docs.size(); i++) {
    try {
      buf += nlohmann::json{{"text", docs[i]}}.dump();
    } catch (const nlohmann::json::type_error&) {
      throw std::runtime_error(fmt::format("cannot write '{}': document {} is not valid UTF-8", path, i));
    }
    buf += '\n';
    if (buf.size() >= kFlushBytes) {
      out.write(buf);
      buf.clear();
    }
  }
  out.write(buf);
  out.commit();
}

bool is_heldout(uint64_t seed, size_t index, double fraction) {
  // Top 53 bits of a hash of (seed, index) as a uniform double in [0, 1).
  const uint64_t h = mix64(mix64(seed + 0x9e3779b97f4a7c15ULL) ^ static_cast<uint64_t>(index));
  return static_cast<double>(h >> 11) * 0x1.0p-53 < fraction;
}

CorpusSplit split_corpus(const std::vector<std::string>& docs, uint64_t seed, double fraction) {
  CorpusSplit split;
  for (size_t i = 0; i < docs.size(); i++) (is_heldout(seed, i, fraction) ? split.heldout : split.train).push_back(docs[i]);
  return split;
}

}  // namespace rpt
