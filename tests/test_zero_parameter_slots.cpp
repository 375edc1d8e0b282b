// ZeRO-3's gather slots (model/zero_parameter_slots.h) on in-process ranks, for every
// rank count 1..4 (padded buckets), tied and untied heads (an untied head larger than a
// layer shares the embedding's slot), f32 and bf16, inline and on a CommWorker: a
// forward then backward sequence of acquires, with prefetches, always sees exactly the
// full parameters (and their bf16 rounding); a tied embedding stays in its slot through
// the backward; after invalidate() the next acquire sees the updated shard.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "model/parameters.h"
#include "model/zero_hooks.h"
#include "model/zero_parameter_slots.h"
#include "model/zero_parameters.h"
#include "tests/test_util.h"
#include "tests/zero_test_util.h"
#include "tests/thread_comm.h"

namespace rpt {
namespace {

// The buckets of test::odd_zero_config with 3 layers: at vocab 100 the untied head (909)
// outgrows a layer (685) and takes the embedding's slot.
struct Case {
    bool tied;
    int vocab;
};

// Whether `w` holds bucket b of `full` (and of its bf16 rounding `rounded`) exactly.
bool sees(const BucketWeights& w, const ZeroBucket& k, const std::vector<float>& full, const Tensor& rounded) {
    if (w.begin != k.begin || w.f32.numel() != k.size()) return false;
    if (std::memcmp(w.f32.data, full.data() + k.begin, size_t(k.size()) * sizeof(float)) != 0) return false;
    if (rounded.empty()) return w.working.empty();
    return w.working.numel() == k.size() &&
           std::memcmp(w.working.data, rounded.rows(k.begin, k.end).data, size_t(k.size()) * sizeof(uint16_t)) == 0;
}

TEST(ZeroParameterSlots, ForwardThenBackwardSeesTheFullParameters) {
    for (const Case c : {Case{true, 37}, Case{false, 37}, Case{false, 100}}) {
        const ModelConfig config = test::odd_zero_config(c.tied, c.vocab, 3);
        const ParameterLayout layout(config);
        const int64_t P = layout.total();
        const int L = config.num_layers;
        for (bool bf16 : {false, true}) {
            for (bool overlap : {false, true}) {
                for (int N = 1; N <= 4; ++N) {
                    test::on_ranks(N, [&](Comm& comm) {
                        const ZeroShards shards(layout, N, comm.rank());
                        if (c.vocab == 100 && !c.tied) {
                            ASSERT_TRUE(shards.head_in_embedding_slot());
                        }
                        std::vector<float> full = test::random_floats(size_t(P), 21);
                        std::vector<float> shard(size_t(shards.shard_size()));
                        cut_shard_host(shards, full.data(), shard.data());
                        Buffer rounded_buffer;
                        Tensor rounded;
                        if (bf16) {
                            rounded_buffer = Buffer(DeviceKind::cpu, size_t(P) * sizeof(uint16_t), "test bf16");
                            rounded = rounded_buffer.view(DType::bf16, 0, {P});
                            ops::copy(OpContext{}, rounded, cpu_f32(full.data(), {P}));
                        }
                        std::unique_ptr<CommWorker> worker = overlap ? std::make_unique<CommWorker>() : nullptr;
                        ParameterSlots slots(shards, OpContext{}, &comm, worker.get(),
                                             cpu_f32(shard.data(), {shards.shard_size()}), bf16);
                        const GradientSlotSizes sizes = shards.gradient_slots();
                        EXPECT_EQ(slots.bytes(), size_t(2 * sizes.layer + sizes.embedding) *
                                                     (sizeof(float) + (bf16 ? sizeof(uint16_t) : 0)));
                        const int head = head_bucket(L);
                        auto check = [&](int b, int prefetch) {
                            const BucketWeights w = slots.acquire(b, prefetch);
                            EXPECT_TRUE(sees(w, shards.buckets()[size_t(b)], full, rounded))
                                << "bucket " << b << " N " << N << " tied " << c.tied << " vocab " << c.vocab
                                << " bf16 " << bf16 << " overlap " << overlap;
                        };
                        // Forward: embedding, layers, head, each prefetching the next.
                        for (int b = embedding_bucket(); b <= head; ++b) check(b, b < head ? b + 1 : -1);
                        // Backward: head, layers L-1 .. 0 (the embedding's backward reads no weights).
                        for (int b = head; b >= layer_bucket(0); --b) check(b, b > layer_bucket(0) ? b - 1 : -1);
                        // A tied lm_head is the embedding: read by the head forward and backward,
                        // never regathered in between.
                        if (c.tied) {
                            EXPECT_TRUE(slots.holds(embedding_bucket()));
                        }
                        // An update: the next acquires see the new shard.
                        for (float& x : full) x *= 0.5f;
                        for (float& x : shard) x *= 0.5f;
                        if (bf16) ops::copy(OpContext{}, rounded, cpu_f32(full.data(), {P}));
                        slots.invalidate();
                        EXPECT_FALSE(slots.holds(layer_bucket(L - 1)));
                        for (int b = embedding_bucket(); b <= head; ++b) check(b, b < head ? b + 1 : -1);
                    });
                }
            }
        }
    }
}

TEST(ZeroParameterSlots, RejectsAShardOfTheWrongSize) {
    const ParameterLayout layout(test::odd_zero_config(true, 37, 3));
    const ZeroShards shards(layout, 2, 0);
    std::vector<float> shard(size_t(shards.shard_size()) - 1);
    EXPECT_THROW(ParameterSlots(shards, OpContext{}, nullptr, nullptr,
                                cpu_f32(shard.data(), {shards.shard_size() - 1}), false),
                 std::invalid_argument);
}

}  // namespace
}  // namespace rpt
