// rpt_bench tokenizer: tokenizer encode/decode throughput on a real text, and checkpoint
// load throughput against file size.
//
//   rpt_bench tokenizer --text FILE [--format gsm8k|omni-math|text|raw] [--tokenizer JSON]
//                       [--checkpoint DIR] [--min-time S] [--json OUT]
//
// Encode is timed per document (each is encoded on its own, as corpora are), on one
// thread and over all OpenMP threads (the tokenizer is thread-safe); MB/s counts the
// input bytes. tools/bench_hf_tokenizer.py measures Hugging Face `tokenizers` the same
// way on the same file and tokenizer.json. Checkpoint load times read_checkpoint_tensors
// (mmap, validation, dtype conversion to fp32) of --checkpoint, or of a synthetic
// "small"-preset checkpoint written to a temporary directory (F32 and BF16) when none
// is given; GB/s counts bytes on disk (page cache warm after the first read).
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/benches.h"
#include "model/checkpoint.h"
#include "model/file_io.h"
#include "model/parameters.h"
#include "model/safetensors.h"
#include "model/tokenizer.h"
#include "rl/corpus.h"

namespace rpt::bench {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDefaultTokenizer = "tests/fixtures/hf_tokenizer/tokenizer.json";
constexpr double kDefaultMinTime = 1.0;  // seconds per measurement
constexpr double kMB = 1e6, kGB = 1e9;
constexpr uint64_t kSyntheticSeed = 7;

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Runs `pass` until min_time has elapsed (at least once); returns seconds per pass.
template <class F>
double time_passes(double min_time, F&& pass) {
    int passes = 0;
    const auto t0 = Clock::now();
    do {
        pass();
        ++passes;
    } while (seconds_since(t0) < min_time);
    return seconds_since(t0) / passes;
}

std::vector<std::string> load_docs(const std::string& path, const std::string& format) {
    if (format == "raw") return {read_file(path)};
    return read_jsonl_corpus(path, corpus_preset(format));
}

double checkpoint_bytes(const std::string& dir) {
    double bytes = 0;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().extension() == ".safetensors" && e.path().filename() != "optimizer.safetensors")
            bytes += double(e.file_size());
    return bytes;
}

// Seconds of one read_checkpoint_tensors of `dir` (best of a few, page cache warm).
double load_seconds(const std::string& dir, double min_time) {
    const ModelConfig config = read_checkpoint_config(dir);
    const ParameterLayout layout(config);
    std::vector<float> host(static_cast<size_t>(layout.total()));
    read_checkpoint_tensors(dir, layout, host.data());  // warm the page cache
    return time_passes(min_time, [&] { read_checkpoint_tensors(dir, layout, host.data()); });
}

// A "small"-preset checkpoint in `dtype`, written with the project's own writer.
void write_synthetic_checkpoint(const std::string& dir, const char* dtype) {
    const ModelConfig config = model_preset("small");
    const ParameterLayout layout(config);
    std::vector<float> host(static_cast<size_t>(layout.total()));
    init_parameters(layout, host.data(), kSyntheticSeed);
    ensure_directory(dir);
    write_file_atomic(dir + "/config.json", config.to_hf_json().dump(2));
    std::vector<SafetensorsTensorRef> tensors;
    for (const ParameterEntry& e : layout.entries()) tensors.push_back({e.name, e.shape, host.data() + e.offset});
    write_safetensors(dir + "/model.safetensors", tensors, {{"format", "pt"}}, dtype);
}

int usage() {
    std::fprintf(stderr,
                 "usage: rpt_bench tokenizer --text FILE [--format gsm8k|omni-math|text|raw] [--tokenizer JSON]\n"
                 "                           [--checkpoint DIR] [--min-time S] [--json OUT]\n"
                 "  --format     how to read FILE: a JSONL corpus preset, or raw text (default gsm8k)\n"
                 "  --tokenizer  tokenizer.json (default %s)\n"
                 "  --checkpoint time loading this directory (default: synthetic 'small' checkpoints)\n",
                 kDefaultTokenizer);
    return 2;
}

}  // namespace

int tokenizer(int argc, char** argv) {
    std::string text_path, format = "gsm8k", tokenizer_path = kDefaultTokenizer, checkpoint, json_path;
    double min_time = kDefaultMinTime;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (i + 1 >= argc) return usage();
        if (arg == "--text") text_path = argv[++i];
        else if (arg == "--format") format = argv[++i];
        else if (arg == "--tokenizer") tokenizer_path = argv[++i];
        else if (arg == "--checkpoint") checkpoint = argv[++i];
        else if (arg == "--min-time") min_time = std::atof(argv[++i]);
        else if (arg == "--json") json_path = argv[++i];
        else return usage();
    }
    if (text_path.empty()) return usage();
    if (!fs::exists(text_path)) {
        std::printf("tokenizer bench: %s not found, skipped\n", text_path.c_str());
        return 0;
    }
    nlohmann::json results;

    const std::vector<std::string> docs = load_docs(text_path, format);
    const auto load_start = Clock::now();
    const Tokenizer tok = Tokenizer::load(tokenizer_path);
    const double load_s = seconds_since(load_start);
    double bytes = 0;
    for (const std::string& d : docs) bytes += double(d.size());
    std::vector<std::vector<int32_t>> ids(docs.size());
    const int threads = omp_get_max_threads();
    const double encode_1 = time_passes(min_time, [&] {
        for (size_t i = 0; i < docs.size(); ++i) ids[i] = tok.encode(docs[i]);
    });
    const double encode_n = time_passes(min_time, [&] {
#pragma omp parallel for schedule(dynamic, 16)
        for (size_t i = 0; i < docs.size(); ++i) ids[i] = tok.encode(docs[i]);
    });
    double tokens = 0;
    for (const auto& v : ids) tokens += double(v.size());
    const double decode_1 = time_passes(min_time, [&] {
        size_t sink = 0;
        for (const auto& v : ids) sink += tok.decode(v).size();
        if (sink == 0) std::fprintf(stderr, "empty decode\n");
    });
    std::printf("tokenizer %s (%d tokens) on %s: %zu documents, %.2f MB, %.0f tokens (%.2f bytes/token)\n",
                tokenizer_path.c_str(), tok.vocab_size(), text_path.c_str(), docs.size(), bytes / kMB, tokens,
                bytes / tokens);
    std::printf("  load tokenizer.json   %8.1f ms\n", load_s * 1e3);
    std::printf("  encode, 1 thread      %8.2f MB/s\n", bytes / kMB / encode_1);
    std::printf("  encode, %2d threads    %8.2f MB/s\n", threads, bytes / kMB / encode_n);
    std::printf("  decode, 1 thread      %8.2f MB/s\n", bytes / kMB / decode_1);
    results["tokenizer"] = {{"file", text_path},          {"tokenizer", tokenizer_path}, {"documents", docs.size()},
                            {"bytes", bytes},              {"tokens", tokens},           {"load_seconds", load_s},           {"threads", threads},
                            {"encode_mb_s_1", bytes / kMB / encode_1}, {"encode_mb_s_n", bytes / kMB / encode_n},
                            {"decode_mb_s_1", bytes / kMB / decode_1}};

    // Checkpoint load.
    std::vector<std::pair<std::string, std::string>> dirs;  // label, directory
    std::string tmp;
    if (!checkpoint.empty()) {
        dirs.push_back({checkpoint, checkpoint});
    } else {
        tmp = (fs::temp_directory_path() / ("rpt_bench_ckpt_" + std::to_string(getpid()))).string();
        write_synthetic_checkpoint(tmp + "/f32", "F32");
        write_synthetic_checkpoint(tmp + "/bf16", "BF16");
        dirs = {{"synthetic small F32", tmp + "/f32"}, {"synthetic small BF16", tmp + "/bf16"}};
    }
    results["checkpoint"] = nlohmann::json::array();
    for (const auto& [label, dir] : dirs) {
        const double file_bytes = checkpoint_bytes(dir), s = load_seconds(dir, min_time);
        std::printf("  checkpoint load %-22s %8.1f MB in %7.1f ms: %6.2f GB/s\n", label.c_str(), file_bytes / kMB,
                    s * 1e3, file_bytes / kGB / s);
        results["checkpoint"].push_back({{"what", label}, {"bytes", file_bytes}, {"seconds", s}});
    }
    if (!tmp.empty()) fs::remove_all(tmp);
    if (!json_path.empty()) write_file_atomic(json_path, results.dump(2) + "\n");
    return 0;
}

}  // namespace rpt::bench
