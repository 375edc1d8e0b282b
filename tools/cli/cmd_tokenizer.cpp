// rpt tokenizer train: learns byte-level BPE merges for a vocabulary size from a corpus.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "model/bpe_trainer.h"
#include "rl/special_tokens.h"
#include "model/output_guard.h"
#include "tools/cli/commands.h"
#include "tools/cli/corpus_flags.h"
#include "tools/cli/output_flags.h"

namespace rpt::cli {
namespace {

struct TokenizerFlags {
    CorpusFlags corpus;
    int vocab = 512;
    std::string out;
    bool overwrite = false;
};

}  // namespace

void add_tokenizer_command(CLI::App& app) {
    CLI::App* tok = app.add_subcommand("tokenizer", "tokenizers");
    tok->require_subcommand(1);
    CLI::App* train = tok->add_subcommand("train", "learn a byte-level BPE tokenizer (Hugging Face tokenizer.json)");
    auto flags = std::make_shared<TokenizerFlags>();
    flags->corpus.add_to(*train);
    train->add_option("--vocab", flags->vocab, "vocabulary size, special tokens included")
        ->check(CLI::Range(256 + 8, 1 << 20));
    train->add_option("--out", flags->out, "output tokenizer.json")->required();
    add_overwrite_flag(*train, flags->overwrite, OutputRule::file);
    train->callback([flags]() {
        claim_file_output("--out", flags->out, flags->overwrite);
        const auto t0 = std::chrono::steady_clock::now();
        const Tokenizer tokenizer = train_bpe(flags->corpus.load(), flags->vocab, default_special_tokens());
        tokenizer.save(flags->out);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::fprintf(stderr, "wrote %s: %d tokens, %d merges (%.1f s)\n", flags->out.c_str(), tokenizer.vocab_size(),
                     tokenizer.num_merges(), s);
    });
}

}  // namespace rpt::cli
