#include "model/checkpoint.h"

#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "model/file_io.h"
#include "model/safetensors.h"

namespace rpt {
namespace {

namespace fs = std::filesystem;

constexpr const char* kConfigFile = "config.json";
constexpr const char* kWeightsFile = "model.safetensors";
constexpr const char* kTokenizerFile = "tokenizer.json";
constexpr const char* kOptimizerFile = "optimizer.safetensors";
constexpr const char* kStateFile = "trainer_state.json";
constexpr const char* kMomentM = "adamw.exp_avg";
constexpr const char* kMomentV = "adamw.exp_avg_sq";
constexpr int kStateVersion = 1;

std::string join(const std::string& dir, const char* file) { return (fs::path(dir) / file).string(); }

std::vector<float> to_host(const Tensor& t) {
    std::vector<float> host(static_cast<size_t>(t.numel()));
    copy_to_host(host.data(), t);
    return host;
}

// Moves a finished temporary directory onto `dir`, replacing what was there.
void publish_directory(const std::string& tmp, const std::string& dir) {
    std::error_code ec;
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

}  // namespace

void save_checkpoint(const std::string& dir, const Transformer& model, const Tokenizer& tokenizer,
                     const AdamW* optimizer, const TrainerState* state) {
    const fs::path target(dir);
    if (target.has_parent_path()) ensure_directory(target.parent_path().string());
    const std::string tmp = fmt::format("{}.tmp-{}", dir, getpid());
    fs::remove_all(tmp);
    ensure_directory(tmp);
    try {
        nlohmann::json config = model.config().to_hf_json();
        write_file_atomic(join(tmp, kConfigFile), config.dump(2) + "\n");
        tokenizer.save(join(tmp, kTokenizerFile));

        const std::vector<float> params = to_host(model.params().flat);
        std::vector<SafetensorsTensorRef> tensors;
        for (const ParameterEntry& e : model.layout().entries())
            tensors.push_back({e.name, e.shape, params.data() + e.offset});
        write_safetensors_f32(join(tmp, kWeightsFile), tensors, {{"format", "pt"}});

        if (optimizer && state) {
            const std::vector<float> m = to_host(optimizer->m()), v = to_host(optimizer->v());
            const int64_t P = model.layout().total();
            write_safetensors_f32(join(tmp, kOptimizerFile), {{kMomentM, {P}, m.data()}, {kMomentV, {P}, v.data()}},
                                  {{"format", "rpt-adamw"}});
            nlohmann::json s = {{"version", kStateVersion},
                                {"step", state->step},
                                {"optimizer_steps", optimizer->steps_taken()},
                                {"rng_state", state->rng_state},
                                {"data_cursor", state->data_cursor},
                                {"extra", state->extra}};
            write_file_atomic(join(tmp, kStateFile), s.dump(2) + "\n");
        }
        publish_directory(tmp, dir);
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
    } catch (const nlohmann::json::parse_error& e) {
        throw std::runtime_error(fmt::format("{}: invalid JSON: {}", path, e.what()));
    }
    return ModelConfig::from_hf_json(j, path);
}

Tokenizer read_checkpoint_tokenizer(const std::string& dir) { return Tokenizer::load(join(dir, kTokenizerFile)); }

void load_checkpoint_weights(const std::string& dir, Transformer& model) {
    const SafetensorsFile file = SafetensorsFile::open(join(dir, kWeightsFile));
    const ParameterLayout& layout = model.layout();
    std::vector<float> host(static_cast<size_t>(layout.total()));
    for (const ParameterEntry& e : layout.entries()) file.read_f32(e.name, e.shape, host.data() + e.offset);
    copy_from_host(model.params().flat, host.data());
}

bool has_training_state(const std::string& dir) {
    return fs::exists(join(dir, kStateFile)) && fs::exists(join(dir, kOptimizerFile));
}

TrainerState load_training_state(const std::string& dir, AdamW& optimizer) {
    const std::string path = join(dir, kStateFile);
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(read_file(path));
    } catch (const nlohmann::json::parse_error& e) {
        throw std::runtime_error(fmt::format("{}: invalid JSON: {}", path, e.what()));
    }
    auto field = [&](const char* key) -> const nlohmann::json& {
        if (!j.contains(key)) throw std::runtime_error(fmt::format("{}: missing field '{}'", path, key));
        return j[key];
    };
    if (field("version").get<int>() != kStateVersion)
        throw std::runtime_error(fmt::format("{}: unsupported version {}", path, j["version"].dump()));
    TrainerState s;
    try {
        s.step = field("step").get<int64_t>();
        s.rng_state = field("rng_state").get<uint64_t>();
        s.data_cursor = field("data_cursor").get<uint64_t>();
        s.extra = j.value("extra", nlohmann::json::object());
        optimizer.set_steps_taken(field("optimizer_steps").get<int64_t>());
    } catch (const nlohmann::json::type_error& e) {
        throw std::runtime_error(fmt::format("{}: wrong field type: {}", path, e.what()));
    }
    const SafetensorsFile file = SafetensorsFile::open(join(dir, kOptimizerFile));
    const int64_t P = optimizer.m().numel();
    std::vector<float> host(static_cast<size_t>(P));
    file.read_f32(kMomentM, {P}, host.data());
    copy_from_host(optimizer.m(), host.data());
    file.read_f32(kMomentV, {P}, host.data());
    copy_from_host(optimizer.v(), host.data());
    return s;
}

}  // namespace rpt
