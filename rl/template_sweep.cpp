#include "rl/template_sweep.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "rl/templates.h"

namespace rpt {

std::vector<std::string> template_sweep_names(const std::string& list) {
    if (list == "all") return paper_template_names();
    std::vector<std::string> names;
    size_t start = 0;
    while (start <= list.size()) {
        const size_t comma = std::min(list.find(',', start), list.size());
        const std::string name = list.substr(start, comma - start);
        if (name.empty())
            throw std::invalid_argument(fmt::format("--template-sweep '{}': an empty template name", list));
        if (std::find(names.begin(), names.end(), name) != names.end())
            throw std::invalid_argument(fmt::format("--template-sweep '{}': template '{}' is named twice", list, name));
        names.push_back(name);
        start = comma + 1;
    }
    return names;
}

TemplateSweep sweep_templates(Transformer& model, const Tokenizer& tokenizer, const std::vector<std::string>& names,
                              const std::vector<std::vector<int32_t>>& docs,
                              const std::vector<ScoredPosition>& positions, const EntropySplits& splits,
                              EvalOptions options) {
    // Phase 1: every template loads and binds, before any costs a rollout.
    options.reasoning = true;
    check_eval_samples(options);
    std::vector<PromptTemplate> formats;
    for (const std::string& name : names) {
        formats.push_back(load_template(name));
        (void)bind_template(formats.back(), tokenizer);
    }
    // Phase 2: the same positions, sampler seeds and options under each.
    TemplateSweep sweep;
    sweep.samples = options.samples;
    sweep.pass_k = options.pass_k > 0 ? options.pass_k : options.samples;
    for (size_t i = 0; i < names.size(); ++i)
        sweep.rows.push_back(
            {names[i], evaluate_positions(model, tokenizer, formats[i], docs, positions, splits, options)});
    return sweep;
}

nlohmann::json template_sweep_json(const TemplateSweep& sweep) {
    nlohmann::json j = {{"samples", sweep.samples},
                        {"pass_k", sweep.pass_k},
                        {"order", nlohmann::json::array()},
                        {"templates", nlohmann::json::object()}};
    for (const TemplateSweepRow& row : sweep.rows) {
        j["order"].push_back(row.name);
        nlohmann::json& t = j["templates"][row.name];
        t["mode"] = row.report.mode;
        for (const SplitResult& s : row.report.splits)
            t["splits"][s.name] = {{"random_at_1", s.reasoning}, {"pass_at_k", s.pass_at_k}, {"format", s.format},
                                   {"standard", s.standard},     {"positions", s.positions}};
    }
    return j;
}

std::string describe_template_sweep(const TemplateSweep& sweep) {
    if (sweep.rows.empty()) return "";
    const std::vector<SplitResult>& first = sweep.rows[0].report.splits;
    std::string header = fmt::format("{:<16}", "template");
    for (const SplitResult& s : first)
        header += fmt::format(" | {:>10} {:>11}", fmt::format("{} R@1", s.name),
                              fmt::format("{} P@{}", s.name, sweep.pass_k));
    std::string out = header + "\n" + std::string(header.size(), '-') + "\n";
    for (const TemplateSweepRow& row : sweep.rows) {
        std::string line = fmt::format("{:<16}", row.name);
        for (const SplitResult& s : row.report.splits)
            line += fmt::format(" | {:>10.1f} {:>11.1f}", 100.0 * s.reasoning, 100.0 * s.pass_at_k);
        out += line + "\n";
    }
    out += fmt::format("(% of positions; R@1 = Random@1, the mean prefix reward of single samples; P@{} = unbiased "
                       "Pass@{} from {} rollouts per position, {}; positions per split:",
                       sweep.pass_k, sweep.pass_k, sweep.samples, sweep.rows[0].report.mode);
    for (const SplitResult& s : first) out += fmt::format(" {} {}", s.name, s.positions);
    return out + ")\n";
}

}  // namespace rpt
