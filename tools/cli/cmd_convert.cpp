// rpt convert: rewrites a checkpoint or Hugging Face Qwen2 directory with its weights
// in another dtype (f32, bf16 or f16) as one model.safetensors: e.g. a bf16 (and/or
// sharded) R1-Distill download into an fp32 directory for training, or an fp32 rpt
// checkpoint into bf16 for release. Every tensor is checked against config.json on the
// way. config.json keeps its fields (only the dtype is updated); tokenizer and
// generation files are copied verbatim; trainer state is not carried over.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "model/checkpoint.h"
#include "model/file_io.h"
#include "model/output_guard.h"
#include "model/parameters.h"
#include "model/safetensors.h"
#include "tools/cli/commands.h"
#include "tools/cli/output_flags.h"

namespace rpt::cli {
namespace {

namespace fs = std::filesystem;

// Files that describe the model besides its weights, copied unchanged when present.
constexpr const char* kCopiedFiles[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                        "generation_config.json"};

struct DtypeNames {
    const char* flag;         // --dtype value
    const char* safetensors;  // dtype in the file
    const char* torch;        // config.json torch_dtype
};
constexpr DtypeNames kDtypes[] = {{"f32", "F32", "float32"}, {"bf16", "BF16", "bfloat16"}, {"f16", "F16", "float16"}};

struct ConvertFlags {
    std::string in, out, dtype = "f32";
    bool overwrite = false;
    bool force = false;  // the earlier name of --overwrite, kept for scripts
};

const DtypeNames& dtype_names(const std::string& flag) {
    for (const DtypeNames& d : kDtypes)
        if (flag == d.flag) return d;
    throw std::invalid_argument(fmt::format("--dtype {}: choose f32, bf16 or f16", flag));
}

void run_convert(const ConvertFlags& f) {
    const DtypeNames& dtype = dtype_names(f.dtype);
    if (fs::exists(f.out) && fs::exists(f.in) && fs::equivalent(f.in, f.out))
        throw std::invalid_argument("--in and --out name the same directory");
    claim_directory_output("--out", f.out, kCheckpointOutput, f.overwrite || f.force);

    const ModelConfig config = read_checkpoint_config(f.in);
    const ParameterLayout layout(config);
    std::vector<float> host(static_cast<size_t>(layout.total()));
    read_checkpoint_tensors(f.in, layout, host.data());

    const std::string tmp = fmt::format("{}.tmp-{}", f.out, getpid());
    fs::remove_all(tmp);
    ensure_directory(tmp);
    try {
        write_output_marker(tmp, kCheckpointOutput);  // rpt may replace it on a rerun
        nlohmann::json j = nlohmann::json::parse(read_file((fs::path(f.in) / "config.json").string()));
        j["torch_dtype"] = dtype.torch;
        if (j.contains("dtype")) j["dtype"] = dtype.torch;  // transformers 5 spelling
        write_file_atomic((fs::path(tmp) / "config.json").string(), j.dump(2) + "\n");
        std::vector<SafetensorsTensorRef> tensors;
        for (const ParameterEntry& e : layout.entries()) tensors.push_back({e.name, e.shape, host.data() + e.offset});
        write_safetensors((fs::path(tmp) / "model.safetensors").string(), tensors, {{"format", "pt"}}, dtype.safetensors);
        for (const char* name : kCopiedFiles) {
            const fs::path src = fs::path(f.in) / name;
            if (fs::exists(src)) fs::copy_file(src, fs::path(tmp) / name);
        }
        publish_directory(tmp, f.out);
    } catch (...) {
        std::error_code ec;
        fs::remove_all(tmp, ec);
        throw;
    }
    std::fprintf(stderr, "wrote %s: %zu tensors, %.2fM parameters as %s\n", f.out.c_str(), layout.entries().size(),
                 double(layout.total()) * 1e-6, dtype.safetensors);
}

}  // namespace

void add_convert_command(CLI::App& app) {
    auto f = std::make_shared<ConvertFlags>();
    CLI::App* cmd = app.add_subcommand("convert", "rewrite a model directory with its weights in another dtype");
    cmd->add_option("--in", f->in, "checkpoint or Hugging Face Qwen2 directory (single file or sharded)")->required();
    cmd->add_option("--out", f->out, "output directory")->required();
    cmd->add_option("--dtype", f->dtype, "weights dtype: f32, bf16 or f16")->check(CLI::IsMember({"f32", "bf16", "f16"}));
    add_overwrite_flag(*cmd, f->overwrite, OutputRule::checkpoint);
    cmd->add_flag("--force", f->force, "the same as --overwrite")->group("");
    cmd->callback([f]() { run_convert(*f); });
}

}  // namespace rpt::cli
