// Checkpoints and NTP pre-training: save -> load is bit-identical, a resumed run equals
// an uninterrupted one bit for bit, bad checkpoints fail with a clear error, and the
// tiny model learns the synthetic corpus.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

#include "model/bpe_trainer.h"
#include "model/checkpoint.h"
#include "rl/ntp_trainer.h"
#include "rl/special_tokens.h"
#include "rl/synth_corpus.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

namespace fs = std::filesystem;

using rpt::testing::TempDir;

ModelConfig small_test_config(int vocab) {
    test::TinyShape s;
    s.vocab = vocab;
    s.heads = 2;
    s.kv_heads = 1;
    return test::tiny_config(s);
}

struct Fixture {
    std::vector<std::string> docs = synth_corpus(3, 300);
    Tokenizer tokenizer = train_bpe(docs, 300, default_special_tokens());
    TokenizedCorpus corpus = tokenize_corpus(docs, tokenizer, *tokenizer.token_id(kEndOfText), 3, 0.1);
};

const Fixture& fixture() {
    static const Fixture f;  // built once: tokenizer training is the slow part
    return f;
}

std::vector<float> host(const Tensor& t) {
    std::vector<float> v(size_t(t.numel()));
    copy_to_host(v.data(), t);
    return v;
}

NtpOptions quick_options() {
    NtpOptions o;
    o.batch_size = 2;
    o.seq_len = 32;
    o.steps = 6;
    o.warmup_steps = 2;
    o.adamw.lr = 3e-3f;
    o.adamw.weight_decay = 0.1f;
    o.eval_every = 0;
    o.eval_docs = 4;
    o.quiet = true;
    return o;
}

TEST(Checkpoint, SaveLoadIsBitIdentical) {
    TempDir tmp;
    const Fixture& f = fixture();
    Transformer model(small_test_config(f.tokenizer.vocab_size()), OpContext{});
    model.init_weights(4);
    AdamW opt(model.layout(), OpContext{});
    TrainerState state;
    NtpOptions o = quick_options();
    o.steps = 2;
    train_ntp(model, opt, f.tokenizer, f.corpus, o, state);
    save_checkpoint(tmp.file("ck"), model, f.tokenizer, &opt, &state);

    const ModelConfig config = read_checkpoint_config(tmp.file("ck"));
    EXPECT_EQ(config.to_hf_json(), model.config().to_hf_json());
    Transformer loaded(config, OpContext{});
    load_checkpoint_weights(tmp.file("ck"), loaded);
    EXPECT_EQ(host(loaded.params().flat), host(model.params().flat));
    AdamW opt2(loaded.layout(), OpContext{});
    const TrainerState s2 = load_training_state(tmp.file("ck"), opt2);
    EXPECT_EQ(s2.step, 2);
    EXPECT_EQ(opt2.steps_taken(), opt.steps_taken());
    EXPECT_EQ(host(opt2.m()), host(opt.m()));
    EXPECT_EQ(host(opt2.v()), host(opt.v()));
    const Tokenizer tok = read_checkpoint_tokenizer(tmp.file("ck"));
    EXPECT_EQ(tok.to_json(), f.tokenizer.to_json());
    // Nothing temporary is left beside the checkpoint.
    for (const auto& entry : fs::directory_iterator(tmp.path)) EXPECT_EQ(entry.path().filename(), "ck");
}

TEST(Checkpoint, ResumeIsBitForBitTheUninterruptedRun) {
    TempDir tmp;
    const Fixture& f = fixture();
    const ModelConfig config = small_test_config(f.tokenizer.vocab_size());
    NtpOptions o = quick_options();

    Transformer straight(config, OpContext{});
    straight.init_weights(9);
    AdamW opt_straight(straight.layout(), OpContext{});
    TrainerState s_straight;
    train_ntp(straight, opt_straight, f.tokenizer, f.corpus, o, s_straight);

    Transformer first(config, OpContext{});
    first.init_weights(9);
    AdamW opt_first(first.layout(), OpContext{});
    TrainerState s_first;
    // The interrupted run: the same schedule, stopped after step 3 with a checkpoint.
    const std::string dir = tmp.file("half");
    for (int64_t step = 1; step <= 3; ++step) ntp_step(first, opt_first, f.corpus.train_stream, o, step);
    s_first.step = 3;
    save_checkpoint(dir, first, f.tokenizer, &opt_first, &s_first);

    Transformer resumed(read_checkpoint_config(dir), OpContext{});
    load_checkpoint_weights(dir, resumed);
    AdamW opt_resumed(resumed.layout(), OpContext{});
    TrainerState s_resumed = load_training_state(dir, opt_resumed);
    train_ntp(resumed, opt_resumed, f.tokenizer, f.corpus, o, s_resumed);
    EXPECT_EQ(s_resumed.step, o.steps);
    EXPECT_EQ(host(resumed.params().flat), host(straight.params().flat));
    EXPECT_EQ(host(opt_resumed.m()), host(opt_straight.m()));
}

TEST(Checkpoint, BadDirectoriesFailNamingTheFile) {
    TempDir tmp;
    const Fixture& f = fixture();
    Transformer model(small_test_config(f.tokenizer.vocab_size()), OpContext{});
    model.init_weights(1);
    save_checkpoint(tmp.file("ck"), model, f.tokenizer, nullptr, nullptr);
    EXPECT_FALSE(has_training_state(tmp.file("ck")));

    auto expect_error = [](auto&& fn, const std::string& needle) {
        try {
            fn();
            ADD_FAILURE() << "expected an error mentioning " << needle;
        } catch (const std::exception& e) {
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
    };
    expect_error([&] { read_checkpoint_config(tmp.file("missing")); }, "config.json");
    // Truncate the weights: the loader names the file.
    const std::string weights = (tmp.path / "ck" / "model.safetensors").string();
    fs::resize_file(weights, fs::file_size(weights) / 2);
    Transformer other(model.config(), OpContext{});
    expect_error([&] { load_checkpoint_weights(tmp.file("ck"), other); }, "model.safetensors");
    // A config whose shapes disagree with the tensors names the tensor.
    save_checkpoint(tmp.file("ck2"), model, f.tokenizer, nullptr, nullptr);
    ModelConfig wider = model.config();
    wider.intermediate_size += 2;
    Transformer mismatched(wider, OpContext{});
    expect_error([&] { load_checkpoint_weights(tmp.file("ck2"), mismatched); }, "mlp.gate_proj.weight");
    // An impossible config.json.
    std::ofstream(tmp.file("ck2/config.json")) << R"({"vocab_size": 10, "hidden_size": 30, "num_hidden_layers": 1,
        "num_attention_heads": 4, "intermediate_size": 8})";
    expect_error([&] { read_checkpoint_config(tmp.file("ck2")); }, "config.json");
}

double unigram_entropy(const std::vector<int32_t>& stream) {
    std::map<int32_t, int64_t> counts;
    for (int32_t t : stream) ++counts[t];
    double h = 0;
    for (const auto& [token, n] : counts) {
        const double p = double(n) / double(stream.size());
        h -= p * std::log(p);
    }
    return h;
}

TEST(Pretrain, TinyModelLearnsTheSyntheticCorpus) {
    const Fixture& f = fixture();
    ModelConfig config = small_test_config(f.tokenizer.vocab_size());
    config.hidden_size = 64;
    config.head_dim = 32;
    config.intermediate_size = 192;
    Transformer model(config, OpContext{});
    model.init_weights(1);
    AdamW opt(model.layout(), OpContext{});
    TrainerState state;
    NtpOptions o = quick_options();
    o.batch_size = 8;
    o.seq_len = 64;
    o.steps = 150;
    o.warmup_steps = 10;
    o.adamw.lr = 3e-3f;
    train_ntp(model, opt, f.tokenizer, f.corpus, o, state);
    const NtpEval e = evaluate_next_token(model, f.corpus.heldout, 8, 64, 32);
    const double unigram = unigram_entropy(f.corpus.train_stream);
    // Measured (2-core Xeon, this config): unigram entropy 3.93 nats, held-out loss 2.31
    // and accuracy 0.377 after 150 steps, deterministic. An untrained model sits at
    // log(V) = 5.7 nats and a unigram model at 3.93; the thresholds keep a margin.
    EXPECT_LT(e.loss, 0.7 * unigram) << "held-out loss " << e.loss << " vs unigram entropy " << unigram;
    std::printf("held-out loss %.3f, accuracy %.3f, unigram entropy %.3f\n", e.loss, e.accuracy, unigram);
    EXPECT_GT(e.accuracy, 0.3) << "held-out loss " << e.loss << " unigram " << unigram;
}

}  // namespace
}  // namespace rpt
