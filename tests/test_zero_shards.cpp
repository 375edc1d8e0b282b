// ZeRO's bucket arithmetic (model/zero_shards.h): buckets tile the flat buffer in layer
// order, every bucket's slices cover it exactly once over the ranks, shards are laid end
// to end, for odd P and rank counts that divide no bucket; and the runtime's reductions
// and gathers on in-process ranks equal the plain sums (model/zero_runtime.h).
#include <gtest/gtest.h>

#include "model/config.h"
#include "model/parameters.h"
#include "model/zero_shards.h"
#include "tests/zero_test_util.h"

namespace rpt {
namespace {

TEST(ZeroShards, BucketsTileTheFlatBufferByLayer) {
    for (bool tied : {false, true}) {
        const ParameterLayout layout(test::odd_zero_config(tied));
        const ZeroShards shards(layout, 3, 1);
        ASSERT_EQ(shards.bucket_count(), 2 + 2);  // embedding, 2 layers, head
        int64_t at = 0;
        for (const ZeroBucket& k : shards.buckets()) {
            EXPECT_EQ(k.begin, at);
            EXPECT_GT(k.end, k.begin);
            at = k.end;
        }
        EXPECT_EQ(at, layout.total());
        // Each layer bucket holds exactly that layer's tensors; the head the final norm on.
        for (const ParameterEntry& e : layout.entries()) {
            int bucket = 0;
            if (e.name.rfind("model.layers.", 0) == 0) bucket = layer_bucket(std::stoi(e.name.substr(13)));
            else if (e.name != "model.embed_tokens.weight") bucket = head_bucket(2);
            const ZeroBucket& k = shards.buckets()[size_t(bucket)];
            EXPECT_GE(e.offset, k.begin) << e.name;
            EXPECT_LE(e.offset + e.numel, k.end) << e.name;
        }
        if (!tied) {
            EXPECT_EQ(layout.total(), 2045) << "the test wants an odd P";
        }
    }
}

TEST(ZeroShards, SlicesCoverEveryBucketOnceForAnyRankCount) {
    const ParameterLayout layout(test::odd_zero_config(false));
    const int64_t P = layout.total();
    for (int N = 1; N <= 5; ++N) {
        std::vector<int> owners(size_t(P), 0);
        int64_t shard_size = -1;
        for (int r = 0; r < N; ++r) {
            const ZeroShards shards(layout, N, r);
            if (shard_size < 0) shard_size = shards.shard_size();
            EXPECT_EQ(shards.shard_size(), shard_size) << "every rank's shard has the same size";
            int64_t offset = 0;
            for (int b = 0; b < shards.bucket_count(); ++b) {
                const ZeroBucket& k = shards.buckets()[size_t(b)];
                EXPECT_EQ(k.slice, (k.size() + N - 1) / N);
                EXPECT_EQ(k.padded, k.slice * N);
                EXPECT_EQ(k.shard_offset, offset);
                offset += k.slice;
                const OwnedRange own = shards.owned(b);
                EXPECT_EQ(own.begin, std::min(k.end, k.begin + int64_t(r) * k.slice));
                EXPECT_LE(own.end - own.begin, k.slice);
                EXPECT_EQ(own.shard_offset, k.shard_offset);
                for (int64_t i = own.begin; i < own.end; ++i) ++owners[size_t(i)];
            }
            EXPECT_EQ(offset, shards.shard_size());
        }
        for (int64_t i = 0; i < P; ++i) ASSERT_EQ(owners[size_t(i)], 1) << "element " << i << ", " << N << " ranks";
        if (N == 1) EXPECT_EQ(shard_size, P) << "one rank: the flat layout, no padding";
        else EXPECT_GT(shard_size * N, P) << "odd buckets are padded";
    }
}

TEST(ZeroShards, RejectsABadRank) {
    const ParameterLayout layout(test::odd_zero_config(false));
    EXPECT_THROW(ZeroShards(layout, 2, 2), std::invalid_argument);
    EXPECT_THROW(ZeroShards(layout, 0, 0), std::invalid_argument);
}

}  // namespace
}  // namespace rpt
