// The bf16 KV cache on the CPU: kv_cache_append stores f32 -> bf16 rounded to nearest
// even (checked against model/half.h and against an independent nearest-value search),
// decode attention over a bf16 cache against a float64 reference on the same rounded
// values (tight) and against the fp32 cache (bf16-level), ops::copy's conversions, the
// dtype checks, and the cache's size, dtype choice and budget message.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/rl_ops.h"
#include "model/half.h"
#include "model/kv_cache.h"
#include "tests/test_util.h"

namespace rpt {
namespace {

using Vec = std::vector<float>;
using IVec = std::vector<int32_t>;
using HVec = std::vector<uint16_t>;  // bf16 bits
using DVec = std::vector<double>;

constexpr uint16_t kBf16NaN = 0x7fc0;  // poison: a quiet NaN, never produced from finite input

OpContext cpu() { return OpContext{}; }
Tensor f32(Vec& v, std::initializer_list<int64_t> shape) { return make_tensor(v.data(), DType::f32, DeviceKind::cpu, shape); }
Tensor bf16(HVec& v, std::initializer_list<int64_t> shape) {
    return make_tensor(v.data(), DType::bf16, DeviceKind::cpu, shape);
}
Tensor i32(IVec& v, std::initializer_list<int64_t> shape) { return make_tensor(v.data(), DType::i32, DeviceKind::cpu, shape); }

HVec to_bf16(const Vec& v) {
    HVec out(v.size());
    for (size_t i = 0; i < v.size(); ++i) out[i] = f32_to_bf16(v[i]);
    return out;
}
Vec widened(const HVec& v) {
    Vec out(v.size());
    for (size_t i = 0; i < v.size(); ++i) out[i] = bf16_to_f32(v[i]);
    return out;
}

// Rounding to nearest, ties to even, found without bit tricks: of the two bf16 values
// around x (the truncation and the next one away from zero), the nearer in exact double
// arithmetic; on a tie the one with an even last mantissa bit. Finite x only.
uint16_t nearest_bf16(float x) {
    const uint16_t toward_zero = static_cast<uint16_t>(f32_bits(x) >> 16);
    const uint16_t away = static_cast<uint16_t>(toward_zero + 1);
    const double lo = bf16_to_f32(toward_zero), hi = bf16_to_f32(away);
    const double d_lo = std::fabs(double(x) - lo), d_hi = std::fabs(hi - double(x));
    if (d_lo != d_hi) return d_lo < d_hi ? toward_zero : away;
    return (toward_zero & 1u) == 0 ? toward_zero : away;
}

// Values that exercise the rounding: exact ties both ways, just above a tie, negatives,
// tiny (subnormal in bf16) and large magnitudes, then random non-zero values.
Vec rounding_cases(size_t n, uint32_t seed) {
    Vec v = {1.0f + 0x1p-8f,           // tie between 1 and 1 + 2^-7: to even (1)
             1.0f + 3 * 0x1p-8f,       // tie between 1 + 2^-7 and 1 + 2^-6: to even (1 + 2^-6)
             -(1.0f + 3 * 0x1p-8f),    // the same, negative
             1.0f + 0x1p-8f + 0x1p-20f,  // just above a tie: up
             0x1.fffffep-127f,         // bf16 subnormal range
             3.0e38f,                  // near the top of the range
             0.0f, -0.0f};
    const Vec rest = test::random_nonzero(n - v.size(), seed);
    v.insert(v.end(), rest.begin(), rest.end());
    return v;
}

TEST(KvBf16, AppendStoresRoundedValues) {
    constexpr int64_t S = 5, Tmax = 4, KVH = 2, D = 12, A = 3, row = KVH * D;
    HVec suffix(S * Tmax * row, kBf16NaN);
    Vec kv = rounding_cases(A * row, 7);
    IVec slots = {4, 0, 2}, index = {3, 0, 1};
    ops::kv_cache_append(cpu(), bf16(suffix, {S, Tmax, KVH, D}), f32(kv, {A, KVH, D}), i32(slots, {A}),
                         i32(index, {A}));
    HVec want(S * Tmax * row, kBf16NaN);
    for (int64_t a = 0; a < A; ++a)
        for (int64_t c = 0; c < row; ++c) {
            const float x = kv[a * row + c];
            const uint16_t stored = suffix[(slots[a] * Tmax + index[a]) * row + c];
            EXPECT_EQ(stored, f32_to_bf16(x)) << "row " << a << " element " << c << " value " << x;
            EXPECT_EQ(stored, nearest_bf16(x)) << "row " << a << " element " << c << " value " << x;
            want[(slots[a] * Tmax + index[a]) * row + c] = stored;
        }
    EXPECT_EQ(suffix, want);  // nothing else written
    // The hand-picked ties went to the even neighbour.
    EXPECT_EQ(bf16_to_f32(suffix[(4 * Tmax + 3) * row + 0]), 1.0f);
    EXPECT_EQ(bf16_to_f32(suffix[(4 * Tmax + 3) * row + 1]), 1.0f + 0x1p-6f);
}

struct Problem {
    int64_t B, G, Tp, Tmax, H, KVH, D;
    Vec q, pk, pv, sk, sv;  // K/V in fp32, before any rounding
    IVec plen, slen, slots;
    int64_t A() const { return static_cast<int64_t>(slots.size()); }
    int64_t S() const { return B * G; }
};

Problem make_problem(int64_t B, int64_t G, int64_t Tp, int64_t Tmax, int64_t H, int64_t KVH, int64_t D,
                     uint32_t seed) {
    Problem p{B, G, Tp, Tmax, H, KVH, D, {}, {}, {}, {}, {}, {}, {}, {}};
    p.pk = test::random_nonzero(B * Tp * KVH * D, seed + 1);
    p.pv = test::random_nonzero(B * Tp * KVH * D, seed + 2);
    p.sk = test::random_nonzero(p.S() * Tmax * KVH * D, seed + 3);
    p.sv = test::random_nonzero(p.S() * Tmax * KVH * D, seed + 4);
    p.plen = test::random_ints(B, seed + 5, 0, static_cast<int32_t>(Tp));
    p.plen[0] = static_cast<int32_t>(Tp);
    for (int64_t s = p.S() - 1; s >= 0; --s)
        if (s % 3 != 1) p.slots.push_back(static_cast<int32_t>(s));
    p.slen = test::random_ints(p.A(), seed + 6, 1, static_cast<int32_t>(Tmax));
    // Larger queries than K/V make the softmax far from uniform.
    p.q = test::random_floats(p.A() * H * D, seed + 7, -3.0f, 3.0f);
    return p;
}

// Attention in double over the given K/V values (the caller passes the rounded ones).
DVec reference(const Problem& p, const Vec& pk, const Vec& pv, const Vec& sk, const Vec& sv) {
    const int64_t ks = p.KVH * p.D;
    DVec out(p.A() * p.H * p.D, 0.0);
    for (int64_t a = 0; a < p.A(); ++a) {
        const int64_t s = p.slots[a], g = s / p.G, P = p.plen[g], n = P + p.slen[a];
        for (int64_t h = 0; h < p.H; ++h) {
            const int64_t kvh = h / (p.H / p.KVH);
            auto at = [&](const Vec& pre, const Vec& suf, int64_t j) {
                return j < P ? &pre[(g * p.Tp + j) * ks + kvh * p.D] : &suf[(s * p.Tmax + j - P) * ks + kvh * p.D];
            };
            DVec w(n);
            double m = -1e300, z = 0;
            for (int64_t j = 0; j < n; ++j) {
                double dot = 0;
                for (int64_t i = 0; i < p.D; ++i) dot += double(p.q[(a * p.H + h) * p.D + i]) * at(pk, sk, j)[i];
                w[j] = dot / std::sqrt(double(p.D));
                m = std::max(m, w[j]);
            }
            for (int64_t j = 0; j < n; ++j) z += w[j] = std::exp(w[j] - m);
            for (int64_t j = 0; j < n; ++j)
                for (int64_t i = 0; i < p.D; ++i) out[(a * p.H + h) * p.D + i] += w[j] / z * at(pv, sv, j)[i];
        }
    }
    return out;
}

Vec run_f32(Problem& p) {
    const int64_t A = p.A(), S = p.S();
    Vec out = test::poisoned(A * p.H * p.D);
    ops::decode_attention(cpu(), f32(out, {A, p.H, p.D}), f32(p.q, {A, p.H, p.D}), f32(p.pk, {p.B, p.Tp, p.KVH, p.D}),
                          f32(p.pv, {p.B, p.Tp, p.KVH, p.D}), i32(p.plen, {p.B}), f32(p.sk, {S, p.Tmax, p.KVH, p.D}),
                          f32(p.sv, {S, p.Tmax, p.KVH, p.D}), i32(p.slen, {A}), i32(p.slots, {A}),
                          static_cast<int>(p.G));
    return out;
}

Vec run_bf16(Problem& p, HVec& pk, HVec& pv, HVec& sk, HVec& sv) {
    const int64_t A = p.A(), S = p.S();
    Vec out = test::poisoned(A * p.H * p.D);
    ops::decode_attention(cpu(), f32(out, {A, p.H, p.D}), f32(p.q, {A, p.H, p.D}), bf16(pk, {p.B, p.Tp, p.KVH, p.D}),
                          bf16(pv, {p.B, p.Tp, p.KVH, p.D}), i32(p.plen, {p.B}), bf16(sk, {S, p.Tmax, p.KVH, p.D}),
                          bf16(sv, {S, p.Tmax, p.KVH, p.D}), i32(p.slen, {A}), i32(p.slots, {A}),
                          static_cast<int>(p.G));
    return out;
}

TEST(KvBf16, DecodeAttentionReadsTheRoundedCache) {
    struct Shape {
        int64_t B, G, Tp, Tmax, H, KVH, D;
    };
    // GQA 1..6, odd and even head dims, empty prefixes drawn at random.
    for (const Shape& sh : {Shape{2, 3, 9, 5, 2, 2, 8}, Shape{3, 2, 17, 6, 4, 2, 64}, Shape{2, 4, 33, 7, 6, 1, 128},
                            Shape{1, 5, 5, 3, 3, 1, 7}, Shape{2, 2, 40, 9, 4, 4, 33}}) {
        Problem p = make_problem(sh.B, sh.G, sh.Tp, sh.Tmax, sh.H, sh.KVH, sh.D, 40 + uint32_t(sh.D));
        HVec pk = to_bf16(p.pk), pv = to_bf16(p.pv), sk = to_bf16(p.sk), sv = to_bf16(p.sv);
        const Vec got = run_bf16(p, pk, pv, sk, sv);
        const std::string at = "H " + std::to_string(sh.H) + " KVH " + std::to_string(sh.KVH) + " D " +
                               std::to_string(sh.D);
        // Against float64 on the very values the cache holds: only fp32 arithmetic differs.
        EXPECT_LT(test::rel_error(got, reference(p, widened(pk), widened(pv), widened(sk), widened(sv))), 1e-5) << at;
        // Against the fp32 cache: bf16's 8-bit mantissa (relative step 2^-8) shows, but
        // no more than that. The lower bound proves the bf16 values were the ones read.
        const double vs_f32 = test::rel_error(got, run_f32(p));
        EXPECT_LT(vs_f32, 1e-2) << at;
        EXPECT_GT(vs_f32, 1e-6) << at;
    }
}

// Appending step by step into a bf16 cache, then attending, equals attending over a cache
// rounded up front: the append op and prefill's conversion round the same way.
TEST(KvBf16, AppendThenAttendEqualsPreRoundedCache) {
    Problem p = make_problem(2, 2, 6, 4, 4, 2, 16, 90);
    const int64_t A = p.A(), S = p.S(), row = p.KVH * p.D;
    HVec pk(p.pk.size()), pv(p.pv.size());
    ops::copy(cpu(), bf16(pk, {int64_t(pk.size())}), f32(p.pk, {int64_t(p.pk.size())}));
    ops::copy(cpu(), bf16(pv, {int64_t(pv.size())}), f32(p.pv, {int64_t(p.pv.size())}));
    HVec sk(p.sk.size(), kBf16NaN), sv(p.sv.size(), kBf16NaN);
    for (int32_t step = 0; step < int32_t(p.Tmax); ++step) {
        Vec k(A * row), v(A * row);
        for (int64_t a = 0; a < A; ++a)
            for (int64_t c = 0; c < row; ++c) {
                k[a * row + c] = p.sk[(p.slots[a] * p.Tmax + step) * row + c];
                v[a * row + c] = p.sv[(p.slots[a] * p.Tmax + step) * row + c];
            }
        IVec index(A, step);
        ops::kv_cache_append(cpu(), bf16(sk, {S, p.Tmax, p.KVH, p.D}), f32(k, {A, p.KVH, p.D}), i32(p.slots, {A}),
                             i32(index, {A}));
        ops::kv_cache_append(cpu(), bf16(sv, {S, p.Tmax, p.KVH, p.D}), f32(v, {A, p.KVH, p.D}), i32(p.slots, {A}),
                             i32(index, {A}));
    }
    p.slen.assign(A, int32_t(p.Tmax));
    HVec rk = to_bf16(p.pk), rv = to_bf16(p.pv), rsk = to_bf16(p.sk), rsv = to_bf16(p.sv);
    EXPECT_EQ(pk, rk);
    EXPECT_TRUE(test::bitwise_equal(run_bf16(p, pk, pv, sk, sv), run_bf16(p, rk, rv, rsk, rsv)));
}

TEST(KvBf16, CopyConvertsBothWays) {
    for (int64_t n : {1, 7, 1001, 65537}) {
        Vec src = rounding_cases(size_t(std::max<int64_t>(n, 8)), uint32_t(n));
        src.resize(size_t(n));
        HVec half(size_t(n), kBf16NaN);
        ops::copy(cpu(), bf16(half, {n}), f32(src, {n}));
        for (int64_t i = 0; i < n; ++i) {
            ASSERT_EQ(half[i], f32_to_bf16(src[i])) << "n " << n << " i " << i;
            ASSERT_EQ(half[i], nearest_bf16(src[i])) << "n " << n << " i " << i;
        }
        Vec back = test::poisoned(size_t(n));
        ops::copy(cpu(), f32(back, {n}), bf16(half, {n}));
        EXPECT_TRUE(test::bitwise_equal(back, widened(half))) << "n " << n;  // widening is exact
        HVec again(size_t(n), kBf16NaN);
        ops::copy(cpu(), bf16(again, {n}), bf16(half, {n}));
        EXPECT_EQ(again, half) << "n " << n;
    }
    // Special values keep their meaning.
    Vec specials = {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                    std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::max()};
    HVec out(specials.size());
    ops::copy(cpu(), bf16(out, {4}), f32(specials, {4}));
    EXPECT_EQ(bf16_to_f32(out[0]), std::numeric_limits<float>::infinity());
    EXPECT_EQ(bf16_to_f32(out[1]), -std::numeric_limits<float>::infinity());
    EXPECT_TRUE(std::isnan(bf16_to_f32(out[2])));
    EXPECT_EQ(bf16_to_f32(out[3]), std::numeric_limits<float>::infinity());  // rounds past the top
}

// A call that should throw std::invalid_argument whose message contains `needle`.
template <typename F>
void expect_invalid(F call, const std::string& needle) {
    try {
        call();
        ADD_FAILURE() << "expected std::invalid_argument mentioning '" << needle << "'";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

TEST(KvBf16, RejectsMixedOrWrongDtypes) {
    Problem p = make_problem(1, 2, 4, 3, 2, 1, 8, 5);
    const int64_t A = p.A(), S = p.S();
    HVec pk = to_bf16(p.pk), pv = to_bf16(p.pv);
    Vec out(A * p.H * p.D);
    expect_invalid([&] {
        ops::decode_attention(cpu(), f32(out, {A, p.H, p.D}), f32(p.q, {A, p.H, p.D}), bf16(pk, {p.B, p.Tp, p.KVH, p.D}),
                              bf16(pv, {p.B, p.Tp, p.KVH, p.D}), i32(p.plen, {p.B}), f32(p.sk, {S, p.Tmax, p.KVH, p.D}),
                              f32(p.sv, {S, p.Tmax, p.KVH, p.D}), i32(p.slen, {A}), i32(p.slots, {A}), int(p.G));
    }, "share one dtype");
    IVec not_float(p.pk.size());
    expect_invalid([&] {
        ops::decode_attention(cpu(), f32(out, {A, p.H, p.D}), f32(p.q, {A, p.H, p.D}),
                              i32(not_float, {p.B, p.Tp, p.KVH, p.D}), i32(not_float, {p.B, p.Tp, p.KVH, p.D}),
                              i32(p.plen, {p.B}), f32(p.sk, {S, p.Tmax, p.KVH, p.D}),
                              f32(p.sv, {S, p.Tmax, p.KVH, p.D}), i32(p.slen, {A}), i32(p.slots, {A}), int(p.G));
    }, "prefix_k must be f32 or bf16");
    // The step's rows may be bf16 (a bf16 model's decode, tests/test_decode_bf16.cpp) but
    // not integers; q and out share one dtype.
    HVec suffix(S * p.Tmax * p.KVH * p.D);
    IVec kv_ints(A * p.KVH * p.D), index(A, 0);
    expect_invalid([&] {
        ops::kv_cache_append(cpu(), bf16(suffix, {S, p.Tmax, p.KVH, p.D}), i32(kv_ints, {A, p.KVH, p.D}),
                             i32(p.slots, {A}), i32(index, {A}));
    }, "kv (the step's rows) must be f32 or bf16");
    HVec q_half = to_bf16(p.q);
    expect_invalid([&] {
        ops::decode_attention(cpu(), f32(out, {A, p.H, p.D}), bf16(q_half, {A, p.H, p.D}),
                              bf16(pk, {p.B, p.Tp, p.KVH, p.D}), bf16(pv, {p.B, p.Tp, p.KVH, p.D}), i32(p.plen, {p.B}),
                              f32(p.sk, {S, p.Tmax, p.KVH, p.D}), f32(p.sv, {S, p.Tmax, p.KVH, p.D}), i32(p.slen, {A}),
                              i32(p.slots, {A}), int(p.G));
    }, "q and out must share one dtype");
    IVec ints(8);
    Vec floats(8);
    expect_invalid([&] { ops::copy(cpu(), i32(ints, {8}), f32(floats, {8})); }, "dst must be f32 or bf16");
}

ModelConfig cache_config() {
    test::TinyShape s;
    s.vocab = 64;
    s.hidden = 64;
    s.layers = 3;
    s.ffn = 96;
    s.context = 128;
    return test::tiny_config(s);
}

TEST(KvBf16, CacheSizeDtypeAndBudget) {
    const ModelConfig c = cache_config();
    KvCacheShape shape{4, 2, 16, 8};  // every K/V tensor a multiple of the 64-byte carve alignment
    const size_t elements = size_t(c.num_layers) * 2 * (4 * 16 + 8 * 8) * c.num_kv_heads * c.head_dim;
    shape.kv_dtype = KvDType::f32;
    const size_t f32_bytes = KvCache::kv_bytes(c, shape, DeviceKind::cpu);
    shape.kv_dtype = KvDType::bf16;
    const size_t bf16_bytes = KvCache::kv_bytes(c, shape, DeviceKind::cpu);
    EXPECT_EQ(f32_bytes, elements * 4);
    EXPECT_EQ(bf16_bytes, elements * 2);
    // auto: f32 on the CPU, bf16 on the GPU (sizes computable without a GPU).
    shape.kv_dtype = KvDType::automatic;
    EXPECT_EQ(KvCache::kv_bytes(c, shape, DeviceKind::cpu), f32_bytes);
    EXPECT_EQ(KvCache::kv_bytes(c, shape, DeviceKind::cuda), bf16_bytes);
    EXPECT_EQ(resolve_kv_dtype(KvDType::automatic, DeviceKind::cpu), DType::f32);
    EXPECT_EQ(resolve_kv_dtype(KvDType::automatic, DeviceKind::cuda), DType::bf16);
    EXPECT_EQ(resolve_kv_dtype(KvDType::f32, DeviceKind::cuda), DType::f32);

    // A bf16 cache on the CPU: K/V tensors in bf16, scratch rows in fp32.
    shape.kv_dtype = KvDType::bf16;
    KvCache cache(c, cpu(), shape, bf16_bytes);
    EXPECT_EQ(cache.kv_dtype(), DType::bf16);
    ASSERT_EQ(cache.suffix_v.size(), size_t(c.num_layers));
    EXPECT_EQ(cache.prefix_k[0].dtype, DType::bf16);
    EXPECT_EQ(cache.suffix_v[2].dtype, DType::bf16);
    EXPECT_EQ(cache.k.dtype, DType::f32);
    EXPECT_EQ(cache.logits.dtype, DType::f32);

    // A budget between the two sizes: bf16 fits, f32 does not, and the error says which
    // knobs to turn, --kv-dtype bf16 among them.
    const size_t budget = (f32_bytes + bf16_bytes) / 2;
    EXPECT_NO_THROW(KvCache::check_budget(c, shape, DeviceKind::cpu, budget));
    shape.kv_dtype = KvDType::f32;
    for (const char* knob : {"--kv-budget-mb", "--contexts", "--kv-dtype bf16", "f32"})
        expect_invalid([&] { KvCache::check_budget(c, shape, DeviceKind::cpu, budget); }, knob);
    shape.kv_dtype = KvDType::bf16;
    expect_invalid([&] { KvCache::check_budget(c, shape, DeviceKind::cpu, bf16_bytes - 1); }, "--kv-budget-mb");
}

TEST(KvBf16, ParsesTheFlagValues) {
    for (KvDType d : {KvDType::automatic, KvDType::f32, KvDType::bf16}) EXPECT_EQ(parse_kv_dtype(kv_dtype_name(d)), d);
    EXPECT_STREQ(kv_dtype_name(KvDType::automatic), "auto");
    expect_invalid([] { parse_kv_dtype("fp16"); }, "--kv-dtype");
}

}  // namespace
}  // namespace rpt
