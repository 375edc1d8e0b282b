// End to end RPT on a task whose next token is fully determined by earlier text:
// documents repeat a random phrase, so every token of a repetition can be copied from
// the first occurrence. A small model pre-trained briefly (with template-formatted
// examples, so it answers in format) must raise its mean reward under GRPO.
#include <gtest/gtest.h>

#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "kernels/rng.h"
#include "model/bpe_trainer.h"
#include "rl/ntp_trainer.h"
#include "rl/rpt_trainer.h"
#include "rl/special_tokens.h"
#include "rl/templates.h"
#include "rl/token_data.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

constexpr int kWordsPerPhrase = 4;
constexpr int kRepeats = 3;

std::vector<std::string> repeat_corpus(uint64_t seed, int n) {
    std::vector<std::string> docs;
    for (int d = 0; d < n; ++d) {
        std::string phrase;
        for (int w = 0; w < kWordsPerPhrase; ++w) {
            phrase += ' ';
            for (int c = 0; c < 3; ++c) phrase += char('a' + hash_keys(seed, d, w, c) % 8);
        }
        std::string doc = "Say:";
        for (int r = 0; r < kRepeats; ++r) doc += phrase + ".";
        docs.push_back(doc);
    }
    return docs;
}

TEST(RptEndToEnd, RewardRisesOnADeterminedTask) {
    const std::vector<std::string> texts = repeat_corpus(5, 600);
    const Tokenizer tokenizer = train_bpe(texts, 320, default_special_tokens());
    const int32_t eot = *tokenizer.token_id(kEndOfText);
    const PromptTemplate format = load_template("compact");
    const TemplateTokens tt = bind_template(format, tokenizer);
    const auto docs = tokenize_documents(texts, tokenizer);

    test::TinyShape shape;
    shape.vocab = tokenizer.vocab_size();
    shape.hidden = 64;
    shape.ffn = 128;
    shape.context = 96;
    Transformer model(test::tiny_config(shape), OpContext{});
    model.init_weights(3);

    // Pre-train briefly on the documents plus formatted examples.
    TokenizedCorpus corpus = tokenize_corpus(texts, tokenizer, eot, 5, 0.0);
    for (uint64_t i = 0; i < 3000; ++i) {
        const auto& doc = docs[hash_keys(7, i) % docs.size()];
        const size_t position = 1 + hash_keys(8, i) % (doc.size() - 1);
        const auto ex = format_example(tt, doc, position, 32, 1);
        corpus.train_stream.insert(corpus.train_stream.end(), ex.begin(), ex.end());
        corpus.train_stream.push_back(eot);
    }
    AdamW opt(model.layout(), OpContext{});
    TrainerState state;
    NtpOptions ntp;
    ntp.batch_size = 8;
    ntp.seq_len = 64;
    ntp.steps = 120;
    ntp.warmup_steps = 5;
    ntp.adamw.lr = 3e-3f;
    ntp.eval_every = 0;
    ntp.eval_docs = 1;
    ntp.quiet = true;
    train_ntp(model, opt, tokenizer, corpus, ntp, state);

    // RPT on a few positions inside the repetitions (determined by the first occurrence),
    // revisited every step, so the trend is not drowned by which contexts were drawn.
    std::vector<ScoredPosition> positions;
    for (size_t d = 0; d < 4; ++d) positions.push_back({int64_t(d), int32_t(docs[d].size() - 3), 1.0f});
    RptOptions o;
    o.contexts = 8;
    o.group_size = 8;
    o.max_new_tokens = 5;
    o.context_tokens = 32;
    o.steps = 30;
    o.adamw.lr = 1e-3f;
    o.adamw.max_grad_norm = 1.0f;
    o.quiet = true;
    AdamW rl_opt(model.layout(), OpContext{});
    TrainerState rl_state;
    std::vector<double> rewards;
    train_rpt(model, rl_opt, tokenizer, format, docs, positions, o, rl_state,
              [&](const RptStepRecord& rec, nlohmann::json&) { rewards.push_back(rec.reward_mean); });
    ASSERT_EQ(rewards.size(), 30u);
    const double first = std::accumulate(rewards.begin(), rewards.begin() + 8, 0.0) / 8;
    const double last = std::accumulate(rewards.end() - 8, rewards.end(), 0.0) / 8;
    std::printf("mean reward: first 8 steps %.3f, last 8 steps %.3f\n", first, last);
    // Measured (deterministic on the CPU): 0.127 over the first 8 steps, 0.354 over the
    // last 8 (and about 0.8 after 40 steps); the bar asks for a clear rise, with margin.
    EXPECT_GT(last, first + 0.15) << "mean reward, first 8 steps " << first << ", last 8 steps " << last;
}

}  // namespace
}  // namespace rpt
