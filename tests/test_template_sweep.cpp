// Template sweeps (rl/template_sweep.h) and the per-split Random@1 / Pass@k of
// evaluation with several samples per position (rl/evaluate.h).
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "model/bpe_trainer.h"
#include "rl/pass_at_k.h"
#include "rl/special_tokens.h"
#include "rl/template_sweep.h"
#include "rl/templates.h"
#include "rl/token_data.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

// The R1-Distill end of sentence, the paper templates' stop string: one token here.
const char* const kR1EndOfSentence = "<｜end▁of▁sentence｜>";

TEST(TemplateSweep, NamesAllOrAList) {
    EXPECT_EQ(template_sweep_names("all"), paper_template_names());
    EXPECT_EQ(template_sweep_names("all").size(), 7u);
    EXPECT_EQ(template_sweep_names("compact,v3,my.json"), (std::vector<std::string>{"compact", "v3", "my.json"}));
    EXPECT_EQ(template_sweep_names("v1"), (std::vector<std::string>{"v1"}));
    EXPECT_THROW(template_sweep_names(""), std::invalid_argument);
    EXPECT_THROW(template_sweep_names("v1,,v2"), std::invalid_argument);
    EXPECT_THROW(template_sweep_names("v1,"), std::invalid_argument);
    EXPECT_THROW(template_sweep_names("v1,v2,v1"), std::invalid_argument);
}

// Three positions (entropy 0.7, 1.2, 2.0: easy holds all, medium two, hard one) with
// hand-set sample outcomes.
TEST(TemplateSweep, SplitRandomAtOneAndPassAtKByHand) {
    const std::vector<ScoredPosition> positions = {{0, 1, 0.7f}, {0, 2, 1.2f}, {0, 3, 2.0f}};
    std::vector<PositionOutcome> outcomes(3);
    const int correct[] = {0, 2, 4};  // of 4 samples each
    for (size_t i = 0; i < 3; ++i) {
        outcomes[i].samples = 4;
        outcomes[i].correct = correct[i];
        outcomes[i].formatted = 4;
        outcomes[i].reward = float(correct[i]) / 4.0f;
    }
    outcomes[0].formatted = 2;
    const SplitResult easy = summarize_split("easy", 0.5f, positions, outcomes, 2);
    const SplitResult medium = summarize_split("medium", 1.0f, positions, outcomes, 2);
    const SplitResult hard = summarize_split("hard", 1.5f, positions, outcomes, 2);
    EXPECT_EQ(easy.positions, 3);
    EXPECT_EQ(medium.positions, 2);
    EXPECT_EQ(hard.positions, 1);
    // Random@1: (0 + 0.5 + 1) / 3, (0.5 + 1) / 2, 1.
    EXPECT_NEAR(easy.reasoning, 0.5, 1e-9);
    EXPECT_NEAR(medium.reasoning, 0.75, 1e-9);
    EXPECT_NEAR(hard.reasoning, 1.0, 1e-9);
    // Pass@2 of 4 samples: c = 0 -> 0; c = 2 -> 1 - C(2,2)/C(4,2) = 5/6; c = 4 -> 1.
    EXPECT_NEAR(easy.pass_at_k, (0 + 5.0 / 6.0 + 1) / 3, 1e-9);
    EXPECT_NEAR(medium.pass_at_k, (5.0 / 6.0 + 1) / 2, 1e-9);
    EXPECT_NEAR(hard.pass_at_k, 1.0, 1e-9);
    EXPECT_EQ(easy.pass_k, 2);
    EXPECT_NEAR(easy.format, (0.5 + 1 + 1) / 3, 1e-9);
    // No reasoning mode: no Pass@k.
    EXPECT_EQ(summarize_split("easy", 0.5f, positions, outcomes, 0).pass_at_k, 0.0);
}

TEST(TemplateSweep, SamplesNeedSamplingAndKWithinThem) {
    EvalOptions o;
    o.samples = 4;
    EXPECT_THROW(check_eval_samples(o), std::invalid_argument);  // greedy
    o.greedy = false;
    EXPECT_NO_THROW(check_eval_samples(o));
    o.pass_k = 5;
    EXPECT_THROW(check_eval_samples(o), std::invalid_argument);
    o.pass_k = 4;
    EXPECT_NO_THROW(check_eval_samples(o));
    o.samples = 0;
    EXPECT_THROW(check_eval_samples(o), std::invalid_argument);
}

// A small random model whose tokenizer knows the paper templates' stop token.
struct SweepFixture {
    Tokenizer tokenizer;
    std::vector<std::vector<int32_t>> docs;
    std::vector<ScoredPosition> positions;
    std::unique_ptr<Transformer> model;

    SweepFixture() : tokenizer(make_tokenizer()) {
        docs = tokenize_documents(texts(), tokenizer);
        for (int d = 0; d < 3; ++d) {
            const int32_t len = int32_t(docs[size_t(d)].size());
            EXPECT_GE(len, 4);
            for (int32_t p : {len / 2, len - 1}) positions.push_back({d, p, d == 0 ? 0.8f : 1.6f});
        }
        test::TinyShape shape;
        shape.vocab = tokenizer.vocab_size();
        shape.context = 1024;  // the longest template is ~800 tokens with this vocabulary
        model = std::make_unique<Transformer>(test::tiny_config(shape), OpContext{});
        model->init_weights(11);
    }
    static std::vector<std::string> texts() {
        return {"12 + 30 = 42, so 42 - 2 = 40 and 40 / 4 = 10.", "The cat sat on the mat; the dog sat on the log.",
                "alpha beta gamma delta alpha beta gamma delta alpha beta"};
    }
    static Tokenizer make_tokenizer() {
        Tokenizer t = train_bpe(texts(), 300, default_special_tokens());
        t.add_special_token(kR1EndOfSentence);
        return t;
    }
};

EvalOptions sampled(int samples) {
    EvalOptions o;
    o.greedy = false;
    o.samples = samples;
    o.max_new_tokens = 6;
    o.context_tokens = 12;
    o.seed = 5;
    return o;
}

TEST(TemplateSweep, EveryPaperTemplateOnTheSamePositions) {
    SweepFixture f;
    const TemplateSweep sweep =
        sweep_templates(*f.model, f.tokenizer, template_sweep_names("all"), f.docs, f.positions, EntropySplits{},
                        sampled(3));
    ASSERT_EQ(sweep.rows.size(), 7u);
    EXPECT_EQ(sweep.samples, 3);
    EXPECT_EQ(sweep.pass_k, 3);
    for (const TemplateSweepRow& row : sweep.rows) {
        ASSERT_EQ(row.report.outcomes.size(), f.positions.size());
        EXPECT_EQ(row.report.samples, 3);
        double random_at_1 = 0, pass = 0;
        for (const PositionOutcome& o : row.report.outcomes) {
            EXPECT_EQ(o.samples, 3);
            random_at_1 += o.reward;
            pass += pass_at_k(3, o.correct, 3);
        }
        EXPECT_EQ(row.report.easy().positions, 6);
        EXPECT_EQ(row.report.hard().positions, 4);
        EXPECT_NEAR(row.report.easy().reasoning, random_at_1 / 6, 1e-6);
        EXPECT_NEAR(row.report.easy().pass_at_k, pass / 6, 1e-9);
    }
    const nlohmann::json j = template_sweep_json(sweep);
    EXPECT_EQ(j["templates"].size(), 7u);
    EXPECT_EQ(j["order"], nlohmann::json(paper_template_names()));
    EXPECT_TRUE(j["templates"]["v4"]["splits"]["hard"].contains("pass_at_k"));
    const std::string table = describe_template_sweep(sweep);
    EXPECT_NE(table.find("v6"), std::string::npos);
    EXPECT_NE(table.find("P@3"), std::string::npos);
}

TEST(TemplateSweep, TheSameTemplateTwiceGivesTheSameNumbers) {
    SweepFixture f;
    const TemplateSweep sweep = sweep_templates(*f.model, f.tokenizer, {"v0", "v0-r1-distill"}, f.docs, f.positions,
                                                EntropySplits{}, sampled(4));
    ASSERT_EQ(sweep.rows.size(), 2u);
    for (size_t i = 0; i < f.positions.size(); ++i) {
        EXPECT_EQ(sweep.rows[0].report.outcomes[i].response, sweep.rows[1].report.outcomes[i].response);
        EXPECT_EQ(sweep.rows[0].report.outcomes[i].correct, sweep.rows[1].report.outcomes[i].correct);
    }
}

TEST(TemplateSweep, AnUnusableTemplateFailsBeforeAnyRollout) {
    SweepFixture f;
    EXPECT_ANY_THROW(sweep_templates(*f.model, f.tokenizer, {"compact", "nosuch-template.json"}, f.docs,
                                     f.positions, EntropySplits{}, sampled(2)));
    // A tokenizer without the R1 stop token cannot bind the paper's templates.
    Tokenizer plain = train_bpe(SweepFixture::texts(), 300, default_special_tokens());
    EXPECT_ANY_THROW(sweep_templates(*f.model, plain, {"compact", "v2"}, f.docs, f.positions, EntropySplits{},
                                     sampled(2)));
}

}  // namespace
}  // namespace rpt
