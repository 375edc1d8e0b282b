// The paged KV cache's bookkeeping: the block allocator (lowest free block first, a
// finished slot's blocks back at once) and the cache's pool, which grows by doubling
// with the used blocks' contents kept, and checks --kv-budget-mb up front for its
// minimum and again when it grows.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "model/kv_block_allocator.h"
#include "model/kv_cache.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

using IVec = std::vector<int32_t>;

IVec table_row(const KvBlockAllocator& a, int slot) {
    return IVec(a.table().begin() + slot * a.max_blocks(), a.table().begin() + (slot + 1) * a.max_blocks());
}

TEST(KvBlocks, AllocatorHandsOutLowestFirstAndTakesBackOnFinish) {
    KvBlockAllocator a(3, 4, 2);  // 3 slots of up to 4 blocks of 2 tokens
    a.add_blocks(5);
    EXPECT_EQ(a.missing(0, 1), 1);
    for (int s = 0; s < 3; ++s) a.reserve(s, 1);
    EXPECT_EQ(table_row(a, 0), (IVec{0, -1, -1, -1}));
    EXPECT_EQ(table_row(a, 2), (IVec{2, -1, -1, -1}));
    const uint64_t version = a.version();
    for (int s = 0; s < 3; ++s) a.reserve(s, 2);  // still inside the first block
    EXPECT_EQ(a.version(), version) << "no block handed out, no table change";
    a.reserve(1, 3);
    a.reserve(2, 3);
    EXPECT_EQ(table_row(a, 1), (IVec{1, 3, -1, -1}));
    EXPECT_EQ(a.used(), 5);
    EXPECT_EQ(a.live_tokens(), 2 + 3 + 3);
    EXPECT_THROW(a.reserve(0, 3), std::logic_error) << "the free list is empty";
    a.release(1);  // slot 1 finished: blocks 1 and 3 free again
    EXPECT_EQ(table_row(a, 1), (IVec{-1, -1, -1, -1}));
    EXPECT_EQ(a.used(), 3);
    a.reserve(0, 5);  // two more blocks: the lowest free ones, 1 then 3
    EXPECT_EQ(table_row(a, 0), (IVec{0, 1, 3, -1}));
    EXPECT_EQ(a.peak_used(), 5);
    EXPECT_THROW(a.reserve(0, 9), std::out_of_range) << "past 4 blocks of 2 tokens";
}

ModelConfig blocks_config() {
    test::TinyShape s;
    s.vocab = 16;
    s.ffn = 16;
    return test::tiny_config(s);
}

// 2 contexts x 2 rollouts, prefix 4, up to 40 new tokens in blocks of 4, f32.
KvCacheShape paged_shape() { return KvCacheShape{2, 2, 4, 40, KvDType::f32, Precision::f32, 4}; }

TEST(KvBlocks, PoolGrowsByDoublingAndKeepsTheUsedBlocks) {
    const ModelConfig c = blocks_config();
    const KvCacheShape shape = paged_shape();
    KvCache cache(c, OpContext{}, shape, size_t(1) << 26);
    ASSERT_EQ(cache.blocks().capacity(), 4) << "one block per slot to start";
    EXPECT_LT(cache.peak_kv_bytes(), KvCache::kv_bytes(c, shape, DeviceKind::cpu));
    EXPECT_EQ(cache.peak_kv_bytes(), KvCache::min_kv_bytes(c, shape, DeviceKind::cpu));
    cache.reserve({0, 1, 2, 3}, 1);
    EXPECT_EQ(cache.suffix_k[0].dim(0), 4);
    // Mark the blocks in use, then cross a block boundary: the pool doubles.
    std::vector<float> marks(size_t(cache.suffix_k[1].numel()));
    for (size_t i = 0; i < marks.size(); ++i) marks[i] = float(i);
    copy_from_host(cache.suffix_k[1], marks.data());
    cache.reserve({0, 1, 2, 3}, 5);
    EXPECT_EQ(cache.blocks().capacity(), 8);
    ASSERT_EQ(cache.suffix_k[1].dim(0), 8);
    std::vector<float> after(size_t(cache.suffix_k[1].numel()));
    copy_to_host(after.data(), cache.suffix_k[1]);
    EXPECT_TRUE(test::bitwise_equal(std::vector<float>(after.begin(), after.begin() + int64_t(marks.size())), marks));
    // Finished slots' blocks serve the others, lowest first, before the pool grows again.
    cache.release(1);  // blocks 1 and 5
    cache.release(2);  // blocks 2 and 6
    cache.reserve({0, 3}, 9);
    EXPECT_EQ(cache.blocks().capacity(), 8);
    EXPECT_EQ(cache.blocks().used(), 6);
    EXPECT_EQ(IVec(cache.blocks().table().begin(), cache.blocks().table().begin() + 3), (IVec{0, 4, 1}));
    EXPECT_EQ(cache.blocks().peak_used(), 8);
}

TEST(KvBlocks, BudgetIsCheckedForTheMinimumThenAsThePoolGrows) {
    const ModelConfig c = blocks_config();
    const KvCacheShape shape = paged_shape();
    const size_t minimum = KvCache::min_kv_bytes(c, shape, DeviceKind::cpu);
    try {
        KvCache too_small(c, OpContext{}, shape, minimum - 1);
        FAIL() << "expected the up-front budget error";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("--kv-budget-mb"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("at least"), std::string::npos) << e.what();
    }
    KvCache cache(c, OpContext{}, shape, minimum);  // room for one block per slot, no more
    cache.reserve({0, 1, 2, 3}, 4);
    try {
        cache.reserve({0, 1, 2, 3}, 5);
        FAIL() << "expected the growth budget error";
    } catch (const std::invalid_argument& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("--kv-budget-mb"), std::string::npos) << what;
        EXPECT_NE(what.find("16 tokens live"), std::string::npos) << what;
    }
}

}  // namespace
}  // namespace rpt
