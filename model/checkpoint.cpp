#include "model/checkpoint.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "kernels/context.h"
#include "model/file_io.h"
#include "model/output_guard.h"
#include "model/safetensors.h"
#include "model/stale_temporaries.h"
#include "model/safetensors_index.h"
#include "model/trainer_state.h"
#include "model/weight_streaming.h"

namespace rpt {
namespace {

namespace fs = std::filesystem;

constexpr const char* kConfigFile = "config.json";
constexpr const char* kWeightsFile = "model.safetensors";
// Large Hugging Face checkpoints are split into shards listed by this index.
constexpr const char* kWeightsIndexFile = "model.safetensors.index.json";
constexpr const char* kTokenizerFile = "tokenizer.json";
constexpr const char* kOptimizerFile = "optimizer.safetensors";
constexpr const char* kStateFile = "trainer_state.json";
constexpr const char* kReferenceFile = "reference.safetensors";
constexpr const char* kMomentM = "adamw.exp_avg";
constexpr const char* kMomentV = "adamw.exp_avg_sq";
constexpr int kStateVersion = kTrainerStateVersion;

std::string join(const std::string& dir, const char* file) { return (fs::path(dir) / file).string(); }

std::vector<float> to_host(const Tensor& t) {
    std::vector<float> host(static_cast<size_t>(t.numel()));
    copy_to_host(host.data(), t);
    return host;
}

void write_weights(const std::string& path, const Transformer& model) {
    const std::vector<float> params = to_host(model.params().flat);
    std::vector<SafetensorsTensorRef> tensors;
    for (const ParameterEntry& e : model.layout().entries())
        tensors.push_back({e.name, e.shape, params.data() + e.offset});
    write_safetensors_f32(path, tensors, {{"format", "pt"}});
}

}  // namespace

// Moves a finished temporary directory onto `dir`, replacing what was there. An atomic
// exchange where the file system has one, so that `dir` is always a whole checkpoint
// even if the process is killed here; the previous version, now under `tmp`, is removed.
void publish_directory(const std::string& tmp, const std::string& dir) {
    std::error_code ec;
    if (fs::exists(dir) && renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) == 0) {
        fs::remove_all(tmp, ec);
        return;
    }
    const std::string old = fmt::format("{}.old-{}", dir, getpid());
    const bool existed = fs::exists(dir);
    if (existed) {
        fs::rename(dir, old, ec);
        if (ec) throw std::runtime_error(fmt::format("{}: cannot move the previous checkpoint aside: {}", dir, ec.message()));
    }
    fs::rename(tmp, dir, ec);
    if (ec) {
        if (existed) fs::rename(old, dir);
        throw std::runtime_error(fmt::format("{}: cannot publish the checkpoint: {}", dir, ec.message()));
    }
    if (existed) fs::remove_all(old, ec);
}

void save_checkpoint(const std::string& dir, const Transformer& model, const Tokenizer& tokenizer,
                     const AdamW* optimizer, const TrainerState* state, const Transformer* reference) {
    // Under data parallelism every rank calls this: the moments are gathered (ZeRO
    // shards them), rank 0 writes, and the barrier keeps the others from running ahead
    // of a checkpoint that might still fail (rank 0's error then aborts them all).
    Comm* comm = optimizer ? optimizer->comm() : nullptr;
    model.gather_parameters();  // ZeRO-3: gathered on write
    std::vector<float> m, v;
    if (optimizer && state) optimizer->moments_to_host(m, v);
    if (comm && comm->rank() != 0) {
        comm->barrier();
        return;
    }
    const fs::path target(dir);
    if (target.has_parent_path()) ensure_directory(target.parent_path().string());
    remove_stale_temporaries(dir);
    const std::string tmp = fmt::format("{}.tmp-{}", dir, getpid());
    fs::remove_all(tmp);
    ensure_directory(tmp);
    try {
        write_output_marker(tmp, kCheckpointOutput);  // rpt may replace it on a rerun
        nlohmann::json config = model.config().to_hf_json();
        write_file_atomic(join(tmp, kConfigFile), config.dump(2) + "\n");
        tokenizer.save(join(tmp, kTokenizerFile));

        write_weights(join(tmp, kWeightsFile), model);
        if (reference) write_weights(join(tmp, kReferenceFile), *reference);

        if (optimizer && state) {
            const int64_t P = model.layout().total();
            write_safetensors_f32(join(tmp, kOptimizerFile), {{kMomentM, {P}, m.data()}, {kMomentV, {P}, v.data()}},
                                  {{"format", "rpt-adamw"}});
            nlohmann::json s = {{"version", kStateVersion},
                                {"step", state->step},
                                {"optimizer_steps", optimizer->steps_taken()},
                                {"rng_state", state->rng_state},
                                {"data_cursor", state->data_cursor},
                                {"extra", state->extra}};
            if (!state->run.is_null()) s["run"] = state->run;
            write_file_atomic(join(tmp, kStateFile), s.dump(2) + "\n");
        }
        publish_directory(tmp, dir);
        if (comm) comm->barrier();
    } catch (...) {
        std::error_code ec;
        fs::remove_all(tmp, ec);
        throw;
    }
}

ModelConfig read_checkpoint_config(const std::string& dir) {
    const std::string path = join(dir, kConfigFile);
    if (!fs::exists(path)) throw std::runtime_error(fmt::format("{}: not found (is {} a checkpoint directory?)", path, dir));
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(read_file(path));
    } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error(fmt::format("{}: invalid JSON: {}", path, e.what()));
    }
    return ModelConfig::from_hf_json(j, path);
}

Tokenizer read_checkpoint_tokenizer(const std::string& dir) { return Tokenizer::load(join(dir, kTokenizerFile)); }

namespace {

// Calls `read(entry, file)` for every parameter of `layout`, with the file that holds it:
// model.safetensors, or else the shards that model.safetensors.index.json names (each
// opened, mapped and validated once).
void for_each_checkpoint_tensor(const std::string& dir, const ParameterLayout& layout,
                                const std::function<void(const ParameterEntry&, const SafetensorsFile&)>& read) {
    const std::string single = join(dir, kWeightsFile), index = join(dir, kWeightsIndexFile);
    // A single file wins over an index, as in transformers.
    if (fs::exists(single) || !fs::exists(index)) {
        const SafetensorsFile file = SafetensorsFile::open(single);
        for (const ParameterEntry& e : layout.entries()) read(e, file);
        return;
    }
    const std::map<std::string, std::string> weight_map = parse_safetensors_index(read_file(index), index);
    std::map<std::string, SafetensorsFile> shards;
    for (const ParameterEntry& e : layout.entries()) {
        const auto it = weight_map.find(e.name);
        if (it == weight_map.end())
            throw std::runtime_error(fmt::format("{}: weight_map has no entry for tensor '{}'", index, e.name));
        auto shard = shards.find(it->second);
        if (shard == shards.end())
            shard = shards.emplace(it->second, SafetensorsFile::open(join(dir, it->second.c_str()))).first;
        read(e, shard->second);
    }
}

}  // namespace

WeightLoadReport load_checkpoint_weights(const std::string& dir, Transformer& model) {
    const auto start = std::chrono::steady_clock::now();
    const Tensor& flat = model.params().flat;
    WeightStreamer streamer(model.context());
    for_each_checkpoint_tensor(dir, model.layout(), [&](const ParameterEntry& e, const SafetensorsFile& file) {
        streamer.load(file, e, flat.rows(e.offset, e.offset + e.numel));
    });
    model.refresh_working();
    synchronize(model.context());
    WeightLoadReport report;
    report.file_bytes = streamer.bytes_read();
    report.staging_bytes = streamer.staging_bytes();
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
}

void read_checkpoint_tensors(const std::string& dir, const ParameterLayout& layout, float* host) {
    for_each_checkpoint_tensor(dir, layout, [host](const ParameterEntry& e, const SafetensorsFile& file) {
        file.read_f32(e.name, e.shape, host + e.offset);
    });
}

bool has_training_state(const std::string& dir) {
    return fs::exists(join(dir, kStateFile)) && fs::exists(join(dir, kOptimizerFile));
}

nlohmann::json read_run_record(const std::string& dir) {
    const std::string path = join(dir, kStateFile);
    return parse_training_state(read_file(path), path).state.run;
}

std::optional<TrainerState> read_trainer_state(const std::string& dir) {
    const std::string path = join(dir, kStateFile);
    if (!fs::exists(path)) return std::nullopt;
    return parse_training_state(read_file(path), path).state;
}

bool has_reference_weights(const std::string& dir) { return fs::exists(join(dir, kReferenceFile)); }

void load_reference_weights(const std::string& dir, Transformer& reference) {
    const SafetensorsFile file = SafetensorsFile::open(join(dir, kReferenceFile));
    const Tensor& flat = reference.params().flat;
    WeightStreamer streamer(reference.context());
    for (const ParameterEntry& e : reference.layout().entries())
        streamer.load(file, e, flat.rows(e.offset, e.offset + e.numel));
    reference.refresh_working();
}

namespace {

// This rank's ranges of a full (P) fp32 tensor, straight from the mapping into `shard`
// (laid out by `shards`); the pages read are dropped again, so a rank never holds more
// of the file than its own slices.
void read_owned_ranges(const SafetensorsFile& file, const char* name, const ZeroShards& shards, float* shard) {
    const int64_t P = shards.total();
    const SafetensorsEntry& e = file.expect_float(name, {P});
    if (e.dtype != "F32")
        throw std::runtime_error(fmt::format("{}: {} is {}, the optimizer's moments are F32", file.path(), name, e.dtype));
    const uint8_t* data = file.raw_data(e);
    for (int b = 0; b < shards.bucket_count(); ++b) {
        const OwnedRange own = shards.owned(b);
        if (own.end > own.begin)
            std::memcpy(shard + own.shard_offset, data + size_t(own.begin) * sizeof(float),
                        size_t(own.end - own.begin) * sizeof(float));
    }
    file.release_pages(e);
}

}  // namespace

TrainerState load_training_state(const std::string& dir, AdamW& optimizer) {
    const std::string path = join(dir, kStateFile);
    const TrainingStateFile parsed = parse_training_state(read_file(path), path);
    optimizer.set_steps_taken(parsed.optimizer_steps);
    const SafetensorsFile file = SafetensorsFile::open(join(dir, kOptimizerFile));
    // The file holds the full moments; each rank reads only the slices it owns (all of
    // them without ZeRO), whatever the rank count and ZeRO level that wrote it.
    const ZeroShards& shards = optimizer.shards();
    std::vector<float> m(size_t(shards.shard_size()), 0.0f), v(m.size(), 0.0f);  // padding stays zero
    for (auto [name, dst] : {std::pair{kMomentM, &m}, std::pair{kMomentV, &v}})
        read_owned_ranges(file, name, shards, dst->data());
    optimizer.load_moment_shard(m.data(), v.data());
    return parsed.state;
}

}  // namespace rpt
