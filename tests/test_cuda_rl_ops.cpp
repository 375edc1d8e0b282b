// The CUDA RL kernels (kernels/cuda/rl_*.cu) against their CPU twins, through the op API
// of kernels/rl_ops.h, on random inputs: KV-cache append, decode attention (short and
// split-key contexts, GQA, head dims 8..256), the same two and ops::copy's conversions
// with a bf16 cache (both backends read the same bf16 values), decode on bf16 rows (a bf16
// model's q, K/V and output, over bf16 and fp32 caches), sampling (greedy, temperature, top-k,
// top-p), the prefix reward (tag and \boxed{} formats, long responses, the four reward kinds), GRPO advantages
// and the policy loss. Outputs are poisoned (NaN, or -7 for ints) before each run, so an
// element a kernel forgets to write fails. Every test skips when no GPU is present.
#ifdef RPT_WITH_CUDA

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/bf16.h"
#include "kernels/context.h"
#include "kernels/cuda/device.h"
#include "kernels/rl_ops.h"
#include "tests/paged_kv_util.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

using Vec = std::vector<float>;
using IVec = std::vector<int32_t>;
using BVec = std::vector<uint8_t>;
using HVec = std::vector<uint16_t>;  // bf16 bits

constexpr double kTolerance = 1e-5;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

#define SKIP_WITHOUT_GPU() \
    if (::rpt::gpu_count() == 0) GTEST_SKIP() << "no GPU"

template <typename T>
constexpr DType dtype_of() {
    if constexpr (std::is_same_v<T, float>) return DType::f32;
    else if constexpr (std::is_same_v<T, int32_t>) return DType::i32;
    else if constexpr (std::is_same_v<T, uint16_t>) return DType::bf16;
    else return DType::u8;
}

// Host data with a device copy; views for both backends.
template <typename T>
struct Both {
    std::vector<T> host;
    std::vector<int64_t> shape;
    DeviceBuffer dev;

    Both(std::vector<T> values, std::vector<int64_t> dims)
        : host(std::move(values)), shape(std::move(dims)), dev(std::max<size_t>(host.size(), 1) * sizeof(T), "test") {
        copy_host_to_device(dev.data(), host.data(), host.size() * sizeof(T));
    }
    Tensor view(void* data, DeviceKind device) const {
        Tensor t;
        t.data = data;
        t.dtype = dtype_of<T>();
        t.device = device;
        t.ndim = static_cast<int>(shape.size());
        for (size_t a = 0; a < shape.size(); ++a) t.shape[a] = shape[a];
        return t;
    }
    Tensor cpu() { return view(host.data(), DeviceKind::cpu); }
    Tensor gpu() const { return view(dev.data(), DeviceKind::cuda); }
    std::vector<T> download() const {
        std::vector<T> out(host.size());
        copy_device_to_host(out.data(), dev.data(), out.size() * sizeof(T));
        return out;
    }
};

// An output: poisoned on both sides.
Both<float> out_f32(std::vector<int64_t> dims) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return Both<float>(Vec(n, kNaN), dims);
}
Both<int32_t> out_i32(std::vector<int64_t> dims) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return Both<int32_t>(IVec(n, -7), dims);
}

struct Gpu {
    CudaStream stream;
    OpContext ctx{DeviceKind::cuda, stream.handle()};
    OpContext cpu{};
    void sync() { stream.synchronize(); }
};

// ================================ decode =============================================

TEST(CudaRlDecode, KvCacheAppendMatchesCpu) {
    SKIP_WITHOUT_GPU();
    Gpu g;
    constexpr int64_t S = 6, Tmax = 9, KVH = 2, D = 24, A = 4;
    Both<float> suffix(test::random_floats(S * Tmax * KVH * D, 1), {S, Tmax, KVH, D});
    Both<float> kv(test::random_floats(A * KVH * D, 2), {A, KVH, D});
    Both<int32_t> slots(IVec{5, 0, 3, 2}, {A}), index(IVec{8, 0, 4, 1}, {A});
    ops::kv_cache_append(g.cpu, suffix.cpu(), kv.cpu(), slots.cpu(), index.cpu());
    ops::kv_cache_append(g.ctx, suffix.gpu(), kv.gpu(), slots.gpu(), index.gpu());
    g.sync();
    EXPECT_TRUE(test::bitwise_equal(suffix.download(), suffix.host));
}

struct DecodeShape {
    int64_t B, G, Tp, Tmax, H, KVH, D;
};

// The shapes whose keys split over several blocks: left out in small mode (sanitizers).
bool is_long(const DecodeShape& sh) { return sh.Tp + sh.Tmax > 300; }

// Two of every three slots active, in reverse order (rows need not follow slots).
IVec active_slots(int64_t S) {
    IVec active;
    for (int64_t s = S - 1; s >= 0; --s)
        if (s % 3 != 1) active.push_back(static_cast<int32_t>(s));
    return active;
}

// Random prefix lengths in [0, Tp], the first context's full.
IVec prefix_lengths(const DecodeShape& sh, uint32_t seed) {
    IVec plen = test::random_ints(sh.B, seed, 0, static_cast<int32_t>(sh.Tp));
    plen[0] = static_cast<int32_t>(sh.Tp);
    return plen;
}

TEST(CudaRlDecode, AttentionMatchesCpu) {
    SKIP_WITHOUT_GPU();
    Gpu g;
    // GQA ratios 1, 2, 3, 6 and 12 (more heads per KV head than one block serves), head
    // dims 8..256 (every per-lane width), short contexts (one split) and long ones that
    // split the keys over several blocks, with empty prefixes drawn at random.
    const DecodeShape shapes[] = {{2, 3, 9, 5, 2, 2, 8},      {3, 2, 17, 6, 4, 2, 64},  {2, 4, 40, 7, 6, 2, 128},
                                  {1, 5, 5, 3, 3, 1, 96},     {2, 2, 600, 90, 12, 2, 128}, {2, 3, 300, 300, 12, 1, 64},
                                  {1, 2, 700, 20, 4, 4, 256}, {2, 2, 257, 1, 2, 1, 32}};
    uint32_t seed = 100;
    for (const DecodeShape& sh : shapes) {
        if (test::small_mode() && is_long(sh)) continue;
        const int64_t S = sh.B * sh.G;
        const IVec active = active_slots(S);
        const int64_t A = static_cast<int64_t>(active.size());
        const IVec plen = prefix_lengths(sh, ++seed);
        Both<float> q(test::random_floats(A * sh.H * sh.D, ++seed), {A, sh.H, sh.D});
        Both<float> pk(test::random_floats(sh.B * sh.Tp * sh.KVH * sh.D, ++seed), {sh.B, sh.Tp, sh.KVH, sh.D});
        Both<float> pv(test::random_floats(sh.B * sh.Tp * sh.KVH * sh.D, ++seed), {sh.B, sh.Tp, sh.KVH, sh.D});
        Both<float> sk(test::random_floats(S * sh.Tmax * sh.KVH * sh.D, ++seed), {S, sh.Tmax, sh.KVH, sh.D});
        Both<float> sv(test::random_floats(S * sh.Tmax * sh.KVH * sh.D, ++seed), {S, sh.Tmax, sh.KVH, sh.D});
        Both<int32_t> prefix_len(plen, {sh.B});
        Both<int32_t> suffix_len(test::random_ints(A, ++seed, 1, static_cast<int32_t>(sh.Tmax)), {A});
        Both<int32_t> slots(active, {A});
        Both<float> out = out_f32({A, sh.H, sh.D});
        ops::decode_attention(g.cpu, out.cpu(), q.cpu(), pk.cpu(), pv.cpu(), prefix_len.cpu(), sk.cpu(), sv.cpu(),
                              suffix_len.cpu(), slots.cpu(), static_cast<int>(sh.G));
        ops::decode_attention(g.ctx, out.gpu(), q.gpu(), pk.gpu(), pv.gpu(), prefix_len.gpu(), sk.gpu(), sv.gpu(),
                              suffix_len.gpu(), slots.gpu(), static_cast<int>(sh.G));
        g.sync();
        EXPECT_LT(test::rel_error(out.download(), out.host), kTolerance)
            << "Tp " << sh.Tp << " H " << sh.H << " KVH " << sh.KVH << " D " << sh.D;
    }
}

// ================================ bf16 KV cache ======================================

// Random values rounded to bf16 (bits).
HVec random_bf16(size_t n, uint32_t seed) {
    const Vec v = test::random_floats(n, seed);
    HVec out(n);
    for (size_t i = 0; i < n; ++i) out[i] = f32_to_bf16(v[i]);
    return out;
}

// The view of t's data `off` elements in, with `shape`. off = 1 on bf16 data gives views
// that are 2-byte but not 4-byte aligned, which sends the kernels down their
// one-element-per-lane paths.
Tensor offset_view(const Tensor& t, int64_t off, std::initializer_list<int64_t> shape) {
    return make_tensor(static_cast<char*>(t.data) + off * int64_t(dtype_size(t.dtype)), t.dtype, t.device, shape);
}

TEST(CudaRlDecode, Bf16AppendMatchesCpu) {
    SKIP_WITHOUT_GPU();
    Gpu g;
    constexpr int64_t S = 6, Tmax = 9, KVH = 2, D = 24, A = 4;
    Both<uint16_t> suffix(random_bf16(S * Tmax * KVH * D, 1), {S, Tmax, KVH, D});
    // Unrounded fp32 rows, so the rounding itself is compared (both must round to nearest even).
    Vec values = test::random_nonzero(A * KVH * D, 2);
    values[0] = 1.0f + 0x1p-8f;       // ties, to even: 1
    values[1] = 1.0f + 3 * 0x1p-8f;   // and 1 + 2^-6
    Both<float> kv(values, {A, KVH, D});
    Both<int32_t> slots(IVec{5, 0, 3, 2}, {A}), index(IVec{8, 0, 4, 1}, {A});
    ops::kv_cache_append(g.cpu, suffix.cpu(), kv.cpu(), slots.cpu(), index.cpu());
    ops::kv_cache_append(g.ctx, suffix.gpu(), kv.gpu(), slots.gpu(), index.gpu());
    g.sync();
    EXPECT_EQ(suffix.download(), suffix.host);
}

TEST(CudaRlDecode, Bf16AttentionMatchesCpu) {
    SKIP_WITHOUT_GPU();
    Gpu g;
    // As the fp32 test, plus odd head dims (7, 33: no bf16 pairs) and, for the last
    // shape, K/V views that are not 4-byte aligned (no pairs either).
    const DecodeShape shapes[] = {{2, 3, 9, 5, 2, 2, 8},      {3, 2, 17, 6, 4, 2, 64},  {2, 4, 40, 7, 6, 2, 128},
                                  {1, 5, 5, 3, 3, 1, 96},     {2, 2, 600, 90, 12, 2, 128}, {2, 3, 300, 300, 12, 1, 64},
                                  {1, 2, 700, 20, 4, 4, 256}, {2, 2, 257, 1, 2, 1, 32},  {2, 2, 30, 6, 4, 2, 7},
                                  {1, 3, 280, 8, 2, 1, 33},   {2, 2, 50, 9, 4, 2, 64}};
    const size_t misaligned = std::size(shapes) - 1;
    uint32_t seed = 300;
    for (size_t c = 0; c < std::size(shapes); ++c) {
        const DecodeShape& sh = shapes[c];
        if (test::small_mode() && is_long(sh)) continue;
        const int64_t S = sh.B * sh.G, off = c == misaligned ? 1 : 0;
        const IVec active = active_slots(S);
        const int64_t A = static_cast<int64_t>(active.size());
        const IVec plen = prefix_lengths(sh, ++seed);
        const int64_t np = sh.B * sh.Tp * sh.KVH * sh.D, ns = S * sh.Tmax * sh.KVH * sh.D;
        Both<float> q(test::random_floats(A * sh.H * sh.D, ++seed, -3.0f, 3.0f), {A, sh.H, sh.D});
        Both<uint16_t> pk(random_bf16(np + off, ++seed), {np + off}), pv(random_bf16(np + off, ++seed), {np + off});
        Both<uint16_t> sk(random_bf16(ns + off, ++seed), {ns + off}), sv(random_bf16(ns + off, ++seed), {ns + off});
        Both<int32_t> prefix_len(plen, {sh.B});
        Both<int32_t> suffix_len(test::random_ints(A, ++seed, 1, static_cast<int32_t>(sh.Tmax)), {A});
        Both<int32_t> slots(active, {A});
        Both<float> out = out_f32({A, sh.H, sh.D});
        auto view = [&](const Tensor& t, bool prefix) {
            return prefix ? offset_view(t, off, {sh.B, sh.Tp, sh.KVH, sh.D})
                          : offset_view(t, off, {S, sh.Tmax, sh.KVH, sh.D});
        };
        ops::decode_attention(g.cpu, out.cpu(), q.cpu(), view(pk.cpu(), true), view(pv.cpu(), true), prefix_len.cpu(),
                              view(sk.cpu(), false), view(sv.cpu(), false), suffix_len.cpu(), slots.cpu(),
                              static_cast<int>(sh.G));
        ops::decode_attention(g.ctx, out.gpu(), q.gpu(), view(pk.gpu(), true), view(pv.gpu(), true), prefix_len.gpu(),
                              view(sk.gpu(), false), view(sv.gpu(), false), suffix_len.gpu(), slots.gpu(),
                              static_cast<int>(sh.G));
        g.sync();
        EXPECT_LT(test::rel_error(out.download(), out.host), kTolerance)
            << "Tp " << sh.Tp << " H " << sh.H << " KVH " << sh.KVH << " D " << sh.D << " offset " << off;
    }
}

// ---- bf16 rows: a bf16 model's decode step (q, the appended K/V and out bf16) ---------

// Cache values of element type T (fp32, or bf16 bits) drawn at random.
template <typename T>
std::vector<T> random_cache(size_t n, uint32_t seed) {
    if constexpr (std::is_same_v<T, uint16_t>) return random_bf16(n, seed);
    else return test::random_floats(n, seed);
}

// Appending bf16 rows copies their bits into a bf16 cache and widens them exactly into
// an fp32 one: both backends agree bit for bit.
template <typename T>
void check_bf16_rows_append(Gpu& g) {
    constexpr int64_t S = 6, Tmax = 9, KVH = 2, D = 24, A = 4;
    Both<T> suffix(random_cache<T>(S * Tmax * KVH * D, 11), {S, Tmax, KVH, D});
    Both<uint16_t> kv(random_bf16(A * KVH * D, 12), {A, KVH, D});
    Both<int32_t> slots(IVec{5, 0, 3, 2}, {A}), index(IVec{8, 0, 4, 1}, {A});
    ops::kv_cache_append(g.cpu, suffix.cpu(), kv.cpu(), slots.cpu(), index.cpu());
    ops::kv_cache_append(g.ctx, suffix.gpu(), kv.gpu(), slots.gpu(), index.gpu());
    g.sync();
    const std::vector<T> got = suffix.download();
    EXPECT_EQ(std::memcmp(got.data(), suffix.host.data(), got.size() * sizeof(T)), 0);
}

TEST(CudaRlDecode, Bf16RowsAppendMatchesCpu) {
    SKIP_WITHOUT_GPU();
    Gpu g;
    check_bf16_rows_append<uint16_t>(g);
    check_bf16_rows_append<float>(g);
}

Vec widened_bf16(const HVec& v) {
    Vec out(v.size());
    for (size_t i = 0; i < v.size(); ++i) out[i] = bf16_to_f32(v[i]);
    return out;
}

// Decode attention on bf16 q and out over a cache of T. Both backends compute in fp32
// and round out once at the store, so they differ only where fp32 summation order moves
// a value across a bf16 rounding boundary: at most one bf16 ulp, on few elements.
template <typename T>
void check_bf16_rows_attention(Gpu& g, const DecodeShape& sh, uint32_t seed) {
    const int64_t S = sh.B * sh.G;
    const IVec active = active_slots(S);
    const int64_t A = static_cast<int64_t>(active.size());
    const int64_t np = sh.B * sh.Tp * sh.KVH * sh.D, ns = S * sh.Tmax * sh.KVH * sh.D;
    Both<uint16_t> q(random_bf16(A * sh.H * sh.D, ++seed), {A, sh.H, sh.D});
    for (uint16_t& x : q.host) x = f32_to_bf16(3.0f * bf16_to_f32(x));  // peaked softmax
    copy_host_to_device(q.dev.data(), q.host.data(), q.host.size() * sizeof(uint16_t));
    Both<T> pk(random_cache<T>(np, ++seed), {sh.B, sh.Tp, sh.KVH, sh.D});
    Both<T> pv(random_cache<T>(np, ++seed), {sh.B, sh.Tp, sh.KVH, sh.D});
    Both<T> sk(random_cache<T>(ns, ++seed), {S, sh.Tmax, sh.KVH, sh.D});
    Both<T> sv(random_cache<T>(ns, ++seed), {S, sh.Tmax, sh.KVH, sh.D});
    Both<int32_t> prefix_len(prefix_lengths(sh, ++seed), {sh.B});
    Both<int32_t> suffix_len(test::random_ints(A, ++seed, 1, static_cast<int32_t>(sh.Tmax)), {A});
    Both<int32_t> slots(active, {A});
    Both<uint16_t> out(HVec(A * sh.H * sh.D, 0x7fc0), {A, sh.H, sh.D});  // NaN poison
    ops::decode_attention(g.cpu, out.cpu(), q.cpu(), pk.cpu(), pv.cpu(), prefix_len.cpu(), sk.cpu(), sv.cpu(),
                          suffix_len.cpu(), slots.cpu(), static_cast<int>(sh.G));
    ops::decode_attention(g.ctx, out.gpu(), q.gpu(), pk.gpu(), pv.gpu(), prefix_len.gpu(), sk.gpu(), sv.gpu(),
                          suffix_len.gpu(), slots.gpu(), static_cast<int>(sh.G));
    g.sync();
    const Vec got = widened_bf16(out.download()), want = widened_bf16(out.host);
    const std::string at = std::string(std::is_same_v<T, uint16_t> ? "bf16" : "f32") + " cache, Tp " +
                           std::to_string(sh.Tp) + " H " + std::to_string(sh.H) + " KVH " + std::to_string(sh.KVH) +
                           " D " + std::to_string(sh.D);
    // One ulp of the value, plus fp32-level slack for outputs that cancel to near zero.
    float max_abs = 0.0f;
    for (float x : want) max_abs = std::max(max_abs, std::fabs(x));
    size_t beyond_one_ulp = 0, nan = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        nan += std::isnan(got[i]) || std::isnan(want[i]);
        const float ulp = std::ldexp(1.0f, std::ilogb(std::max(std::fabs(want[i]), 1e-30f)) - 7);
        beyond_one_ulp += std::fabs(got[i] - want[i]) > ulp + 1e-5f * max_abs;
    }
    EXPECT_EQ(nan, 0u) << at;
    EXPECT_EQ(beyond_one_ulp, 0u) << at;
    EXPECT_LT(test::rel_error(got, want), 4e-3) << at;
}

TEST(CudaRlDecode, Bf16RowsAttentionMatchesCpu) {
    SKIP_WITHOUT_GPU();
    Gpu g;
    // One split and several (the combine kernel stores the bf16 output then), GQA 1..6,
    // paired and unpaired bf16 head dims (64, 128; 7, 33) and fp32 caches.
    const DecodeShape shapes[] = {{2, 3, 9, 5, 2, 2, 8},     {3, 2, 17, 6, 4, 2, 64},   {2, 4, 40, 7, 6, 2, 128},
                                  {2, 2, 600, 90, 12, 2, 128}, {2, 2, 30, 6, 4, 2, 7},  {1, 3, 280, 8, 2, 1, 33}};
    uint32_t seed = 500;
    for (const DecodeShape& sh : shapes) {
        if (test::small_mode() && is_long(sh)) continue;
        check_bf16_rows_attention<uint16_t>(g, sh, seed += 20);
        check_bf16_rows_attention<float>(g, sh, seed += 20);
    }
}

// ops::copy between f32 and bf16: both backends round to nearest even, so the bits agree.
TEST(CudaRlDecode, Bf16ConvertMatchesCpu) {
    SKIP_WITHOUT_GPU();
    Gpu g;
    for (int64_t n : {1, 7, 1001, 1 << 20}) {
        if (test::small_mode() && n > 1001) continue;
        for (int64_t off : {0, 1}) {  // 1: views not aligned for the paired kernels
            const std::string at = "n " + std::to_string(n) + " offset " + std::to_string(off);
            Vec values = test::random_floats(n + off, uint32_t(n + off), -100.0f, 100.0f);
            values[size_t(off)] = 1.0f + 0x1p-8f;  // a tie, to even
            Both<float> src(values, {n + off});
            Both<uint16_t> half(HVec(n + off, 0x7fc0), {n + off});
            const Tensor src_c = offset_view(src.cpu(), off, {n}), src_g = offset_view(src.gpu(), off, {n});
            const Tensor half_c = offset_view(half.cpu(), off, {n}), half_g = offset_view(half.gpu(), off, {n});
            ops::copy(g.cpu, half_c, src_c);
            ops::copy(g.ctx, half_g, src_g);
            g.sync();
            EXPECT_EQ(half.download(), half.host) << "f32 -> bf16 " << at;

            Both<float> back = out_f32({n + off});
            ops::copy(g.cpu, offset_view(back.cpu(), off, {n}), half_c);
            ops::copy(g.ctx, offset_view(back.gpu(), off, {n}), half_g);
            g.sync();
            EXPECT_TRUE(test::bitwise_equal(back.download(), back.host)) << "bf16 -> f32 " << at;

            Both<uint16_t> again(HVec(n + off, 0x7fc0), {n + off});
            ops::copy(g.ctx, offset_view(again.gpu(), off, {n}), half_g);
            g.sync();
            EXPECT_EQ(again.download(), half.host) << "bf16 -> bf16 " << at;
        }
    }
}

// ================================ paged KV cache =====================================

// The paged suffix (kernels/paged_kv.h) on the GPU: a slot's blocks out of order in a
// pool whose unowned rows (spare blocks, each slot's last-block tail) are NaN. Append
// writes the pool exactly as the CPU twin; attention over the pool gives the bits of the
// GPU's own contiguous run (the same keys in the same order) and matches the CPU twin.
template <typename T>
void check_paged_decode(Gpu& g, const DecodeShape& sh, int64_t Tb, uint32_t seed) {
    const int64_t S = sh.B * sh.G, row = sh.KVH * sh.D;
    IVec length = test::random_ints(S, seed, 1, static_cast<int32_t>(sh.Tmax));
    length[0] = static_cast<int32_t>(sh.Tmax);
    const test::PagedTable pt = test::paged_table(length, sh.Tmax, Tb, /*spare=*/2, seed);
    T poison{};
    if constexpr (std::is_same_v<T, float>) poison = kNaN;
    else poison = 0x7fc0;  // a bf16 quiet NaN
    std::vector<T> contiguous_k = random_cache<T>(S * sh.Tmax * row, seed + 1);
    std::vector<T> contiguous_v = random_cache<T>(S * sh.Tmax * row, seed + 2);
    const std::vector<int64_t> pool_shape = {pt.blocks, Tb, sh.KVH, sh.D}, flat_shape = {S, sh.Tmax, sh.KVH, sh.D};
    Both<T> ck(contiguous_k, flat_shape), cv(contiguous_v, flat_shape);
    Both<T> pk_pool(test::scatter_to_pool(contiguous_k, length, pt, sh.Tmax, Tb, row, poison), pool_shape);
    Both<T> pv_pool(test::scatter_to_pool(contiguous_v, length, pt, sh.Tmax, Tb, row, poison), pool_shape);
    Both<int32_t> table(pt.table, {S, pt.max_blocks});

    // Append: one token per active slot at a random position inside its length.
    const IVec active = active_slots(S);
    const int64_t A = static_cast<int64_t>(active.size());
    IVec positions(A);
    for (int64_t a = 0; a < A; ++a)
        positions[a] = test::random_ints(1, seed + 3 + uint32_t(a), 0, length[size_t(active[a])] - 1)[0];
    Both<float> kv(test::random_floats(A * row, seed + 4), {A, sh.KVH, sh.D});
    Both<int32_t> slots(active, {A}), index(positions, {A});
    Both<T> appended(pk_pool.host, pool_shape);
    ops::kv_cache_append(g.cpu, appended.cpu(), kv.cpu(), slots.cpu(), index.cpu(), table.cpu());
    ops::kv_cache_append(g.ctx, appended.gpu(), kv.gpu(), slots.gpu(), index.gpu(), table.gpu());
    g.sync();
    const std::vector<T> appended_gpu = appended.download();  // NaN rows included: compare bits
    EXPECT_EQ(std::memcmp(appended_gpu.data(), appended.host.data(), appended_gpu.size() * sizeof(T)), 0)
        << "append, blocks of " << Tb;

    // Attention over the pool and over the contiguous cache.
    IVec slen(A);
    for (int64_t a = 0; a < A; ++a) slen[a] = length[size_t(active[a])];
    const IVec plen = prefix_lengths(sh, seed + 5);
    Both<float> q(test::random_floats(A * sh.H * sh.D, seed + 6), {A, sh.H, sh.D});
    const std::vector<int64_t> prefix_shape = {sh.B, sh.Tp, sh.KVH, sh.D};
    Both<T> pk(random_cache<T>(sh.B * sh.Tp * row, seed + 7), prefix_shape);
    Both<T> pv(random_cache<T>(sh.B * sh.Tp * row, seed + 8), prefix_shape);
    Both<int32_t> prefix_len(plen, {sh.B}), suffix_len(slen, {A});
    Both<float> paged = out_f32({A, sh.H, sh.D}), flat = out_f32({A, sh.H, sh.D});
    ops::decode_attention(g.cpu, paged.cpu(), q.cpu(), pk.cpu(), pv.cpu(), prefix_len.cpu(), pk_pool.cpu(),
                          pv_pool.cpu(), suffix_len.cpu(), slots.cpu(), static_cast<int>(sh.G), table.cpu());
    ops::decode_attention(g.ctx, paged.gpu(), q.gpu(), pk.gpu(), pv.gpu(), prefix_len.gpu(), pk_pool.gpu(),
                          pv_pool.gpu(), suffix_len.gpu(), slots.gpu(), static_cast<int>(sh.G), table.gpu());
    ops::decode_attention(g.ctx, flat.gpu(), q.gpu(), pk.gpu(), pv.gpu(), prefix_len.gpu(), ck.gpu(), cv.gpu(),
                          suffix_len.gpu(), slots.gpu(), static_cast<int>(sh.G));
    g.sync();
    const Vec on_gpu = paged.download();
    for (float x : on_gpu) ASSERT_TRUE(std::isfinite(x)) << "a poisoned pool row was read, blocks of " << Tb;
    EXPECT_TRUE(test::bitwise_equal(on_gpu, flat.download())) << "blocks of " << Tb << " D " << sh.D;
    EXPECT_LT(test::rel_error(on_gpu, paged.host), kTolerance) << "blocks of " << Tb << " D " << sh.D;
}

TEST(CudaRlDecode, PagedMatchesContiguousAndCpu) {
    SKIP_WITHOUT_GPU();
    Gpu g;
    // Short (one split) and long (split keys, a split starting inside a block) suffixes,
    // GQA, bf16 pairs (D even) and single elements (D odd).
    const DecodeShape shapes[] = {{2, 3, 9, 13, 6, 2, 8}, {1, 4, 5, 17, 4, 4, 33}, {2, 2, 40, 600, 12, 2, 128},
                                  {1, 3, 300, 260, 4, 1, 64}};
    uint32_t seed = 700;
    for (const DecodeShape& sh : shapes) {
        if (test::small_mode() && is_long(sh)) continue;
        for (int64_t Tb : {int64_t(1), int64_t(5), int64_t(16)}) {
            check_paged_decode<float>(g, sh, Tb, seed += 10);
            check_paged_decode<uint16_t>(g, sh, Tb, seed += 10);
        }
    }
}

// ================================ sampling ===========================================

TEST(CudaRlSampling, DrawsMatchCpu) {
    SKIP_WITHOUT_GPU();
    Gpu g;
    for (int64_t V : {7, 1000, 50257}) {
        if (test::small_mode() && V > 1000) continue;
        constexpr int64_t A = 48;
        Both<float> logits(test::random_floats(A * V, 3 + V, -4.0f, 4.0f), {A, V});
        IVec ids(A), pos(A);
        for (int64_t a = 0; a < A; ++a) ids[a] = static_cast<int32_t>(1000 + 7 * a), pos[a] = static_cast<int32_t>(a % 5);
        Both<int32_t> seq(ids, {A}), positions(pos, {A});
        struct Case {
            float T, p;
            int k;
            bool greedy;
        };
        for (const Case& c : {Case{1.0f, 1.0f, 0, false}, Case{0.8f, 1.0f, 0, false}, Case{0.7f, 1.0f, 20, false},
                              Case{1.0f, 0.9f, 0, false}, Case{0.9f, 0.5f, 50, false}, Case{1.0f, 1.0f, 0, true}}) {
            ops::SamplingSettings s;
            s.temperature = c.T;
            s.top_p = c.p;
            s.top_k = c.k;
            s.greedy = c.greedy;
            s.seed = 42;
            s.step = 3;
            Both<int32_t> tokens = out_i32({A});
            Both<float> logprob = out_f32({A});
            ops::sample_tokens(g.cpu, tokens.cpu(), logprob.cpu(), logits.cpu(), seq.cpu(), positions.cpu(), s);
            ops::sample_tokens(g.ctx, tokens.gpu(), logprob.gpu(), logits.gpu(), seq.gpu(), positions.gpu(), s);
            g.sync();
            const IVec got = tokens.download();
            const Vec lp = logprob.download();
            // Masses are summed in double on both backends, so a draw can only differ when
            // u * mass lands within expf rounding (~1e-7 relative) of a token's edge.
            int differ = 0;
            for (int64_t a = 0; a < A; ++a) {
                if (got[a] != tokens.host[a]) {
                    ++differ;
                    continue;
                }
                EXPECT_NEAR(lp[a], logprob.host[a], 1e-4f * (1.0f + std::fabs(logprob.host[a])));
            }
            EXPECT_LE(differ, 1) << "V " << V << " T " << c.T << " p " << c.p << " k " << c.k;
        }
    }
}

// ================================ reward =============================================

TEST(CudaRlReward, MatchesCpu) {
    SKIP_WITHOUT_GPU();
    Gpu g;
    // Vocabulary: markers, digits and words, multi-byte pieces.
    const std::vector<std::string> vocab = {"</think>", "<answer>", "</answer>", "\\boxed{", "{", "}", " ", "1",
                                            "2",        "3",        " 12",       "x",       "\xC3", "\xA9", "\xC3\xA9",
                                            "ab",       " the",     "\n"};
    IVec offsets{0};
    BVec bytes;
    for (const std::string& t : vocab) {
        bytes.insert(bytes.end(), t.begin(), t.end());
        offsets.push_back(static_cast<int32_t>(bytes.size()));
    }
    const int64_t V = static_cast<int64_t>(vocab.size());
    constexpr int64_t B = 6, G = 8, S = B * G, R = 3000, Lmax = 40, Kmax = 20;
    std::mt19937 rng(5);
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    // Truths: random token strings from the non-marker part of the vocabulary.
    BVec truth(B * Lmax, 0);
    IVec tlen(B), bounds(B * Kmax, 0), bcount(B);
    std::vector<IVec> truth_tokens(B);
    for (int64_t b = 0; b < B; ++b) {
        int n = 0, k = 0;
        while (k < Kmax) {
            const int t = pick(4, static_cast<int>(V) - 1);
            if (n + static_cast<int>(vocab[t].size()) > Lmax) break;
            for (char ch : vocab[t]) truth[b * Lmax + n++] = static_cast<uint8_t>(ch);
            bounds[b * Kmax + k++] = n;
            truth_tokens[b].push_back(t);
        }
        tlen[b] = n;
        bcount[b] = k;
    }
    for (bool boxed : {false, true}) {
        // 200,000 bytes: above ops::kMaxSharedResponseBytes, decoded in the global scratch.
        for (int max_bytes : {4096, 60000, 200000}) {
            // Responses: filler, then (usually) </think>, an answer holding a prefix of
            // the truth or noise, and (usually) the closing marker.
            IVec tokens(S * R, 0), lens(S);
            for (int64_t s = 0; s < S; ++s) {
                IVec r;
                const int filler = s % 5 == 0 ? 2500 : pick(0, 40);  // some long responses
                for (int i = 0; i < filler; ++i) r.push_back(pick(6, static_cast<int>(V) - 1));
                if (pick(0, 9) > 0) r.push_back(0);
                r.push_back(boxed ? 3 : 1);
                const IVec& tt = truth_tokens[s / G];
                const int take = pick(0, static_cast<int>(tt.size()));
                for (int i = 0; i < take; ++i) r.push_back(tt[i]);
                if (pick(0, 3) == 0) r.push_back(pick(6, static_cast<int>(V) - 1));
                if (pick(0, 9) > 0) r.push_back(boxed ? 5 : 2);
                if (pick(0, 4) == 0) r.push_back(-3);  // an invalid id: no bytes
                r.resize(std::min<size_t>(r.size(), R));
                std::copy(r.begin(), r.end(), tokens.begin() + s * R);
                lens[s] = static_cast<int32_t>(r.size());
            }
            Vec logprobs(S * R);
            for (float& l : logprobs) l = -5.0f * std::uniform_real_distribution<float>(0.0f, 1.0f)(rng);
            Both<int32_t> tok(tokens, {S, R}), len(lens, {S}), off(offsets, {V + 1}), tl(tlen, {B}),
                bd(bounds, {B, Kmax}), bc(bcount, {B});
            Both<uint8_t> tb(bytes, {static_cast<int64_t>(bytes.size())}), tr(truth, {B, Lmax});
            Both<float> lp(logprobs, {S, R});
            const bool scratch = max_bytes > ops::kMaxSharedResponseBytes;
            Both<uint8_t> buffer(BVec(scratch ? size_t(S) * size_t(max_bytes) : 1, 0), {scratch ? S * max_bytes : 1});
            const ops::RewardInputs on_cpu{tok.cpu(), len.cpu(), off.cpu(), tb.cpu(),
                                           tr.cpu(),  tl.cpu(),  bd.cpu(),  bc.cpu(), Tensor{}, lp.cpu()};
            const ops::RewardInputs on_gpu{tok.gpu(), len.gpu(), off.gpu(), tb.gpu(),
                                           tr.gpu(),  tl.gpu(),  bd.gpu(),  bc.gpu(),
                                           scratch ? buffer.gpu() : Tensor{}, lp.gpu()};
            for (ops::RewardKind kind : {ops::RewardKind::prefix, ops::RewardKind::first_token,
                                         ops::RewardKind::dense, ops::RewardKind::conditional_dense}) {
                ops::RewardFormat f;
                if (boxed) {
                    f.answer_open = "\\boxed{";
                    f.brace_matched = true;
                }
                f.max_response_bytes = max_bytes;
                f.kind = kind;
                const std::string what = "boxed " + std::to_string(boxed) + " max bytes " + std::to_string(max_bytes) +
                                         " kind " + std::to_string(int(kind));
                Both<float> rewards = out_f32({S});
                Both<int32_t> pred = out_i32({S});
                ops::prefix_reward(g.cpu, rewards.cpu(), pred.cpu(), on_cpu, static_cast<int>(G), f);
                ops::prefix_reward(g.ctx, rewards.gpu(), pred.gpu(), on_gpu, static_cast<int>(G), f);
                g.sync();
                // P(y[0]) goes through expf on each side (CUDA's expf is within 2 ulp).
                const Vec got = rewards.download();
                for (int64_t s = 0; s < S; ++s)
                    EXPECT_NEAR(got[s], rewards.host[s], 1e-6f * std::max(1.0f, rewards.host[s])) << what << " s " << s;
                EXPECT_EQ(pred.download(), pred.host) << what;
                float total = 0.0f;
                for (float r : rewards.host) total += r;
                EXPECT_GT(total, 0.0f) << what;  // the inputs exercise both outcomes
                EXPECT_LT(total, static_cast<float>(S)) << what;
            }
        }
    }
}

// ================================ GRPO ===============================================

TEST(CudaRlGrpo, AdvantagesMatchCpu) {
    SKIP_WITHOUT_GPU();
    Gpu g;
    for (int G : {1, 4, 8, 16}) {
        for (bool scale : {true, false}) {
            const int64_t S = 37 * G;
            Vec r = test::random_floats(S, 7 + G, 0.0f, 1.0f);
            for (int i = 0; i < G; ++i) r[i] = 1.0f;  // an all-equal group
            Both<float> rewards(r, {S});
            Both<float> adv = out_f32({S});
            ops::grpo_advantages(g.cpu, adv.cpu(), rewards.cpu(), G, 1e-6f, scale);
            ops::grpo_advantages(g.ctx, adv.gpu(), rewards.gpu(), G, 1e-6f, scale);
            g.sync();
            EXPECT_LT(test::rel_error(adv.download(), adv.host), kTolerance) << G << " " << scale;
        }
    }
}

TEST(CudaRlGrpo, TokenMapsMatchCpu) {
    SKIP_WITHOUT_GPU();
    Gpu g;
    // Responses at distinct, shuffled tokens (as the update's map), -1 past their ends.
    constexpr int64_t M = 37, R = 301, N = 20000;
    IVec places(static_cast<size_t>(N));
    for (int64_t t = 0; t < N; ++t) places[t] = static_cast<int32_t>((t * 7919) % N);  // 7919 is prime to N
    const IVec lens = test::random_ints(M, 21, 0, static_cast<int32_t>(R));
    IVec map(static_cast<size_t>(M * R), -1);
    size_t next = 0;
    for (int64_t m = 0; m < M; ++m)
        for (int64_t j = 0; j < lens[m]; ++j) map[m * R + j] = places[next++];
    Both<int32_t> index(map, {M, R});
    Both<float> per_token(test::random_floats(N, 22, -6.0f, 0.0f), {N}), values(test::random_floats(M * R, 23, -1.0f, 1.0f), {M, R});
    Both<float> gathered = out_f32({M, R}), scattered = out_f32({N});
    ops::gather_tokens(g.cpu, gathered.cpu(), per_token.cpu(), index.cpu());
    ops::gather_tokens(g.ctx, gathered.gpu(), per_token.gpu(), index.gpu());
    ops::scatter_tokens(g.cpu, scattered.cpu(), values.cpu(), index.cpu());
    ops::scatter_tokens(g.ctx, scattered.gpu(), values.gpu(), index.gpu());
    g.sync();
    // Copies: the same bits, and the untouched (poisoned) tokens stay NaN on both sides.
    EXPECT_TRUE(test::bitwise_equal(gathered.download(), gathered.host));
    EXPECT_TRUE(test::bitwise_equal(scattered.download(), scattered.host));
}

TEST(CudaRlGrpo, PolicyLossMatchesCpu) {
    SKIP_WITHOUT_GPU();
    Gpu g;
    constexpr int64_t S = 19, R = 300;
    Vec lp = test::random_floats(S * R, 1, -4.0f, -0.1f), old(S * R);
    const Vec delta = test::random_floats(S * R, 2, -0.5f, 0.5f);
    for (int64_t i = 0; i < S * R; ++i) old[i] = lp[i] - delta[i];
    Vec m(S * R, 1.0f);
    const IVec lens = test::random_ints(S, 3, 0, static_cast<int32_t>(R));
    for (int64_t s = 0; s < S; ++s)
        for (int64_t r = lens[s]; r < R; ++r) m[s * R + r] = 0.0f;
    Both<float> logp(lp, {S, R}), logp_old(old, {S, R}), logp_ref(test::random_floats(S * R, 4, -4.0f, -0.1f), {S, R}),
        adv(test::random_floats(S, 5, -2.0f, 2.0f), {S}), mask(m, {S, R});
    for (auto agg : {ops::LossAggregation::token_mean, ops::LossAggregation::seq_mean_token_mean,
                     ops::LossAggregation::constant_normalizer}) {
        for (float beta : {0.0f, 0.04f}) {
            ops::PolicyLossSettings s;
            s.aggregation = agg;
            s.kl_beta = beta;
            s.clip_high = 0.28f;
            s.total_tokens = 4000;
            s.total_sequences = S;
            s.max_response_tokens = R;
            Both<float> coef = out_f32({S, R}), loss = out_f32({S, R}), clipped = out_f32({S, R}),
                        kl = out_f32({S, R});
            const bool with_ref = beta > 0;
            ops::policy_loss(g.cpu, coef.cpu(), loss.cpu(), clipped.cpu(), kl.cpu(), logp.cpu(), logp_old.cpu(),
                             with_ref ? logp_ref.cpu() : Tensor{}, adv.cpu(), mask.cpu(), s);
            ops::policy_loss(g.ctx, coef.gpu(), loss.gpu(), clipped.gpu(), kl.gpu(), logp.gpu(), logp_old.gpu(),
                             with_ref ? logp_ref.gpu() : Tensor{}, adv.gpu(), mask.gpu(), s);
            g.sync();
            EXPECT_LT(test::rel_error(coef.download(), coef.host), kTolerance);
            EXPECT_LT(test::rel_error(loss.download(), loss.host), kTolerance);
            EXPECT_LT(test::rel_error(kl.download(), kl.host), kTolerance);
            // The clipped flag may only differ where rho sits on a clip edge within rounding.
            const Vec c = clipped.download();
            int differ = 0;
            for (int64_t i = 0; i < S * R; ++i) differ += c[i] != clipped.host[i];
            EXPECT_LE(differ, 2);
        }
    }
    // Optional outputs left out.
    Both<float> coef = out_f32({S, R}), loss = out_f32({S, R});
    ops::policy_loss(g.ctx, coef.gpu(), loss.gpu(), Tensor{}, Tensor{}, logp.gpu(), logp_old.gpu(), Tensor{},
                     adv.gpu(), mask.gpu(), ops::PolicyLossSettings{});
    ops::policy_loss(g.cpu, coef.cpu(), loss.cpu(), Tensor{}, Tensor{}, logp.cpu(), logp_old.cpu(), Tensor{},
                     adv.cpu(), mask.cpu(), ops::PolicyLossSettings{});
    g.sync();
    EXPECT_LT(test::rel_error(coef.download(), coef.host), kTolerance);
}

}  // namespace
}  // namespace rpt

#endif  // RPT_WITH_CUDA
