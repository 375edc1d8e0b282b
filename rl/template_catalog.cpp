// The built-in prompt templates: "compact" (special tokens, for models trained from
// scratch) and the paper's seven next-token-reasoning prompts v0-v6 (arXiv 2506.08007,
// Table 10; v0 is the one its RPT runs use), which are data: rl/templates/<name>.json,
// compiled in by the build (tools/embed-templates.sh) and loadable as files as well.
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "model/file_io.h"
#include "rl/special_tokens.h"
#include "rl/templates.h"

namespace rpt {
namespace {

// {name, JSON text} of every rl/templates/*.json, in name order.
constexpr std::pair<const char*, const char*> kTemplateFiles[] = {
#include "template_files.inc"
};

// Earlier names of built-in templates, still accepted.
constexpr std::pair<const char*, const char*> kAliases[] = {{"v0-r1-distill", "v0"}};

PromptTemplate compact_template() {
    PromptTemplate compact;
    compact.name = "compact";
    compact.prompt_prefix = kContextOpen;
    compact.prompt_suffix = kThinkOpen;
    compact.think_close = kThinkClose;
    compact.answer_open = kAnswerOpen;
    compact.answer_close = kAnswerClose;
    compact.stop = {kAnswerClose, kEndOfText};
    return compact;
}

std::vector<PromptTemplate> builtin_templates() {
    std::vector<PromptTemplate> all = {compact_template()};
    for (const auto& [name, text] : kTemplateFiles) {
        const std::string source = fmt::format("rl/templates/{}.json", name);
        all.push_back(PromptTemplate::from_json(nlohmann::json::parse(text), source));
    }
    return all;
}

}  // namespace

std::vector<std::string> builtin_template_names() {
    std::vector<std::string> names;
    for (const PromptTemplate& t : builtin_templates()) names.push_back(t.name);
    return names;
}

std::vector<std::string> paper_template_names() {
    std::vector<std::string> names;
    for (const auto& file : kTemplateFiles) names.push_back(file.first);
    return names;
}

PromptTemplate load_template(const std::string& name_or_path) {
    std::string name = name_or_path;
    for (const auto& [alias, target] : kAliases)
        if (name == alias) name = target;
    for (const PromptTemplate& t : builtin_templates())
        if (t.name == name) return t;
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(read_file(name_or_path));
    } catch (const nlohmann::json::exception& e) {
        throw std::invalid_argument(fmt::format("{}: invalid JSON: {}", name_or_path, e.what()));
    }
    return PromptTemplate::from_json(j, name_or_path);
}

}  // namespace rpt
