// Unit tests of comm/ and of the data-parallel AdamW: the single-process Comm, and ZeRO-1
// against the plain optimizer on N in-process "ranks" (threads sharing memory through a
// test-only Comm), including shards that need padding (P % N != 0), per-tensor weight
// decay across shard boundaries, clipping by the global norm, and the full moments a
// checkpoint stores. The MPI backend is exercised under mpirun by tests/mpi/.
#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "comm/comm.h"
#include "model/optimizer.h"
#include "model/parameters.h"
#include "tests/test_util.h"
#include "tests/thread_comm.h"

namespace rpt {
namespace {

using test::on_ranks;

// A model small enough to check element by element: P = 196, which 2 divides and 3
// and 5 do not (padded shards), with matrices (decayed) and norms/biases (not).
ModelConfig small_config() {
    test::TinyShape s;
    s.vocab = 7;
    s.hidden = 4;
    s.layers = 1;
    s.heads = 2;
    s.kv_heads = 1;
    s.ffn = 6;
    s.context = 8;
    return test::tiny_config(s);
}

// ---- tests ------------------------------------------------------------------------------

TEST(Comm, SingleProcessCollectivesAreTheIdentity) {
    std::unique_ptr<Comm> comm = make_single_comm(OpContext{});
    EXPECT_EQ(comm->rank(), 0);
    EXPECT_EQ(comm->size(), 1);
    EXPECT_TRUE(comm->is_root());
    EXPECT_STREQ(comm->backend(), "single");
    std::vector<float> x = {1, 2, 3}, y(3, 0);
    comm->allreduce_avg(cpu_f32(x.data(), {3}));
    EXPECT_EQ(x, (std::vector<float>{1, 2, 3}));
    comm->reduce_scatter_sum(cpu_f32(x.data(), {3}), cpu_f32(y.data(), {3}));
    EXPECT_EQ(y, x);
    std::fill(y.begin(), y.end(), 0.0f);
    comm->all_gather(cpu_f32(x.data(), {3}), cpu_f32(y.data(), {3}));
    EXPECT_EQ(y, x);
    EXPECT_EQ(comm->allreduce_sum(2.5), 2.5);
    int64_t counts[2] = {4, 5};
    comm->allreduce_sum_host(counts, 2);
    EXPECT_EQ(counts[1], 5);
    EXPECT_THROW(comm->broadcast(cpu_f32(x.data(), {3}), 1), std::invalid_argument);
    comm->barrier();
}

TEST(Comm, NoLauncherMeansOneProcess) {
    // Outside mpirun/srun the runtime does not start MPI and make_comm is single-process.
    int argc = 1;
    char name[] = "rpt_tests";
    char* args[] = {name, nullptr};
    char** argv = args;
    if (std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE") || std::getenv("PMIX_RANK"))
        GTEST_SKIP() << "running under an MPI launcher";
    MpiRuntime runtime(&argc, &argv);
    EXPECT_FALSE(runtime.active());
    EXPECT_EQ(runtime.size(), 1);
    EXPECT_STREQ(make_comm(&runtime, OpContext{})->backend(), "single");
    EXPECT_NE(comm_build_info().find("MPI"), std::string::npos);
}

TEST(Comm, ThreadCollectivesSumInRankOrder) {
    constexpr int kRanks = 3, kChunk = 2;
    on_ranks(kRanks, [](Comm& comm) {
        const float r = float(comm.rank());
        std::vector<float> x = {r, 10 * r};
        comm.allreduce_sum(cpu_f32(x.data(), {2}));
        EXPECT_EQ(x, (std::vector<float>{3, 30}));
        std::vector<float> in(kRanks * kChunk), out(kChunk);
        for (size_t i = 0; i < in.size(); ++i) in[i] = float(i) + r;
        comm.reduce_scatter_sum(cpu_f32(in.data(), {kRanks * kChunk}), cpu_f32(out.data(), {kChunk}));
        EXPECT_EQ(out[0], float(3 * kChunk * comm.rank()) + 3);  // sum over r of (i + r)
        std::vector<float> all(kRanks * kChunk, -1);
        all[size_t(comm.rank()) * kChunk] = r;
        all[size_t(comm.rank()) * kChunk + 1] = r;
        const Tensor all_t = cpu_f32(all.data(), {kRanks * kChunk});
        comm.all_gather(all_t.rows(comm.rank() * kChunk, (comm.rank() + 1) * kChunk), all_t);  // in place
        EXPECT_EQ(all, (std::vector<float>{0, 0, 1, 1, 2, 2}));
    });
}

// Three AdamW steps on `ranks` threads, each rank with its own gradients, against one
// optimizer given their mean: parameters and full moments agree (to the rounding of the
// global norm, which ZeRO sums per shard).
// zero: the ZeRO level; levels 2 and 3 report the buckets as a backward would (head
// first, embedding last), on the communication thread with `overlap`.
void expect_data_parallel_matches(int ranks, int zero, bool sum_gradients = false, bool overlap = false) {
    const ModelConfig config = small_config();
    const ParameterLayout layout(config);
    const int64_t P = layout.total();
    ASSERT_EQ(P, 196);
    constexpr int kSteps = 3;
    AdamWConfig adamw;
    adamw.lr = 1e-2f;
    adamw.weight_decay = 0.1f;
    adamw.max_grad_norm = 0.5f;  // the random gradients' norm is larger: clipping is on
    adamw.sum_gradients = sum_gradients;

    std::vector<float> init(static_cast<size_t>(P));
    init_parameters(layout, init.data(), 7);
    auto grad_of = [&](int step, int rank) { return test::random_floats(size_t(P), uint32_t(100 * step + rank)); };

    // One optimizer, mean gradients.
    std::vector<float> ref = init;
    AdamW single(layout, OpContext{});
    for (int step = 0; step < kSteps; ++step) {
        std::vector<float> mean(size_t(P), 0.0f);
        for (int r = 0; r < ranks; ++r) {
            const std::vector<float> g = grad_of(step, r);
            for (int64_t i = 0; i < P; ++i) mean[size_t(i)] += g[size_t(i)];
        }
        if (!sum_gradients)
            for (float& g : mean) g *= 1.0f / float(ranks);
        single.step(cpu_f32(ref.data(), {P}), cpu_f32(mean.data(), {P}), adamw.lr, adamw);
    }
    std::vector<float> ref_m, ref_v;
    single.moments_to_host(ref_m, ref_v);

    on_ranks(ranks, [&](Comm& comm) {
        std::vector<float> params = init;
        AdamW opt(layout, OpContext{}, &comm, ZeroSettings{zero, overlap});
        if (zero) {
            // Every bucket's slice, padding included: at most one extra element per bucket.
            EXPECT_EQ(opt.m().numel(), opt.shards().shard_size());
            EXPECT_LE(opt.m().numel() * ranks, P + int64_t(ranks) * opt.shards().bucket_count());
        }
        for (int step = 0; step < kSteps; ++step) {
            std::vector<float> g = grad_of(step, comm.rank());
            const Tensor pt = cpu_f32(params.data(), {P}), gt = cpu_f32(g.data(), {P});
            ZeroRuntime* rt = opt.zero_runtime();
            if (zero >= 2) {
                rt->acquire_all(pt, Tensor{});  // ZeRO-3: the forward's gathers
                // A backward: each bucket written into its lent slot, then handed back.
                rt->zero_gradients();
                for (int b = rt->shards().bucket_count() - 1; b >= 0; --b) {
                    const ZeroBucket& k = rt->shards().buckets()[size_t(b)];
                    const GradientSlot slot = rt->gradient_slot(b);
                    ASSERT_EQ(slot.begin, k.begin);
                    ops::copy(OpContext{}, slot.grads, gt.rows(k.begin, k.end));
                    rt->bucket_done(b);
                }
                rt->backward_done();
            }
            opt.step(pt, gt, adamw.lr, adamw);
            if (zero == 3 && ranks > 1) {
                EXPECT_FALSE(rt->resident()) << "ZeRO-3 leaves the parameters sharded";
            }
        }
        if (zero == 3) opt.zero_runtime()->acquire_all(cpu_f32(params.data(), {P}), Tensor{});
        std::vector<float> m, v;
        opt.moments_to_host(m, v);  // collective under ZeRO
        for (int64_t i = 0; i < P; ++i) {
            ASSERT_NEAR(params[size_t(i)], ref[size_t(i)], 1e-6f) << "rank " << comm.rank() << " element " << i;
            ASSERT_NEAR(m[size_t(i)], ref_m[size_t(i)], 1e-6f) << "element " << i;
            ASSERT_NEAR(v[size_t(i)], ref_v[size_t(i)], 1e-6f) << "element " << i;
        }
        // A fresh optimizer takes its shard of the full moments back (a resume).
        AdamW resumed(layout, OpContext{}, &comm, ZeroSettings{zero});
        resumed.load_moments(ref_m.data(), ref_v.data());
        std::vector<float> m2, v2;
        resumed.moments_to_host(m2, v2);
        EXPECT_EQ(m2, ref_m);
        EXPECT_EQ(v2, ref_v);
    });
}

TEST(DataParallelAdamW, ZeroOneRankIsThePlainOptimizer) { expect_data_parallel_matches(1, true); }
TEST(DataParallelAdamW, AllreduceTwoRanks) { expect_data_parallel_matches(2, false); }
TEST(DataParallelAdamW, ZeroTwoRanks) { expect_data_parallel_matches(2, true); }
TEST(DataParallelAdamW, ZeroThreeRanksPadded) { expect_data_parallel_matches(3, true); }
TEST(DataParallelAdamW, ZeroFiveRanksPadded) { expect_data_parallel_matches(5, true); }
TEST(DataParallelAdamW, ZeroTwoAndThreeThreeRanks) {
    for (int level : {2, 3})
        for (bool overlap : {false, true}) expect_data_parallel_matches(3, level, false, overlap);
}
TEST(DataParallelAdamW, ZeroThreeTwoRanksSummedOverlapped) { expect_data_parallel_matches(2, 3, true, true); }
TEST(DataParallelAdamW, SummedGradients) {
    expect_data_parallel_matches(3, false, /*sum_gradients=*/true);
    expect_data_parallel_matches(3, true, /*sum_gradients=*/true);
}

TEST(DataParallelAdamW, NonFiniteNormThrowsOrSkipsOnEveryRank) {
    const ParameterLayout layout(small_config());
    const int64_t P = layout.total();
    on_ranks(2, [&](Comm& comm) {
        std::vector<float> params(size_t(P), 1.0f), g(size_t(P), 0.5f);
        if (comm.rank() == 1) g[3] = std::numeric_limits<float>::quiet_NaN();
        AdamW opt(layout, OpContext{}, &comm, /*zero=*/true);
        AdamWConfig adamw;
        adamw.skip_nonfinite = true;
        const double norm = opt.step(cpu_f32(params.data(), {P}), cpu_f32(g.data(), {P}), 1e-3f, adamw);
        EXPECT_TRUE(std::isnan(norm));
        EXPECT_EQ(opt.steps_taken(), 0);
        EXPECT_EQ(params, std::vector<float>(size_t(P), 1.0f));  // untouched on both ranks
        adamw.skip_nonfinite = false;
        g.assign(size_t(P), 0.5f);
        if (comm.rank() == 0) g[150] = std::numeric_limits<float>::infinity();
        EXPECT_THROW(opt.step(cpu_f32(params.data(), {P}), cpu_f32(g.data(), {P}), 1e-3f, adamw),
                     std::runtime_error);
    });
}

}  // namespace
}  // namespace rpt
