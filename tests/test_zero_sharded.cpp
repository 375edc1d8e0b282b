// ZeRO-3 that saves parameter memory (Transformer::shard_parameters, opt-in): N
// in-process ranks (tests/thread_comm.h) keep only their parameter shard and read every
// bucket from the runtime's gather slots, and
//   - NTP training follows ZeRO-1 within the fp32 summation-order tolerance of
//     tests/test_zero_training.cpp, inline and overlapped (prefetching), for a small
//     untied head, a tied head (the embedding stays in its slot through the head's
//     backward), an untied head wider than a layer (it takes the embedding's slot), and
//     in bf16 (each slot's bf16 twin is the full working copy's rounding);
//   - each rank's parameter bytes are its shard plus the three slots, and at four ranks
//     well under ZeRO-1's full buffer;
//   - gather_parameters makes a full copy (the whole-model readers') that the next
//     update drops; sharding needs level 3 and the runtime as the model's source.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "model/optimizer.h"
#include "model/transformer.h"
#include "model/zero_parameters.h"
#include "rl/ntp_trainer.h"
#include "tests/test_util.h"
#include "tests/zero_test_util.h"
#include "tests/thread_comm.h"

namespace rpt {
namespace {

ModelConfig deep_config() {
    test::TinyShape s;
    s.layers = 8;
    return test::tiny_config(s);
}

struct ShardedRun {
    std::vector<float> params;  // rank 0's full parameters after the steps
    size_t parameter_bytes = 0;  // rank 0's Transformer::parameter_bytes() + working_bytes()
    bool same_on_every_rank = true;
};

// `shard`: ZeRO-3 with Transformer::shard_parameters (else the level's usual path).
ShardedRun train(int ranks, ZeroSettings zero, bool shard, const ModelConfig& c, Precision precision = Precision::f32,
          int steps = 2) {
    const std::vector<int32_t> stream = test::random_ints(4000, 5, 0, c.vocab_size - 1);
    NtpOptions o;
    o.batch_size = 2 * ranks;
    o.seq_len = 16;
    o.grad_accum = 2;
    o.steps = steps;
    o.warmup_steps = 0;
    o.quiet = true;
    std::vector<std::vector<float>> params(static_cast<size_t>(ranks));
    std::vector<size_t> bytes(static_cast<size_t>(ranks));
    test::on_ranks(ranks, [&](Comm& comm) {
        Transformer model(c, OpContext{}, precision);
        AdamW optimizer(model.layout(), OpContext{}, &comm, zero);
        ZeroRuntime* runtime = optimizer.zero_runtime();
        if (runtime) model.set_zero_hooks(runtime, runtime);
        if (shard) model.shard_parameters(*runtime);
        model.init_weights(3);  // sharded: this rank's slices of the same init
        for (int64_t step = 1; step <= steps; ++step) ntp_train_step(model, optimizer, stream, o, step);
        std::vector<float> full(size_t(model.layout().total()));
        if (shard) {
            const ZeroShards& shards = runtime->shards();
            std::vector<float> staging(size_t(shards.max_padded()));
            gather_full(OpContext{}, shards, &comm, model.params().flat,
                        cpu_f32(full.data(), {shards.total()}), cpu_f32(staging.data(), {shards.max_padded()}));
        } else {
            model.gather_parameters();
            copy_to_host(full.data(), model.params().flat);
        }
        params[size_t(comm.rank())] = full;
        bytes[size_t(comm.rank())] = model.parameter_bytes() + model.working_bytes();
    });
    ShardedRun run;
    for (int r = 1; r < ranks; ++r)
        run.same_on_every_rank &= params[size_t(r)] == params[0] && bytes[size_t(r)] == bytes[0];
    run.params = params[0];
    run.parameter_bytes = bytes[0];
    return run;
}

TEST(ZeroSharded, NtpFollowsZeroOneForEveryHeadLayoutAndPrecision) {
    constexpr int kRanks = 3;  // 3 divides no bucket: padded slots
    test::TinyShape wide;
    wide.vocab = 300;
    wide.hidden = 16;
    wide.ffn = 32;
    ModelConfig tied = deep_config();
    tied.tie_word_embeddings = true;
    struct Case {
        std::string name;
        ModelConfig config;
        Precision precision;
    };
    for (const Case& c : {Case{"deep", deep_config(), Precision::f32}, Case{"tied", tied, Precision::f32},
                          Case{"wide", test::tiny_config(wide), Precision::f32},
                          Case{"deep bf16", deep_config(), Precision::bf16}}) {
        const ShardedRun one = train(kRanks, ZeroSettings{1}, false, c.config, c.precision);
        const int64_t P = int64_t(one.params.size());
        const std::vector<float> start = [&] {
            Transformer m(c.config, OpContext{}, c.precision);
            m.init_weights(3);
            std::vector<float> host(static_cast<size_t>(P));
            copy_to_host(host.data(), m.params().flat);
            return host;
        }();
        for (bool overlap : {false, true}) {
            const ShardedRun run = train(kRanks, ZeroSettings{3, overlap}, true, c.config, c.precision);
            const std::string what = c.name + (overlap ? ", overlapped" : "");
            EXPECT_TRUE(run.same_on_every_rank) << what;
            EXPECT_GT(test::count_beyond(run.params, start, 1e-4f), P / 2) << what << ": the steps must move the parameters";
            EXPECT_LE(test::count_beyond(run.params, one.params, 1e-5f), P / 1000) << what;
            EXPECT_EQ(test::count_beyond(run.params, one.params, 4e-3f), 0) << what;
        }
    }
}

TEST(ZeroSharded, ParameterBytesAreTheShardAndSlotsAndFallWithRanks) {
    const ModelConfig c = deep_config();
    const ParameterLayout layout(c);
    for (Precision precision : {Precision::f32, Precision::bf16}) {
        const size_t per_element = sizeof(float) + (precision == Precision::bf16 ? sizeof(uint16_t) : 0);
        size_t one_at_4 = 0, sharded_at_4 = 0;
        for (int ranks = 1; ranks <= 4; ++ranks) {
            const ShardedRun one = train(ranks, ZeroSettings{1}, false, c, precision, 1);
            const ShardedRun sharded = train(ranks, ZeroSettings{3}, true, c, precision, 1);
            EXPECT_EQ(one.parameter_bytes, size_t(layout.total()) * per_element);
            const ZeroShards shards(layout, ranks, 0);
            const GradientSlotSizes slots = shards.gradient_slots();
            EXPECT_EQ(sharded.parameter_bytes, size_t(shards.shard_size()) * sizeof(float) +
                                                   size_t(2 * slots.layer + slots.embedding) * per_element)
                << ranks << " ranks";
            std::printf("[ sharded  ] %s, %d ranks: ZeRO-1 %zu bytes, sharded ZeRO-3 %zu bytes per rank\n",
                        precision_name(precision), ranks, one.parameter_bytes, sharded.parameter_bytes);
            if (ranks == 4) {
                one_at_4 = one.parameter_bytes;
                sharded_at_4 = sharded.parameter_bytes;
            }
        }
        EXPECT_LT(sharded_at_4, one_at_4 * 6 / 10) << precision_name(precision);
    }
}

// gather_parameters on a sharded model: a full copy equal to the shards' gather, read
// by params() and counted in parameter_bytes until the next update drops it.
TEST(ZeroSharded, TheFullCopyIsTheGatherAndLivesUntilTheNextUpdate) {
    const ModelConfig c = deep_config();
    const std::vector<int32_t> stream = test::random_ints(4000, 5, 0, c.vocab_size - 1);
    NtpOptions o;
    o.batch_size = 6;
    o.seq_len = 16;
    o.steps = 2;
    o.warmup_steps = 0;
    o.quiet = true;
    test::on_ranks(3, [&](Comm& comm) {
        Transformer model(c, OpContext{}, Precision::bf16);
        AdamW optimizer(model.layout(), OpContext{}, &comm, ZeroSettings{3, true});
        ZeroRuntime& runtime = *optimizer.zero_runtime();
        model.set_zero_hooks(&runtime, &runtime);
        model.shard_parameters(runtime);
        model.init_weights(3);
        ntp_train_step(model, optimizer, stream, o, 1);
        const size_t sharded_bytes = model.parameter_bytes();
        const int64_t P = model.layout().total();
        std::vector<float> expected(static_cast<size_t>(P)), staging(size_t(runtime.shards().max_padded()));
        gather_full(OpContext{}, runtime.shards(), &comm, runtime.parameter_shard(), cpu_f32(expected.data(), {P}),
                    cpu_f32(staging.data(), {runtime.shards().max_padded()}));
        model.gather_parameters();
        ASSERT_EQ(model.params().flat.numel(), P);
        std::vector<float> copy(static_cast<size_t>(P));
        copy_to_host(copy.data(), model.params().flat);
        EXPECT_TRUE(test::bitwise_equal(copy, expected));
        EXPECT_EQ(model.working_params().numel(), P);
        EXPECT_EQ(model.parameter_bytes(), sharded_bytes + size_t(P) * (sizeof(float) + sizeof(uint16_t)));
        ntp_train_step(model, optimizer, stream, o, 2);  // the update makes it stale, the forward drops it
        model.forward(stream.data(), stream.data() + 1, 1, 16);
        EXPECT_EQ(model.parameter_bytes(), sharded_bytes);
        EXPECT_EQ(model.params().flat.numel(), runtime.shards().shard_size());
    });
}

TEST(ZeroSharded, ShardingNeedsZeroThreeAsTheModelsSource) {
    const ModelConfig c = deep_config();
    test::on_ranks(2, [&](Comm& comm) {
        Transformer model(c, OpContext{});
        AdamW level2(model.layout(), OpContext{}, &comm, ZeroSettings{2});
        model.set_zero_hooks(level2.zero_runtime(), level2.zero_runtime());
        EXPECT_THROW(model.shard_parameters(*level2.zero_runtime()), std::logic_error);
        AdamW level3(model.layout(), OpContext{}, &comm, ZeroSettings{3});
        EXPECT_THROW(model.shard_parameters(*level3.zero_runtime()), std::logic_error);  // not its source yet
        model.set_zero_hooks(level3.zero_runtime(), level3.zero_runtime());
        model.shard_parameters(*level3.zero_runtime());
        EXPECT_TRUE(model.sharded());
        EXPECT_EQ(model.params().flat.numel(), level3.shards().shard_size());
    });
}

}  // namespace
}  // namespace rpt
