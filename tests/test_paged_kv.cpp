// The paged suffix layout of the decode kernels (kernels/paged_kv.h) against the
// contiguous one, on the CPU twins: appending token by token puts each row exactly where
// the block table says (and nowhere else), and decode attention over the pool gives the
// same bits as over the contiguous cache. Every pool row no slot's tokens reach -- spare
// blocks and the tail of each slot's last block -- is NaN, so reading one would show.
// Odd sizes, block sizes that do not divide the lengths, one-token blocks, GQA; f32 and
// bf16 caches.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "kernels/bf16.h"
#include "kernels/rl_ops.h"
#include "tests/paged_kv_util.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

using Vec = std::vector<float>;
using IVec = std::vector<int32_t>;

OpContext cpu() { return OpContext{}; }
Tensor f32(Vec& v, std::initializer_list<int64_t> shape) { return make_tensor(v.data(), DType::f32, DeviceKind::cpu, shape); }
Tensor i32(IVec& v, std::initializer_list<int64_t> shape) { return make_tensor(v.data(), DType::i32, DeviceKind::cpu, shape); }

// The cache's storage: fp32, or bf16 bits.
template <typename T>
struct Storage {
    static constexpr DType dtype = std::is_same_v<T, float> ? DType::f32 : DType::bf16;
    static T poison() {
        if constexpr (std::is_same_v<T, float>) return std::numeric_limits<float>::quiet_NaN();
        else return uint16_t(0x7fc0);  // a bf16 quiet NaN
    }
    static T from_float(float x) {
        if constexpr (std::is_same_v<T, float>) return x;
        else return f32_to_bf16(x);
    }
};

template <typename T>
Tensor cache_view(std::vector<T>& v, std::initializer_list<int64_t> shape) {
    return make_tensor(v.data(), Storage<T>::dtype, DeviceKind::cpu, shape);
}

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

struct Case {
    int64_t B, G, Tp, Tmax, H, KVH, D, Tb;
};

template <typename T>
void check_paged_matches_contiguous(const Case& c, uint32_t seed) {
    const int64_t S = c.B * c.G, row = c.KVH * c.D, KVH = c.KVH, D = c.D, Tmax = c.Tmax, Tb = c.Tb;
    IVec length = test::random_ints(size_t(S), seed, 1, int32_t(Tmax));
    length[0] = int32_t(Tmax);  // one slot full
    test::PagedTable pt = test::paged_table(length, Tmax, Tb, /*spare=*/3, seed);
    const int64_t N = pt.blocks, MB = pt.max_blocks;
    const T poison = Storage<T>::poison();
    std::vector<T> ck(size_t(S * Tmax * row), poison), cv(ck), pool_k(size_t(N * Tb * row), poison), pool_v(pool_k);
    const Vec k_all = test::random_floats(size_t(S * Tmax * row), seed + 1);
    const Vec v_all = test::random_floats(size_t(S * Tmax * row), seed + 2);

    // Append token t of every slot still growing, the last slot's row first.
    for (int64_t t = 0; t < Tmax; ++t) {
        IVec slots, index;
        Vec ka, va;
        for (int64_t s = S - 1; s >= 0; --s) {
            if (length[size_t(s)] <= t) continue;
            slots.push_back(int32_t(s));
            index.push_back(int32_t(t));
            ka.insert(ka.end(), k_all.begin() + (s * Tmax + t) * row, k_all.begin() + (s * Tmax + t + 1) * row);
            va.insert(va.end(), v_all.begin() + (s * Tmax + t) * row, v_all.begin() + (s * Tmax + t + 1) * row);
        }
        const int64_t A = int64_t(slots.size());
        ops::kv_cache_append(cpu(), cache_view(ck, {S, Tmax, KVH, D}), f32(ka, {A, KVH, D}), i32(slots, {A}),
                             i32(index, {A}));
        ops::kv_cache_append(cpu(), cache_view(cv, {S, Tmax, KVH, D}), f32(va, {A, KVH, D}), i32(slots, {A}),
                             i32(index, {A}));
        ops::kv_cache_append(cpu(), cache_view(pool_k, {N, Tb, KVH, D}), f32(ka, {A, KVH, D}), i32(slots, {A}),
                             i32(index, {A}), i32(pt.table, {S, MB}));
        ops::kv_cache_append(cpu(), cache_view(pool_v, {N, Tb, KVH, D}), f32(va, {A, KVH, D}), i32(slots, {A}),
                             i32(index, {A}), i32(pt.table, {S, MB}));
    }
    // The pool is the contiguous cache scattered by the table, poison everywhere else.
    EXPECT_TRUE(same_bits(pool_k, test::scatter_to_pool(ck, length, pt, Tmax, Tb, row, poison)));
    EXPECT_TRUE(same_bits(pool_v, test::scatter_to_pool(cv, length, pt, Tmax, Tb, row, poison)));

    // One decode step over both: two of every three slots active, in reverse order.
    std::vector<T> prefix_k, prefix_v;
    for (float x : test::random_floats(size_t(c.B * c.Tp * row), seed + 3)) prefix_k.push_back(Storage<T>::from_float(x));
    for (float x : test::random_floats(size_t(c.B * c.Tp * row), seed + 4)) prefix_v.push_back(Storage<T>::from_float(x));
    IVec prefix_len = test::random_ints(size_t(c.B), seed + 5, 0, int32_t(c.Tp));
    prefix_len[0] = int32_t(c.Tp);
    IVec slots, suffix_len;
    for (int64_t s = S - 1; s >= 0; --s)
        if (s % 3 != 1) {
            slots.push_back(int32_t(s));
            suffix_len.push_back(length[size_t(s)]);
        }
    const int64_t A = int64_t(slots.size());
    Vec q = test::random_floats(size_t(A * c.H * D), seed + 6);
    Vec contiguous = test::poisoned(size_t(A * c.H * D)), paged = test::poisoned(size_t(A * c.H * D));
    ops::decode_attention(cpu(), f32(contiguous, {A, c.H, D}), f32(q, {A, c.H, D}),
                          cache_view(prefix_k, {c.B, c.Tp, KVH, D}), cache_view(prefix_v, {c.B, c.Tp, KVH, D}),
                          i32(prefix_len, {c.B}), cache_view(ck, {S, Tmax, KVH, D}), cache_view(cv, {S, Tmax, KVH, D}),
                          i32(suffix_len, {A}), i32(slots, {A}), int(c.G));
    ops::decode_attention(cpu(), f32(paged, {A, c.H, D}), f32(q, {A, c.H, D}), cache_view(prefix_k, {c.B, c.Tp, KVH, D}),
                          cache_view(prefix_v, {c.B, c.Tp, KVH, D}), i32(prefix_len, {c.B}),
                          cache_view(pool_k, {N, Tb, KVH, D}), cache_view(pool_v, {N, Tb, KVH, D}),
                          i32(suffix_len, {A}), i32(slots, {A}), int(c.G), i32(pt.table, {S, MB}));
    for (float x : paged) ASSERT_TRUE(std::isfinite(x)) << "a poisoned pool row was read";
    EXPECT_TRUE(test::bitwise_equal(paged, contiguous));
}

const Case kCases[] = {
    {2, 3, 9, 13, 6, 2, 8, 5},    // GQA 3, blocks of 5 over lengths up to 13
    {1, 4, 5, 17, 4, 4, 24, 1},   // one-token blocks, odd head dim
    {2, 2, 7, 11, 2, 1, 64, 16},  // one block longer than any slot
    {3, 1, 4, 20, 4, 2, 16, 3},   // one rollout per context
};

TEST(PagedKv, F32PoolMatchesContiguousBitwise) {
    uint32_t seed = 40;
    for (const Case& c : kCases) check_paged_matches_contiguous<float>(c, seed += 10);
}

TEST(PagedKv, Bf16PoolMatchesContiguousBitwise) {
    uint32_t seed = 90;
    for (const Case& c : kCases) check_paged_matches_contiguous<uint16_t>(c, seed += 10);
}

TEST(PagedKv, RejectsBlocksOutsideThePool) {
    constexpr int64_t S = 2, Tb = 4, MB = 2, N = 3, KVH = 1, D = 8, B = 1, Tp = 2;
    Vec pool(size_t(N * Tb * KVH * D), 0.0f), kv(size_t(KVH * D), 1.0f);
    IVec table = {0, 1, 2, -1};  // slot 1 owns block 2 only
    IVec slots = {1}, index = {4};  // token 4 is in slot 1's second block: unowned
    EXPECT_THROW(ops::kv_cache_append(cpu(), f32(pool, {N, Tb, KVH, D}), f32(kv, {1, KVH, D}), i32(slots, {1}),
                                      i32(index, {1}), i32(table, {S, MB})),
                 std::out_of_range);
    table[1] = 7;  // past the pool's 3 blocks
    slots = {0};
    EXPECT_THROW(ops::kv_cache_append(cpu(), f32(pool, {N, Tb, KVH, D}), f32(kv, {1, KVH, D}), i32(slots, {1}),
                                      i32(index, {1}), i32(table, {S, MB})),
                 std::out_of_range);
    Vec q(size_t(KVH * D), 0.5f), out(size_t(KVH * D)), prefix(size_t(B * Tp * KVH * D), 0.0f);
    IVec prefix_len = {Tp}, suffix_len = {6};
    EXPECT_THROW(ops::decode_attention(cpu(), f32(out, {1, KVH, D}), f32(q, {1, KVH, D}), f32(prefix, {B, Tp, KVH, D}),
                                       f32(prefix, {B, Tp, KVH, D}), i32(prefix_len, {B}), f32(pool, {N, Tb, KVH, D}),
                                       f32(pool, {N, Tb, KVH, D}), i32(suffix_len, {1}), i32(slots, {1}), 2,
                                       i32(table, {S, MB})),
                 std::out_of_range);
}

}  // namespace
}  // namespace rpt
