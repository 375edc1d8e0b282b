#include "tools/cli/corpus_flags.h"

#include <cstdio>

#include "rl/corpus.h"
#include "rl/synth_corpus.h"
#include "tools/cli/flag_checks.h"

namespace rpt::cli {

void CorpusFlags::add_to(CLI::App& command) {
    add_file_flags_to(command);
    command.add_option("--synth-docs", synth_docs, "documents of the built-in corpus")->check(positive());
    command.add_option("--synth-seed", synth_seed, "seed of the built-in corpus");
}

void CorpusFlags::add_file_flags_to(CLI::App& command) {
    command.add_option("--corpus", path, "JSONL corpus (default: the built-in synthetic math corpus)");
    command.add_option("--corpus-format", format, "JSONL layout: text, gsm8k (question+answer), omni-math")
        ->check(CLI::IsMember({"text", "gsm8k", "omni-math"}));
    command.add_option("--text-field", text_field, "JSON field holding the document text (format text)");
    command.add_flag("--skip-malformed", skip_malformed, "skip and count malformed JSONL lines instead of failing");
}

std::vector<std::string> CorpusFlags::load() const {
    if (path.empty()) {
        std::vector<std::string> docs = synth_corpus(synth_seed, synth_docs);
        std::fprintf(stderr, "corpus: %zu built-in synthetic documents (seed %llu)\n", docs.size(),
                     (unsigned long long)synth_seed);
        return docs;
    }
    CorpusOptions options = corpus_preset(format);
    if (!text_field.empty()) options.text_field = text_field;
    options.skip_malformed = skip_malformed;
    size_t skipped = 0;
    std::vector<std::string> docs = read_jsonl_corpus(path, options, &skipped);
    std::fprintf(stderr, "corpus: %zu documents from %s%s\n", docs.size(), path.c_str(),
                 skipped ? (" (" + std::to_string(skipped) + " malformed lines skipped)").c_str() : "");
    return docs;
}

}  // namespace rpt::cli
