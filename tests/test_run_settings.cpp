// Resume continues the same run: the run-settings record (taken when not given, refused
// when given differently, changeable flags accepted, files by content), the trainer
// state's parser, the clean-up of temporary directories left by a killed process, and an
// RPT run with a KL reference resumed bit for bit.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "model/bpe_trainer.h"
#include "model/checkpoint.h"
#include "model/stale_temporaries.h"
#include "model/trainer_state.h"
#include "rl/fingerprint.h"
#include "rl/rpt_trainer.h"
#include "rl/run_settings.h"
#include "rl/special_tokens.h"
#include "rl/synth_corpus.h"
#include "rl/templates.h"
#include "rl/token_data.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using rpt::testing::TempDir;

// The flags of a toy command, bound to a RunSettings as a command binds its own.
struct ToyFlags {
    uint64_t seed = 1;
    float lr = 1e-3f;
    int64_t steps = 10;
    bool dynamic = false;
    std::string corpus;
};

RunSettings toy_settings(ToyFlags& f) {
    RunSettings s("toy");
    s.add("--seed", f.seed);
    s.add("--lr", f.lr);
    s.add("--steps", f.steps);  // changeable on resume
    s.add("--dynamic", f.dynamic);
    s.add_file("--corpus", f.corpus);
    return s;
}

const Tokenizer& toy_tokenizer() {
    static const Tokenizer t = train_bpe(synth_corpus(2, 40), 280, default_special_tokens());
    return t;
}

// The record of a run started with `started`.
json record_of(ToyFlags started) { return toy_settings(started).record(toy_tokenizer()); }

RunSettings::FlagGiven given_flags(std::set<std::string> flags) {
    return [flags](const std::string& flag) { return flags.count(flag) > 0; };
}

std::string error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

TEST(RunSettings, FlagsNotGivenTakeTheRecordedValues) {
    TempDir tmp;
    ToyFlags run{3, 2e-3f, 40, true, tmp.write("c.jsonl", "{\"text\": \"a\"}\n")};
    const json recorded = record_of(run);
    ToyFlags now;  // today's defaults
    RunSettings s = toy_settings(now);
    EXPECT_TRUE(s.resume(recorded, given_flags({}), "ck").empty());
    EXPECT_EQ(now.seed, 3u);
    EXPECT_EQ(now.lr, 2e-3f);
    EXPECT_EQ(now.steps, 40);
    EXPECT_TRUE(now.dynamic);
    EXPECT_EQ(now.corpus, fs::absolute(run.corpus).lexically_normal().string());
}

TEST(RunSettings, AGivenFlagThatDiffersIsRefusedNamingItAndBothValues) {
    ToyFlags run;
    run.seed = 3;
    const json recorded = record_of(run);
    ToyFlags now;
    now.seed = 5;
    RunSettings s = toy_settings(now);
    const std::string e = error_of([&] { s.resume(recorded, given_flags({"--seed"}), "ck"); });
    EXPECT_NE(e.find("--seed 5 differs from the run being resumed (3)"), std::string::npos) << e;
    EXPECT_NE(e.find("--model ck"), std::string::npos) << e;
    // A float is shown as the flag would take it.
    ToyFlags other;
    other.lr = 4e-3f;
    RunSettings s2 = toy_settings(other);
    const std::string e2 = error_of([&] { s2.resume(recorded, given_flags({"--lr"}), "ck"); });
    EXPECT_NE(e2.find("--lr 0.004 differs from the run being resumed (0.001)"), std::string::npos) << e2;
}

TEST(RunSettings, AGivenFlagWithTheRecordedValueAndAChangeableFlagAreAccepted) {
    ToyFlags run;
    run.seed = 3;
    const json recorded = record_of(run);
    ToyFlags now;
    now.seed = 3;
    now.steps = 99;
    RunSettings s = toy_settings(now);
    EXPECT_NO_THROW(s.resume(recorded, given_flags({"--seed", "--steps"}), "ck"));
    EXPECT_EQ(now.steps, 99);  // the given value wins
    EXPECT_TRUE(changeable_on_resume("--steps"));
    EXPECT_FALSE(changeable_on_resume("--seed"));
    // Deliberately: checkpoints hold fp32 masters and moments in either precision.
    EXPECT_TRUE(changeable_on_resume("--precision"));
}

TEST(RunSettings, AnInputFileIsComparedByContent) {
    TempDir tmp;
    const std::string text = "{\"text\": \"one\"}\n";
    ToyFlags run;
    run.corpus = tmp.write("c.jsonl", text);
    const json recorded = record_of(run);

    // Moved, same bytes: accepted with a warning naming both paths.
    ToyFlags moved;
    moved.corpus = tmp.write("moved.jsonl", text);
    RunSettings s = toy_settings(moved);
    const std::vector<std::string> warnings = s.resume(recorded, given_flags({"--corpus"}), "ck");
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_NE(warnings[0].find("moved.jsonl"), std::string::npos) << warnings[0];
    EXPECT_NE(warnings[0].find("c.jsonl"), std::string::npos) << warnings[0];

    // Another file given: refused naming --corpus.
    ToyFlags other;
    other.corpus = tmp.write("other.jsonl", "{\"text\": \"two\"}\n");
    RunSettings s2 = toy_settings(other);
    const std::string e = error_of([&] { s2.resume(recorded, given_flags({"--corpus"}), "ck"); });
    EXPECT_NE(e.find("--corpus"), std::string::npos) << e;
    EXPECT_NE(e.find("differs from the run being resumed"), std::string::npos) << e;

    // The recorded file changed under the same path, flag not given: refused too.
    tmp.write("c.jsonl", text + text);
    ToyFlags again;
    RunSettings s3 = toy_settings(again);
    const std::string e3 = error_of([&] { s3.resume(recorded, given_flags({}), "ck"); });
    EXPECT_NE(e3.find("--corpus"), std::string::npos) << e3;
}

TEST(RunSettings, OldMalformedAndForeignRecords) {
    ToyFlags now;
    RunSettings s = toy_settings(now);
    // A checkpoint from before the record: one warning, the flags stand.
    const std::vector<std::string> w = s.resume(nullptr, given_flags({}), "ck");
    ASSERT_EQ(w.size(), 1u);
    EXPECT_NE(w[0].find("records no run settings"), std::string::npos);
    // Malformed records name the state file; any JSON is handled without a crash.
    for (const json& bad : {json(3), json::object(), json{{"command", "toy"}, {"settings", 1}},
                            json{{"command", "toy"}, {"settings", {{"--seed", "x"}}}},
                            json{{"command", "toy"}, {"settings", {{"--corpus", {{"nopath", 1}}}}}}}) {
        ToyFlags f;
        RunSettings t = toy_settings(f);
        const std::string e = error_of([&] { t.resume(bad, given_flags({}), "ck"); });
        EXPECT_NE(e.find("ck/trainer_state.json"), std::string::npos) << bad.dump() << ": " << e;
    }
    // Another command's run.
    json foreign = record_of(ToyFlags{});
    foreign["command"] = "pretrain";
    const std::string e = error_of([&] { s.resume(foreign, given_flags({}), "ck"); });
    EXPECT_NE(e.find("`pretrain` run"), std::string::npos) << e;
}

TEST(RunSettings, TheTokenizerIsRecordedByHash) {
    const json recorded = record_of(ToyFlags{});
    EXPECT_NO_THROW(check_run_tokenizer(recorded, toy_tokenizer(), "ck/tokenizer.json"));
    const Tokenizer other = train_bpe(synth_corpus(9, 40), 270, default_special_tokens());
    const std::string e = error_of([&] { check_run_tokenizer(recorded, other, "--tokenizer t.json"); });
    EXPECT_NE(e.find("--tokenizer t.json"), std::string::npos) << e;
}

TEST(Fingerprint, Fnv1a64AndFiles) {
    EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
    EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);  // the published FNV-1a test vector
    TempDir tmp;
    const FileFingerprint f = fingerprint_file(tmp.write("x", "a"));
    EXPECT_TRUE(f.readable);
    EXPECT_EQ(f.bytes, 1u);
    EXPECT_EQ(f.head_hash, fnv1a64("a"));
    EXPECT_FALSE(fingerprint_file(tmp.file("missing")).readable);
}

TEST(TrainerStateParser, RoundTripsAndRejectsBadInput) {
    const std::string good =
        R"({"version": 1, "step": 4, "optimizer_steps": 4, "rng_state": 7, "data_cursor": 4, "extra": {},
            "run": {"command": "pretrain", "settings": {}}})";
    const TrainingStateFile s = parse_training_state(good, "t.json");
    EXPECT_EQ(s.state.step, 4);
    EXPECT_EQ(s.optimizer_steps, 4);
    EXPECT_EQ(s.state.run["command"], "pretrain");
    EXPECT_TRUE(parse_training_state(R"({"version": 1, "step": 0, "optimizer_steps": 0, "rng_state": 0,
        "data_cursor": 0})", "t.json").state.run.is_null());
    for (const char* bad : {"", "[]", "{", R"({"version": 2})", R"({"version": "1"})",
                            R"({"version": 1, "step": "4", "optimizer_steps": 4, "rng_state": 7, "data_cursor": 4})",
                            R"({"version": 1, "step": -1, "optimizer_steps": 4, "rng_state": 7, "data_cursor": 4})",
                            R"({"version": 1, "step": 1, "optimizer_steps": 1, "rng_state": 7, "data_cursor": 4,
                                "run": 5})"}) {
        const std::string e = error_of([&] { parse_training_state(bad, "t.json"); });
        EXPECT_NE(e.find("t.json"), std::string::npos) << bad << ": " << e;
    }
}

// A PID that has just ended (the child of a fork, reaped).
pid_t dead_pid() {
    const pid_t pid = fork();
    if (pid == 0) _exit(0);
    waitpid(pid, nullptr, 0);
    return pid;
}

TEST(Checkpoint, StaleTemporaryDirectoriesAreRemoved) {
    TempDir tmp;
    const std::string ck = tmp.file("ck");
    const pid_t gone = dead_pid();
    fs::create_directories(ck);
    fs::create_directories(ck + ".tmp-" + std::to_string(gone));
    fs::create_directories(ck + ".old-" + std::to_string(gone));
    fs::create_directories(ck + ".tmp-" + std::to_string(getppid()));  // alive: left alone
    fs::create_directories(tmp.file("ck2.tmp-" + std::to_string(gone)));  // another target's
    remove_stale_temporaries(ck);
    EXPECT_TRUE(fs::exists(ck));
    EXPECT_FALSE(fs::exists(ck + ".tmp-" + std::to_string(gone)));
    EXPECT_FALSE(fs::exists(ck + ".old-" + std::to_string(gone)));
    EXPECT_TRUE(fs::exists(ck + ".tmp-" + std::to_string(getppid())));
    EXPECT_TRUE(fs::exists(tmp.file("ck2.tmp-" + std::to_string(gone))));

    // Killed between the two renames: the previous version is put back.
    const std::string lost = tmp.file("lost");
    fs::create_directories(lost + ".old-" + std::to_string(gone));
    std::ofstream(lost + ".old-" + std::to_string(gone) + "/config.json") << "{}";
    remove_stale_temporaries(lost);
    EXPECT_TRUE(fs::exists(lost + "/config.json"));
}

std::vector<float> host(const Tensor& t) {
    std::vector<float> v(size_t(t.numel()));
    copy_to_host(v.data(), t);
    return v;
}

// An RPT run with a KL term, stopped and resumed from its checkpoint, ends bit for bit
// where the uninterrupted run does: the reference is the starting policy, not the
// resumed one. (Weight decay moves the policy even when every reward is equal, so the
// KL term has a gradient after the first step.)
TEST(RptResume, WithAKlReferenceIsBitForBitTheUninterruptedRun) {
    TempDir tmp;
    const std::vector<std::string> texts = synth_corpus(4, 40);
    const Tokenizer& tokenizer = toy_tokenizer();
    const PromptTemplate format = load_template("compact");
    const auto docs = tokenize_documents(texts, tokenizer);
    std::vector<ScoredPosition> positions;
    for (size_t d = 0; d < 6; ++d) positions.push_back({int64_t(d), int32_t(docs[d].size() / 2), 1.0f});
    test::TinyShape shape;
    shape.vocab = tokenizer.vocab_size();
    shape.layers = 1;
    shape.heads = 2;
    shape.kv_heads = 1;
    ModelConfig c = test::tiny_config(shape);
    c.eos_token_id = *tokenizer.token_id(kEndOfText);
    RptOptions o;
    o.contexts = 2;
    o.group_size = 4;
    o.max_new_tokens = 3;
    o.context_tokens = 16;
    o.steps = 3;
    o.adamw.lr = 1e-2f;
    o.adamw.weight_decay = 0.5f;
    o.grpo.loss.kl_beta = 0.5f;
    o.quiet = true;

    auto run = [&](RptOptions options, Transformer& model, AdamW& opt, TrainerState& state) {
        train_rpt(model, opt, tokenizer, format, docs, positions, options, state);
    };
    Transformer straight(c, OpContext{});
    straight.init_weights(5);
    AdamW opt_straight(straight.layout(), OpContext{});
    TrainerState s_straight;
    run(o, straight, opt_straight, s_straight);

    RptOptions first = o;
    first.stop_at = 2;
    first.out_dir = tmp.file("half");
    Transformer half(c, OpContext{});
    half.init_weights(5);
    AdamW opt_half(half.layout(), OpContext{});
    TrainerState s_half;
    run(first, half, opt_half, s_half);
    ASSERT_TRUE(has_reference_weights(first.out_dir));

    auto resume = [&](bool with_reference) {
        Transformer model(read_checkpoint_config(first.out_dir), OpContext{});
        load_checkpoint_weights(first.out_dir, model);
        AdamW opt(model.layout(), OpContext{});
        TrainerState state = load_training_state(first.out_dir, opt);
        RptOptions rest = o;
        if (with_reference) rest.resume_dir = first.out_dir;
        run(rest, model, opt, state);
        EXPECT_EQ(state.step, o.steps);
        return std::make_pair(host(model.params().flat), host(opt.m()));
    };
    const auto [params, moments] = resume(true);
    EXPECT_EQ(params, host(straight.params().flat));
    EXPECT_EQ(moments, host(opt_straight.m()));
    // The check has teeth: the resumed policy as reference gives another run.
    EXPECT_NE(resume(false).first, host(straight.params().flat));
}

}  // namespace
}  // namespace rpt
