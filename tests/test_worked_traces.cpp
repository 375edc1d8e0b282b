// Worked traces for the built-in corpus: which positions are computed values, the
// scratchpads written for them (every line of every trace over the corpus checks), the
// checker catching a wrong step, and the examples' token layout.
#include <gtest/gtest.h>

#include <string>

#include "model/bpe_trainer.h"
#include "rl/reasoning_examples.h"
#include "rl/special_tokens.h"
#include "rl/synth_corpus.h"
#include "rl/worked_traces.h"

namespace rpt {
namespace {

TEST(WorkedTraces, RecognisesAValueBeingWritten) {
    auto v = computed_value_at("Problem: ...\nStop 2: 1042 - 460 = ");
    ASSERT_TRUE(v);
    EXPECT_EQ(v->expression, "1042 - 460");
    EXPECT_EQ(v->result, "582");
    EXPECT_EQ(v->rest, "582");
    v = computed_value_at("Stop 2: 1042 - 460 = 5");
    ASSERT_TRUE(v);
    EXPECT_EQ(v->rest, "82");
    v = computed_value_at("The pens cost 3 * $1.25 = $");
    ASSERT_TRUE(v);
    EXPECT_EQ(v->result, "$3.75");
    EXPECT_EQ(v->rest, "3.75");
    v = computed_value_at("20% of 300: 300 * 20 / 100 = ");
    ASSERT_TRUE(v);
    EXPECT_EQ(v->result, "60");
    v = computed_value_at("Now left to right: 45 + 3 * 12 = ");  // precedence, not left to right
    ASSERT_TRUE(v);
    EXPECT_EQ(v->result, "81");
}

TEST(WorkedTraces, OtherPositionsAreNotComputed) {
    EXPECT_FALSE(computed_value_at("Stop 2: 1042 - 460 = 582"));   // complete
    EXPECT_FALSE(computed_value_at("Stop 2: 1042 - 460 ="));       // the next token is a space
    EXPECT_FALSE(computed_value_at("Stop 2: 1042 - 460 = 57"));    // not the result
    EXPECT_FALSE(computed_value_at("So 5000 = "));                 // nothing to compute
    EXPECT_FALSE(computed_value_at("Time left: 105 / 16 = "));     // inexact
    EXPECT_FALSE(computed_value_at("a = 3 - 7 = "));               // negative
    EXPECT_FALSE(computed_value_at("Stop 2: 1042 - 460 = 582.\n"));  // a new line
}

TEST(WorkedTraces, SubtractionColumnsBorrowInTheCorpusWords) {
    const auto v = computed_value_at("1042 - 460 = ");
    ASSERT_TRUE(v);
    EXPECT_EQ(worked_trace(*v, 400),
              "ones: 2 - 0 = 2.\n"
              "tens: 4 < 6 so borrow, 14 - 6 = 8.\n"
              "hundreds: 0 needs a borrow, 10 - 1 = 9, 9 - 4 = 5.\n"
              "thousands: 1 - 1 = 0 after the borrow, 0 - 0 = 0.\n"
              "So 1042 - 460 = 582.\n");
}

TEST(WorkedTraces, AdditionMultiplicationDivisionAndMoney) {
    EXPECT_EQ(worked_trace(*computed_value_at("969 + 73 = "), 400),
              "ones: 9 + 3 = 12, write 2 carry 1.\ntens: 6 + 7 + 1 = 14, write 4 carry 1.\n"
              "hundreds: 9 + 1 = 10, write 0 carry 1.\nthousands: write the carry 1.\nSo 969 + 73 = 1042.\n");
    EXPECT_EQ(worked_trace(*computed_value_at("15 * 3 = "), 400),
              "ones: 5 * 3 = 15, write 5 carry 1.\ntens: 1 * 3 + 1 = 4, write 4.\nSo 15 * 3 = 45.\n");
    EXPECT_EQ(worked_trace(*computed_value_at("4986 / 18 = "), 400),
              "4 is too small, so start with 49.\n18 into 49 goes 2 times: 2 * 18 = 36, 49 - 36 = 13.\n"
              "Bring down the 8 to make 138.\n18 into 138 goes 7 times: 7 * 18 = 126, 138 - 126 = 12.\n"
              "Bring down the 6 to make 126.\n18 into 126 goes 7 times: 7 * 18 = 126, 126 - 126 = 0.\n"
              "So 4986 / 18 = 277.\n");
    // Money is worked on cents, then restated in dollars.
    EXPECT_EQ(worked_trace(*computed_value_at("3 * $1.25 = "), 400),
              "ones: 5 * 3 = 15, write 5 carry 1.\ntens: 2 * 3 + 1 = 7, write 7.\nhundreds: 1 * 3 = 3, write 3.\n"
              "So 125 * 3 = 375.\nSo 3 * $1.25 = $3.75.\n");
    EXPECT_EQ(worked_trace(*computed_value_at("6000 / 100 = "), 400), "So 6000 / 100 = 60.\n");
    EXPECT_EQ(worked_trace(*computed_value_at("1130 * 10 = "), 400), "So 1130 * 10 = 11300.\n");
    EXPECT_EQ(worked_trace(*computed_value_at("4 + 3 = "), 400), "");  // single digits: a table
}

TEST(WorkedTraces, LongOperationsFallBackToCoarseSteps) {
    const auto v = computed_value_at("1234 * 56 = ");
    ASSERT_TRUE(v);
    EXPECT_EQ(worked_trace(*v, 1000),
              "1234 * 6 = 7404.\n1234 * 50 = 61700.\nRunning sum: 7404 + 61700 = 69104.\nSo 1234 * 56 = 69104.\n");
    const auto sum = computed_value_at("9 * 18 - 44 / 4 = ");
    ASSERT_TRUE(sum);
    const std::string fine = worked_trace(*sum, 1000), coarse = worked_trace(*sum, 60);
    EXPECT_GT(fine.size(), 60u);
    EXPECT_EQ(coarse, "So 9 * 18 = 162.\nSo 44 / 4 = 11.\nSo 162 - 11 = 151.\n");
    EXPECT_EQ(worked_trace(*sum, 20), "");
    // Past the corpus's place names (hundred-thousands) only coarse steps are written.
    EXPECT_EQ(worked_trace(*computed_value_at("1234567 + 7654321 = "), 1000), "So 1234567 + 7654321 = 8888888.\n");
}

TEST(WorkedTraces, CheckerCountsCorrectAndWrongEquations) {
    EXPECT_TRUE(check_trace(worked_trace(*computed_value_at("1042 - 460 = "), 400)).all_correct());
    // Several equations on one line, each checked.
    const TraceCheck line = check_trace("tens: 0 needs a borrow, 10 - 1 = 9, 9 - 6 = 4.\n");
    EXPECT_EQ(line.equations, 2);
    EXPECT_EQ(line.correct, 1);
    const TraceCheck wrong = check_trace("ones: 2 - 0 = 2.\ntens: 14 - 6 = 9.\nSo 1042 - 460 = 582.");
    EXPECT_EQ(wrong.equations, 3);
    EXPECT_EQ(wrong.correct, 2);
    EXPECT_FALSE(wrong.all_correct());
    EXPECT_EQ(check_trace("4+5=9\n$2.50 - $1.25 = $1.25.\n18 into 49 goes 2 times: 2 * 18 = 36,").correct, 3);
    EXPECT_EQ(check_trace("1=+\n==\nx=3").equations, 0);  // not equations over numbers
    // Numbers no corpus writes (a model can): no overflow, just not correct.
    EXPECT_EQ(check_trace("999999999999999*999999999999999=1\n9999999999999999+1=0").correct, 0);
    EXPECT_FALSE(check_trace("").all_correct());
    EXPECT_FALSE(check_trace("just words\n").all_correct());
}

// Every trace over a slice of the corpus: its equations all hold, its last line ends
// with the value, and the document continues with the value's remaining characters.
TEST(WorkedTraces, EveryTraceOverTheCorpusChecks) {
    const std::vector<std::string> texts = synth_corpus(7, 300);
    const Tokenizer tok = train_bpe(texts, 512, default_special_tokens());
    size_t computed = 0, traced = 0;
    for (const std::string& text : texts) {
        const std::vector<int32_t> doc = tok.encode(text);
        for (const ComputedPosition& c : computed_positions(doc, tok)) {
            ++computed;
            const std::string trace = worked_trace(c.value, kDefaultTraceChars);
            EXPECT_LE(trace.size(), kDefaultTraceChars);
            if (trace.empty()) continue;
            ++traced;
            EXPECT_TRUE(check_trace(trace).all_correct()) << trace;
            const std::string last_line = "= " + c.value.result + ".\n";
            EXPECT_EQ(trace.compare(trace.size() - last_line.size(), last_line.size(), last_line), 0) << trace;
        }
    }
    EXPECT_GT(computed, 300u * 5);  // several computed values per document
    EXPECT_GT(traced, computed / 3);
}

TEST(ReasoningExamples, LayoutIsPromptTraceAnswer) {
    const std::vector<std::string> texts = {"Stop 2: 1042 - 460 = 582.\nAnswer: 582\n"};
    const Tokenizer tok = train_bpe(texts, 300, default_special_tokens());
    const PromptTemplate format = load_template("compact");
    const TemplateTokens tt = bind_template(format, tok);
    const std::vector<int32_t> doc = tok.encode(texts[0]);
    const std::vector<ComputedPosition> computed = computed_positions(doc, tok);
    ASSERT_FALSE(computed.empty());
    const ComputedPosition& first = computed.front();
    EXPECT_EQ(first.value.rest, "582");
    ReasoningMix mix;
    mix.context_tokens = 64;
    const std::vector<int32_t> ex = reasoning_example(tt, tok, doc, first.position, &first.value, mix);
    const std::string text = tok.decode(ex);
    EXPECT_EQ(text, "<ctx>Stop 2: 1042 - 460 = <think>" + worked_trace(first.value, mix.max_trace_chars) +
                        "</think><answer>5</answer>");  // the answer is the next token, as in standard mode
    // Without a value: an empty trace and one true next token.
    EXPECT_EQ(tok.decode(reasoning_example(tt, tok, doc, 2, nullptr, mix)), "<ctx>" + tok.decode({doc[0], doc[1]}) +
                                                                              "<think></think><answer>" +
                                                                              tok.decode({doc[2]}) + "</answer>");
}

TEST(ReasoningExamples, MixReachesTheShareWithTraces) {
    const std::vector<std::string> texts = synth_corpus(3, 200);
    const Tokenizer tok = train_bpe(texts, 512, default_special_tokens());
    const TemplateTokens tt = bind_template(load_template("compact"), tok);
    std::vector<std::vector<int32_t>> docs;
    std::vector<int32_t> stream;
    for (const std::string& t : texts) {
        docs.push_back(tok.encode(t));
        stream.insert(stream.end(), docs.back().begin(), docs.back().end());
    }
    const size_t before = stream.size();
    ReasoningMix mix;
    mix.end_of_text = *tok.token_id(kEndOfText);
    mix.share = 0.3f;
    mix.context_tokens = 48;
    mix.seed = 5;
    const ReasoningMixStats stats = mix_reasoning_examples(stream, docs, tok, tt, mix);
    EXPECT_EQ(stream.size(), before + stats.tokens);
    EXPECT_NEAR(double(stats.tokens) / double(stream.size()), 0.3, 0.02);
    EXPECT_GT(stats.with_trace, stats.examples / 4);
    EXPECT_LT(stats.with_trace, stats.examples);
    std::vector<int32_t> again(stream.begin(), stream.begin() + int64_t(before));
    mix_reasoning_examples(again, docs, tok, tt, mix);
    EXPECT_EQ(again, stream);  // deterministic by seed
}

}  // namespace
}  // namespace rpt
