// ZeRO-2/3 through a real model (issue 15): N in-process ranks (tests/thread_comm.h) run
// NTP steps of two micro-batches each. The model holds no gradient buffer, the backward
// writes into the runtime's slots and reduces every micro-batch into the shard, so:
//   - the parameters follow ZeRO-1's within fp32 rounding (ranks are summed before
//     micro-batches), and bit for bit with one micro-batch per rank;
//   - each rank's gradient bytes are what `rpt plan` says, and at 4 ranks under half of
//     ZeRO-1's (its whole buffer and the shard it is reduced into);
//   - GRPO with different numbers of micro-batches per rank (one rank with none) agrees
//     the rounds of collectives, does not deadlock, and follows ZeRO-1.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "model/memory_plan.h"
#include "model/optimizer.h"
#include "kernels/rng.h"
#include "model/transformer.h"
#include "model/zero_shards.h"
#include "rl/grpo.h"
#include "rl/ntp_trainer.h"
#include "tests/test_util.h"
#include "tests/zero_test_util.h"
#include "tests/thread_comm.h"

namespace rpt {
namespace {

// Eight slim layers and a small vocabulary: the layer slots are a small part of P.
ModelConfig deep_config() {
    test::TinyShape s;
    s.layers = 8;
    return test::tiny_config(s);
}

std::vector<float> host_copy(const Tensor& t) {
    std::vector<float> out(size_t(t.numel()));
    copy_to_host(out.data(), t);
    return out;
}

struct ZeroRun {
    std::vector<float> params;   // rank 0's after the steps (all ranks hold the same)
    size_t gradient_bytes = 0;   // rank 0's Transformer::gradient_bytes()
    bool same_on_every_rank = true;
};

ZeroRun train_on_ranks(int ranks, ZeroSettings zero, int grad_accum, int steps, const ModelConfig& c = deep_config()) {
    const std::vector<int32_t> stream = test::random_ints(4000, 5, 0, c.vocab_size - 1);
    NtpOptions o;
    o.batch_size = 2 * ranks;
    o.seq_len = 16;
    o.grad_accum = grad_accum;
    o.steps = steps;
    o.warmup_steps = 0;
    o.quiet = true;
    ZeroRun run;
    std::vector<std::vector<float>> params(static_cast<size_t>(ranks));
    std::vector<size_t> bytes(static_cast<size_t>(ranks));
    test::on_ranks(ranks, [&](Comm& comm) {
        Transformer model(c, OpContext{});
        model.init_weights(3);
        AdamW optimizer(model.layout(), OpContext{}, &comm, zero);
        ASSERT_EQ(model.has_gradients(), false);
        if (optimizer.zero_runtime()) model.set_zero_hooks(optimizer.zero_runtime(), optimizer.zero_runtime());
        for (int64_t step = 1; step <= steps; ++step) ntp_train_step(model, optimizer, stream, o, step);
        model.gather_parameters();  // ZeRO-3: sharded after the update
        params[size_t(comm.rank())] = host_copy(model.params().flat);
        bytes[size_t(comm.rank())] = model.gradient_bytes();
    });
    for (int r = 1; r < ranks; ++r)
        run.same_on_every_rank &= params[size_t(r)] == params[0] && bytes[size_t(r)] == bytes[0];
    run.params = params[0];
    run.gradient_bytes = bytes[0];
    return run;
}

TEST(ZeroTraining, LevelsTwoAndThreeFollowZeroOneOverUnequalShardsAndMicroBatches) {
    constexpr int kRanks = 3, kSteps = 2;  // 3 divides no bucket: padded slots
    const ZeroRun one = train_on_ranks(kRanks, ZeroSettings{1}, 2, kSteps);
    const std::vector<float> start = [] {
        Transformer m(deep_config(), OpContext{});
        m.init_weights(3);
        return host_copy(m.params().flat);
    }();
    // The comparison can fail: the steps move most parameters by about lr (1e-3).
    const int64_t P = int64_t(one.params.size());
    EXPECT_GT(test::count_beyond(one.params, start, 1e-4f), P / 2);
    for (ZeroSettings zero : {ZeroSettings{2}, ZeroSettings{2, true}, ZeroSettings{3, true}}) {
        const ZeroRun run = train_on_ranks(kRanks, zero, 2, kSteps);
        const std::string what = "ZeRO-" + std::to_string(zero.level) + (zero.overlap ? " overlapped" : "");
        EXPECT_TRUE(run.same_on_every_rank) << what;
        // fp32 summation-order noise: AdamW's g / (|g| + eps) can turn it into up to a
        // step of lr where |g| is near eps, so a few elements may move further.
        EXPECT_LE(test::count_beyond(run.params, one.params, 1e-5f), P / 1000) << what;
        EXPECT_EQ(test::count_beyond(run.params, one.params, 2.0f * kSteps * 1e-3f), 0) << what;
    }
    // One micro-batch per rank: 0 + the ranks' sum is ZeRO-1's sum, bit for bit.
    EXPECT_EQ(train_on_ranks(kRanks, ZeroSettings{2, true}, 1, 1).params,
              train_on_ranks(kRanks, ZeroSettings{1}, 1, 1).params);
}

// The slot layouts besides deep_config's (an untied head small enough to rotate with
// the layers): a tied head, whose gradient lives in the embedding's slot through the
// whole backward, and an untied head larger than a layer, which lends the embedding's
// slot first.
TEST(ZeroTraining, TiedAndWideHeadsFollowZeroOne) {
    constexpr int kRanks = 3;
    test::TinyShape wide;
    wide.vocab = 300;
    wide.hidden = 16;
    wide.ffn = 32;
    ModelConfig tied = deep_config();
    tied.tie_word_embeddings = true;
    for (const ModelConfig& c : {tied, test::tiny_config(wide)}) {
        const ZeroShards shards(ParameterLayout(c), kRanks, 0);
        EXPECT_EQ(shards.head_in_embedding_slot(), !c.tie_word_embeddings);  // the layout the case is for
        const ZeroRun one = train_on_ranks(kRanks, ZeroSettings{1}, 2, 2, c);
        const int64_t P = int64_t(one.params.size());
        for (ZeroSettings zero : {ZeroSettings{2}, ZeroSettings{2, true}}) {
            const ZeroRun run = train_on_ranks(kRanks, zero, 2, 2, c);
            const std::string what = std::string(c.tie_word_embeddings ? "tied" : "wide") + (zero.overlap ? ", overlapped" : "");
            EXPECT_LE(test::count_beyond(run.params, one.params, 1e-5f), P / 1000) << what;
            EXPECT_EQ(test::count_beyond(run.params, one.params, 4e-3f), 0) << what;
        }
    }
}

TEST(ZeroTraining, GradientBytesAreThePlansAndZeroTwoHalvesThemAtFourRanks) {
    const ModelConfig c = deep_config();
    size_t level1_at_4 = 0, level2_at_4 = 0;
    for (int ranks = 1; ranks <= 4; ++ranks) {
        for (int level : {0, 1, 2}) {
            const ZeroRun run = train_on_ranks(ranks, ZeroSettings{level}, 1, 1);
            PlanSettings s;
            s.ranks = ranks;
            s.zero = level;
            s.batch = 2 * ranks;
            s.seq = 16;
            EXPECT_EQ(run.gradient_bytes, plan_memory(c, s).gradients) << ranks << " ranks, ZeRO-" << level;
            if (ranks == 4 && level == 1) level1_at_4 = run.gradient_bytes;
            if (ranks == 4 && level == 2) level2_at_4 = run.gradient_bytes;
        }
    }
    EXPECT_LT(level2_at_4, level1_at_4 / 2);
}

// GRPO: `groups` groups of 4 responses with mixed rewards, seeded by `seed`.
struct GrpoBatch {
    std::vector<std::vector<int32_t>> prompts;
    RolloutResult rollouts;
    std::vector<float> rewards;
};

GrpoBatch grpo_batch(int groups, uint64_t seed, int vocab) {
    constexpr int G = 4;
    GrpoBatch b;
    b.rollouts.contexts = groups;
    b.rollouts.group_size = G;
    for (int g = 0; g < groups; ++g) {
        std::vector<int32_t> p;
        for (int t = 0; t < 5 + g; ++t) p.push_back(int32_t(hash_keys(seed, g, t) % uint64_t(vocab)));
        b.prompts.push_back(p);
        for (int i = 0; i < G; ++i) {
            const int s = g * G + i, length = 2 + int(hash_keys(seed + 1, s) % 5);
            std::vector<int32_t> r;
            for (int j = 0; j < length; ++j) r.push_back(int32_t(hash_keys(seed + 2, s, j) % uint64_t(vocab)));
            b.rollouts.responses.push_back(r);
            b.rewards.push_back(float((i + g) % 2));
        }
    }
    return b;
}

// `shard`: ZeRO-3 with Transformer::shard_parameters (each pass reads a gathered full copy).
std::vector<float> grpo_on_ranks(ZeroSettings zero, bool shard = false) {
    const ModelConfig c = deep_config();
    const int groups_of_rank[] = {3, 1, 0};  // one micro-batch row each: 3, 1 and no micro-batches
    constexpr int kRanks = 3;
    std::vector<float> result;
    test::on_ranks(kRanks, [&](Comm& comm) {
        Transformer policy(c, OpContext{});
        policy.init_weights(3);
        AdamW optimizer(policy.layout(), OpContext{}, &comm, zero);
        if (optimizer.zero_runtime()) policy.set_zero_hooks(optimizer.zero_runtime(), optimizer.zero_runtime());
        if (shard) policy.shard_parameters(*optimizer.zero_runtime());
        const GrpoBatch b = grpo_batch(groups_of_rank[comm.rank()], 20 + uint64_t(comm.rank()), c.vocab_size);
        GrpoSettings settings;
        settings.micro_batch_rows = 1;
        settings.updates_per_batch = 2;
        grpo_update(policy, optimizer, nullptr, b.prompts, b.rollouts, b.rewards, settings, 1e-3f, AdamWConfig{});
        policy.gather_parameters();
        if (comm.rank() == 0) result = host_copy(policy.params().flat);
    });
    return result;
}

TEST(ZeroTraining, GrpoWithUnequalMicroBatchCountsFollowsZeroOne) {
    const std::vector<float> one = grpo_on_ranks(ZeroSettings{1});
    const std::vector<float> start = [] {
        Transformer m(deep_config(), OpContext{});
        m.init_weights(3);
        return host_copy(m.params().flat);
    }();
    const int64_t P = int64_t(one.size());
    EXPECT_GT(test::count_beyond(one, start, 1e-4f), P / 2) << "the update must move the parameters";
    for (ZeroSettings zero : {ZeroSettings{2}, ZeroSettings{3, true}}) {
        for (bool shard : {false, true}) {
            if (shard && zero.level < 3) continue;
            const std::vector<float> run = grpo_on_ranks(zero, shard);
            EXPECT_LE(test::count_beyond(run, one, 1e-5f), P / 1000) << "ZeRO-" << zero.level << (shard ? " sharded" : "");
            EXPECT_EQ(test::count_beyond(run, one, 4e-3f), 0) << "ZeRO-" << zero.level << (shard ? " sharded" : "");
        }
    }
}

}  // namespace
}  // namespace rpt
