// ZeRO-3's parameter shard (model/zero_parameters.h) on in-process ranks: cutting a
// rank's slices out of full parameters and gathering them back gives the same bits for
// every rank count (including ones that leave buckets padded), a bucket gathered into a
// padded slot is the bucket with a zero tail, and AdamW::step_shard on the shard gives
// bit for bit the parameters AdamW::step gives on the flat buffer.
#include <gtest/gtest.h>

#include <vector>

#include "model/optimizer.h"
#include "model/zero_parameters.h"
#include "tests/test_util.h"
#include "tests/zero_test_util.h"
#include "tests/thread_comm.h"

namespace rpt {
namespace {

TEST(ZeroParameters, CutThenGatherGivesTheFullParametersBack) {
    for (bool tied : {false, true}) {
        const ParameterLayout layout(test::odd_zero_config(tied));
        const int64_t P = layout.total();
        const std::vector<float> full = test::random_floats(size_t(P), 11);
        for (int N = 1; N <= 4; ++N) {
            test::on_ranks(N, [&](Comm& comm) {
                const ZeroShards shards(layout, N, comm.rank());
                std::vector<float> in = full, shard(size_t(shards.shard_size()), -7.0f), host(shard.size());
                std::vector<float> out(size_t(P), 0.0f), staging(size_t(shards.max_padded()));
                const Tensor shard_t = cpu_f32(shard.data(), {shards.shard_size()});
                cut_shard(OpContext{}, shards, cpu_f32(in.data(), {P}), shard_t);
                cut_shard_host(shards, full.data(), host.data());
                EXPECT_TRUE(test::bitwise_equal(shard, host)) << "N " << N << " rank " << comm.rank();
                // The padding is zero (AdamW never writes it, the gathers carry it).
                for (int b = 0; b < shards.bucket_count(); ++b) {
                    const OwnedRange own = shards.owned(b);
                    const int64_t slice = shards.buckets()[size_t(b)].slice;
                    for (int64_t i = own.end - own.begin; i < slice; ++i)
                        EXPECT_EQ(shard[size_t(own.shard_offset + i)], 0.0f) << "bucket " << b;
                }
                gather_full(OpContext{}, shards, &comm, shard_t, cpu_f32(out.data(), {P}),
                            cpu_f32(staging.data(), {shards.max_padded()}));
                EXPECT_TRUE(test::bitwise_equal(out, full)) << "N " << N << " tied " << tied;
                // A layer bucket into a padded slot: the bucket, then zeros.
                const ZeroBucket& k = shards.buckets()[size_t(layer_bucket(1))];
                std::vector<float> slot(size_t(k.padded), -7.0f);
                gather_bucket_into(OpContext{}, shards, &comm, shard_t, layer_bucket(1),
                                   cpu_f32(slot.data(), {k.padded}));
                for (int64_t i = 0; i < k.padded; ++i)
                    EXPECT_EQ(slot[size_t(i)], i < k.size() ? full[size_t(k.begin + i)] : 0.0f) << i;
            });
        }
    }
}

TEST(ZeroParameters, StepOnTheShardEqualsTheFlatStep) {
    const ParameterLayout layout(test::odd_zero_config(false));
    const int64_t P = layout.total();
    AdamWConfig config;
    config.weight_decay = 0.1f;  // matrices only: the shard path must cut decay per tensor too
    config.max_grad_norm = 0.5f;  // clipped: the norm over the shards must match
    constexpr int kSteps = 3;
    for (int N = 1; N <= 4; ++N) {
        std::vector<std::vector<float>> flat(static_cast<size_t>(N)), sharded(static_cast<size_t>(N));
        test::on_ranks(N, [&](Comm& comm) {
            const int r = comm.rank();
            AdamW a(layout, OpContext{}, &comm, ZeroSettings(1)), b(layout, OpContext{}, &comm, ZeroSettings(1));
            std::vector<float> params = test::random_floats(size_t(P), 5);
            std::vector<float> shard(size_t(b.shards().shard_size()));
            cut_shard_host(b.shards(), params.data(), shard.data());
            for (int step = 1; step <= kSteps; ++step) {
                // Each rank its own gradients; a fresh copy per optimizer (step may scale them).
                const std::vector<float> g = test::random_floats(size_t(P), uint32_t(100 * step + r));
                std::vector<float> ga = g, gb = g;
                const double na = a.step(cpu_f32(params.data(), {P}), cpu_f32(ga.data(), {P}), 1e-2f, config);
                const double nb = b.step_shard(cpu_f32(shard.data(), {b.shards().shard_size()}),
                                               cpu_f32(gb.data(), {P}), 1e-2f, config);
                EXPECT_EQ(na, nb) << "step " << step;
            }
            std::vector<float> gathered(static_cast<size_t>(P)), staging(static_cast<size_t>(b.shards().max_padded()));
            gather_full(OpContext{}, b.shards(), &comm, cpu_f32(shard.data(), {b.shards().shard_size()}),
                        cpu_f32(gathered.data(), {P}), cpu_f32(staging.data(), {b.shards().max_padded()}));
            flat[size_t(r)] = params;
            sharded[size_t(r)] = gathered;
        });
        for (int r = 0; r < N; ++r) {
            EXPECT_TRUE(test::bitwise_equal(flat[size_t(r)], sharded[size_t(r)])) << "N " << N << " rank " << r;
            EXPECT_TRUE(test::bitwise_equal(flat[size_t(r)], flat[0])) << "N " << N << " rank " << r;
        }
    }
}

TEST(ZeroParameters, StepShardNeedsZeroAndTheShardSize) {
    const ParameterLayout layout(test::odd_zero_config(true));
    const int64_t P = layout.total();
    std::vector<float> params(static_cast<size_t>(P)), grads(static_cast<size_t>(P));
    AdamW plain(layout, OpContext{});
    EXPECT_THROW(plain.step_shard(cpu_f32(params.data(), {P}), cpu_f32(grads.data(), {P}), 1e-3f, {}),
                 std::logic_error);
    AdamW zero(layout, OpContext{}, nullptr, ZeroSettings(1));
    EXPECT_THROW(zero.step_shard(cpu_f32(params.data(), {P - 1}), cpu_f32(grads.data(), {P}), 1e-3f, {}),
                 std::invalid_argument);
}

}  // namespace
}  // namespace rpt
