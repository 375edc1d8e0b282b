// matmul on the CPU: the forward of a Linear layer and its two backward products, all
// through one packed, cache-blocked GEMM (the Goto/BLIS scheme).
//
//   forward  out (N, OC)    = in (N, IC) @ W (OC, IC)^T + bias      C = A B, A = in,     B = W^T
//   din      din (N, IC)   += dout (N, OC) @ W (OC, IC)              C += A B, A = dout,  B = W
//   dweight  dW (OC, IC)   += dout (N, OC)^T @ in (N, IC)            C += A B, A = dout^T, B = in
//   dbias    db (OC)       += column sums of dout
//
// Why it is fast: the product is cut into blocks that fit the caches. For each depth
// block of kKC, a (kKC x kNCMax) block of B is packed into contiguous kNR-wide slivers
// (shared by the threads, lives in L2/L3), and each thread packs its own (kMCMax x kKC)
// block of A into kMR-tall slivers (lives in L2). A register-tiled micro-kernel then
// computes a kMR x kNR tile of C with the whole tile held in registers: per depth step it
// loads kNR values of B (2 AVX-512 vectors), broadcasts kMR values of A and issues
// 2 * kMR independent FMAs, so the FMA units, not memory, set the pace. Transposed
// operands cost nothing extra: only the packing reads them with other strides.
//
// Determinism: threads split the rows (or columns) of C; every element is summed in the same order
// (depth blocks in sequence, depth steps in sequence inside a block) whatever the thread
// count. Small row counts (decode) take a separate direct path chosen by shape only.
#include <omp.h>

#include <algorithm>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

#include "kernels/cpu/cpu_common.h"
#include "kernels/cpu/cpu_ops.h"

namespace rpt::cpu {
namespace {

using detail::ceil_div;
using detail::round_up;

#if defined(__AVX512F__)
// 12 x 32 tile = 24 zmm accumulators + 2 for B, within the 32 AVX-512 registers.
constexpr int64_t kMR = 12;
constexpr int64_t kNR = 32;
#else
// Portable tile for AVX2-class machines (6 x 16 = 12 ymm accumulators).
constexpr int64_t kMR = 6;
constexpr int64_t kNR = 16;
#endif
// Depth of a block. A B sliver (kKC x kNR floats = 64 KiB) is swept by the kMCMax / kMR
// A slivers of a block from L1/L2; a deep block halves the read-modify-write passes over
// C (K = 512, the model's width, is a single pass). Measured better than 256 here.
constexpr int64_t kKC = 512;
// Rows of A per packed block: kMCMax x kKC floats = 384 KiB, well inside L2.
constexpr int64_t kMCMax = 192;
// Columns of B per packed block: kKC x kNCMax floats = 8 MiB, shared in L3.
constexpr int64_t kNCMax = 4096;
// Fraction of work-balance gain needed before threads split columns instead of rows.
constexpr double kSplitMargin = 0.05;
// Below this many rows the forward reads the weights unpacked (matmul_forward_direct):
// packing all of B costs more than it saves until the rows amortise it. Measured on the
// development machine (AVX-512, 2 threads, K = 512/1536): the direct tile reaches
// 210-270 GFLOP/s from 16 to 256 rows, the packed GEMM 30 GFLOP/s at 16 rows, 100 at 64,
// 230 at 256, and overtakes it from about 320 rows.
constexpr int64_t kSmallRows = 320;
// Without the AVX-512 tile (or with a width that is not a multiple of 16) only this
// many rows take the plain dot-product path.
constexpr int64_t kDotRows = 16;

// A read-only matrix with arbitrary strides: element (i, j) is p[i * rs + j * cs].
struct MatView {
    const float* p;
    int64_t rs, cs;
    float at(int64_t i, int64_t j) const { return p[i * rs + j * cs]; }
};

// Packs rows [i0, i0 + mc) x depth [k0, k0 + kc) of A into kMR-tall slivers:
// dst[(s * kc + k) * kMR + r] = A(i0 + s * kMR + r, k0 + k), zero past the last row.
void pack_a(const MatView& A, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float* dst) {
    for (int64_t s = 0; s * kMR < mc; ++s) {
        float* out = dst + s * kc * kMR;
        const int64_t rows = std::min(kMR, mc - s * kMR);
        if (A.cs == 1) {  // rows contiguous in memory: read along k
            for (int64_t r = 0; r < rows; ++r) {
                const float* src = A.p + (i0 + s * kMR + r) * A.rs + k0;
                for (int64_t k = 0; k < kc; ++k) out[k * kMR + r] = src[k];
            }
        } else if (A.rs == 1) {  // columns contiguous (dout^T in dweight): copy kMR runs
            const float* src = A.p + (k0 * A.cs) + i0 + s * kMR;
            if (rows == kMR) {
                for (int64_t k = 0; k < kc; ++k)
                    for (int64_t r = 0; r < kMR; ++r) out[k * kMR + r] = src[k * A.cs + r];
            } else {
                for (int64_t k = 0; k < kc; ++k)
                    for (int64_t r = 0; r < rows; ++r) out[k * kMR + r] = src[k * A.cs + r];
            }
        } else {
            for (int64_t k = 0; k < kc; ++k)
                for (int64_t r = 0; r < rows; ++r) out[k * kMR + r] = A.at(i0 + s * kMR + r, k0 + k);
        }
        for (int64_t r = rows; r < kMR; ++r)
            for (int64_t k = 0; k < kc; ++k) out[k * kMR + r] = 0.0f;
    }
}

// Packs depth [k0, k0 + kc) x one sliver of columns [j0, j0 + kNR) of B:
// dst[k * kNR + c] = B(k0 + k, j0 + c), zero past the last column n.
void pack_b_sliver(const MatView& B, int64_t k0, int64_t kc, int64_t j0, int64_t n, float* dst) {
    const int64_t cols = std::min(kNR, n - j0);
    if (B.cs == 1) {  // row-major B: read along columns
        for (int64_t k = 0; k < kc; ++k) {
            const float* src = B.p + (k0 + k) * B.rs + j0;
            for (int64_t c = 0; c < cols; ++c) dst[k * kNR + c] = src[c];
            for (int64_t c = cols; c < kNR; ++c) dst[k * kNR + c] = 0.0f;
        }
    } else {  // transposed B (W^T in the forward): read along depth
        for (int64_t c = 0; c < cols; ++c) {
            const float* src = B.p + (j0 + c) * B.cs + k0 * B.rs;
            for (int64_t k = 0; k < kc; ++k) dst[k * kNR + c] = src[k * B.rs];
        }
        for (int64_t k = 0; k < kc; ++k)
            for (int64_t c = cols; c < kNR; ++c) dst[k * kNR + c] = 0.0f;
    }
}

// tile (kMR x kNR) = A sliver (kMR x kc) . B sliver (kc x kNR), all in registers.
#if defined(__AVX512F__)
void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b, float* __restrict tile) {
    __m512 acc[kMR][2];
#pragma GCC unroll 12
    for (int r = 0; r < kMR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; ++k) {
        const __m512 b0 = _mm512_load_ps(b);
        const __m512 b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 12
        for (int r = 0; r < kMR; ++r) {
            const __m512 ar = _mm512_set1_ps(a[r]);
            acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
        }
        a += kMR;
        b += kNR;
    }
#pragma GCC unroll 12
    for (int r = 0; r < kMR; ++r) {
        _mm512_store_ps(tile + r * kNR, acc[r][0]);
        _mm512_store_ps(tile + r * kNR + 16, acc[r][1]);
    }
}
#elif defined(__AVX2__) && defined(__FMA__)
// The AVX2 tile: 6 x 16 = 12 ymm accumulators + 2 for B + 1 broadcast, within the 16
// registers. Spelled out because the plain loop below compiles (under -std=c++17,
// which turns FMA contraction off) into separate multiplies and adds with the
// accumulators on the stack.
void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b, float* __restrict tile) {
    __m256 acc[kMR][2];
#pragma GCC unroll 6
    for (int r = 0; r < kMR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; ++k) {
        const __m256 b0 = _mm256_loadu_ps(b);
        const __m256 b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
        for (int r = 0; r < kMR; ++r) {
            const __m256 ar = _mm256_broadcast_ss(a + r);
            acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
        }
        a += kMR;
        b += kNR;
    }
#pragma GCC unroll 6
    for (int r = 0; r < kMR; ++r) {
        _mm256_storeu_ps(tile + r * kNR, acc[r][0]);
        _mm256_storeu_ps(tile + r * kNR + 8, acc[r][1]);
    }
}
#else
void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b, float* __restrict tile) {
    float acc[kMR][kNR] = {};
    for (int64_t k = 0; k < kc; ++k) {
        for (int64_t r = 0; r < kMR; ++r)
            for (int64_t c = 0; c < kNR; ++c) acc[r][c] += a[r] * b[c];
        a += kMR;
        b += kNR;
    }
    for (int64_t r = 0; r < kMR; ++r)
        for (int64_t c = 0; c < kNR; ++c) tile[r * kNR + c] = acc[r][c];
}
#endif

// Writes the valid (rows x cols) corner of a tile into C: C = tile + bias on the first
// depth block of an overwriting product, C += tile otherwise.
void merge_tile(float* C, int64_t ldc, const float* tile, int64_t rows, int64_t cols, bool overwrite,
                const float* bias) {
    for (int64_t r = 0; r < rows; ++r) {
        float* __restrict c = C + r * ldc;
        const float* __restrict t = tile + r * kNR;
        if (!overwrite) {
            for (int64_t j = 0; j < cols; ++j) c[j] += t[j];
        } else if (bias) {
            for (int64_t j = 0; j < cols; ++j) c[j] = t[j] + bias[j];
        } else {
            for (int64_t j = 0; j < cols; ++j) c[j] = t[j];
        }
    }
}

// C (M x N, row stride ldc) = A (M x K) B (K x N) + bias   (accumulate == false)
// C (M x N, row stride ldc) += A (M x K) B (K x N)         (accumulate == true)
void gemm(int64_t M, int64_t N, int64_t K, const MatView& A, const MatView& B, float* C, int64_t ldc,
          bool accumulate, const float* bias) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (!accumulate)
            for (int64_t i = 0; i < M; ++i)
                for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = bias ? bias[j] : 0.0f;
        return;
    }
    const int64_t nc_max = std::min(kNCMax, round_up(N, kNR));
    const int64_t kc_max = std::min(kKC, K);
    // Scratch of the calling thread, shared with the team (see thread_scratch).
    float* bp = detail::thread_scratch(detail::ScratchSlot::gemm_b, kc_max * nc_max);
    const int64_t slivers_m = ceil_div(M, kMR);

#pragma omp parallel
    {
        // Each thread owns a contiguous run of kMR-row slivers of C, or, when that splits
        // worse (few rows, as in the tiny model's dweight), a run of kNR-column slivers of
        // every B block. Either way each element is summed in the same order.
        const int64_t nthreads = omp_get_num_threads(), tid = omp_get_thread_num();
        const int64_t slivers_n = ceil_div(nc_max, kNR);
        const auto balance = [nthreads](int64_t parts) {
            return static_cast<double>(parts) / static_cast<double>(nthreads * ceil_div(parts, nthreads));
        };
        // Splitting columns makes every thread pack all of A: only worth it when clearly
        // better balanced.
        const bool split_columns = balance(slivers_n) > balance(slivers_m) + kSplitMargin;
        const int64_t row_begin = split_columns ? 0 : slivers_m * tid / nthreads * kMR;
        const int64_t row_end = split_columns ? M : std::min(M, slivers_m * (tid + 1) / nthreads * kMR);
        float* ap = detail::thread_scratch(detail::ScratchSlot::gemm_a, kMCMax * kc_max);
        alignas(detail::kAlignBytes) float tile[kMR * kNR];

        for (int64_t jc = 0; jc < N; jc += nc_max) {
            const int64_t nc = std::min(nc_max, N - jc);
            const int64_t block_slivers = ceil_div(nc, kNR);
            const int64_t jr_begin = split_columns ? block_slivers * tid / nthreads * kNR : 0;
            const int64_t jr_end = split_columns ? std::min(nc, block_slivers * (tid + 1) / nthreads * kNR) : nc;
            for (int64_t pc = 0; pc < K; pc += kKC) {
                const int64_t kc = std::min(kKC, K - pc);
                const bool overwrite = !accumulate && pc == 0;
                // All threads pack the shared B block together (implicit barrier after).
#pragma omp for schedule(static)
                for (int64_t jr = 0; jr < nc; jr += kNR)
                    pack_b_sliver(B, pc, kc, jc + jr, jc + nc, bp + jr * kc);

                for (int64_t ic = row_begin; ic < row_end && jr_begin < jr_end; ic += kMCMax) {
                    const int64_t mc = std::min(kMCMax, row_end - ic);
                    pack_a(A, ic, mc, pc, kc, ap);
                    for (int64_t jr = jr_begin; jr < jr_end; jr += kNR) {
                        const int64_t cols = std::min(kNR, nc - jr);
                        for (int64_t ir = 0; ir < mc; ir += kMR) {
                            micro_kernel(kc, ap + ir * kc, bp + jr * kc, tile);
                            merge_tile(C + (ic + ir) * ldc + jc + jr, ldc, tile, std::min(kMR, mc - ir), cols,
                                       overwrite, bias ? bias + jc + jr : nullptr);
                        }
                    }
                }
                // B is repacked next round: wait until every thread is done with it.
#pragma omp barrier
            }
        }
    }
}

#if defined(__AVX512F__)
// Direct (unpacked) tile for few rows: out[i][o] = in row i . weight row o (+ bias) for
// MI rows of `in` and MO weight rows, both read straight from their row-major storage
// 16 depth values at a time into MI x MO vector accumulators, reduced once at the end.
// Per depth step: MI + MO loads feed MI * MO FMAs (4 + 6 -> 24), so the FMA units set the
// pace while the weight tile stays in L1 for every row block.
// K must be a multiple of 16 (the caller checks).
template <int MI, int MO>
inline void direct_tile(float* out, int64_t ldo, const float* in, const float* w, int64_t K, const float* bias) {
    __m512 acc[MI][MO];
#pragma GCC unroll 4
    for (int i = 0; i < MI; ++i)
#pragma GCC unroll 6
        for (int o = 0; o < MO; ++o) acc[i][o] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k += detail::kLanes) {
        __m512 a[MI];
#pragma GCC unroll 4
        for (int i = 0; i < MI; ++i) a[i] = _mm512_loadu_ps(in + i * K + k);
#pragma GCC unroll 6
        for (int o = 0; o < MO; ++o) {
            const __m512 wv = _mm512_loadu_ps(w + o * K + k);
#pragma GCC unroll 4
            for (int i = 0; i < MI; ++i) acc[i][o] = _mm512_fmadd_ps(a[i], wv, acc[i][o]);
        }
    }
    // One fixed-order in-register reduction per output. (GCC 12's header implementation of
    // _mm512_reduce_add_ps trips -Wuninitialized on an unused half: a known false alarm.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC unroll 4
    for (int i = 0; i < MI; ++i)
#pragma GCC unroll 6
        for (int o = 0; o < MO; ++o) out[i * ldo + o] = _mm512_reduce_add_ps(acc[i][o]) + (bias ? bias[o] : 0.0f);
#pragma GCC diagnostic pop
}
#endif

#if defined(__AVX512F__)
// out (M x OC) = in (M x IC) W^T + bias for few rows (decoding, IC a multiple of 16): W is
// read as stored, never packed, since packing all of it per call costs more than the
// product when M is small. Threads split the outputs in blocks of 6; each element is one
// thread's fixed-order sum.
void matmul_forward_direct(float* out, const float* in, const float* weight, const float* bias, int64_t M,
                           int64_t IC, int64_t OC) {
    constexpr int64_t kRowTile = 4, kOutTile = 6;
    const int64_t out_blocks = ceil_div(OC, kOutTile);
#pragma omp parallel for schedule(static)
    for (int64_t blk = 0; blk < out_blocks; ++blk) {
        const int64_t o0 = blk * kOutTile;
        if (o0 + kOutTile <= OC) {
            const float* w = weight + o0 * IC;
            const float* b = bias ? bias + o0 : nullptr;
            int64_t i = 0;
            for (; i + kRowTile <= M; i += kRowTile)
                direct_tile<kRowTile, kOutTile>(out + i * OC + o0, OC, in + i * IC, w, IC, b);
            for (; i < M; ++i) direct_tile<1, kOutTile>(out + i * OC + o0, OC, in + i * IC, w, IC, b);
            continue;
        }
        for (int64_t o = o0; o < OC; ++o) {  // the last, partial block of outputs
            const float* w = weight + o * IC;
            const float* b = bias ? bias + o : nullptr;
            int64_t i = 0;
            for (; i + kRowTile <= M; i += kRowTile)
                direct_tile<kRowTile, 1>(out + i * OC + o, OC, in + i * IC, w, IC, b);
            for (; i < M; ++i) direct_tile<1, 1>(out + i * OC + o, OC, in + i * IC, w, IC, b);
        }
    }
}
#endif

// Portable few-row forward: one dot product per element, each weight row read once.
void matmul_forward_dot(float* out, const float* in, const float* weight, const float* bias, int64_t M, int64_t IC,
                        int64_t OC) {
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < OC; ++o) {
        const float* w = weight + o * IC;
        const float b = bias ? bias[o] : 0.0f;
        for (int64_t i = 0; i < M; ++i) out[i * OC + o] = detail::dot(in + i * IC, w, IC) + b;
    }
}

}  // namespace

void matmul_forward(float* out, const float* in, const float* weight, const float* bias, int64_t N, int64_t IC,
                    int64_t OC) {
#if defined(__AVX512F__)
    if (N < kSmallRows && IC % detail::kLanes == 0) {
        matmul_forward_direct(out, in, weight, bias, N, IC, OC);
        return;
    }
#endif
    if (N < kDotRows) {
        matmul_forward_dot(out, in, weight, bias, N, IC, OC);
        return;
    }
    const MatView A{in, IC, 1};      // in (N, IC)
    const MatView B{weight, 1, IC};  // W^T: B(k, o) = W[o, k]
    gemm(N, OC, IC, A, B, out, OC, /*accumulate=*/false, bias);
}

void matmul_backward(float* din, float* dweight, float* dbias, const float* dout, const float* in,
                     const float* weight, int64_t N, int64_t IC, int64_t OC) {
    if (din) {
        const MatView A{dout, OC, 1};    // dout (N, OC)
        const MatView B{weight, IC, 1};  // W (OC, IC)
        gemm(N, IC, OC, A, B, din, IC, /*accumulate=*/true, nullptr);
    }
    if (dweight) {  // always given through ops.h; the benchmark times din alone
        const MatView A{dout, 1, OC};  // dout^T: A(o, n) = dout[n, o]
        const MatView B{in, IC, 1};    // in (N, IC)
        gemm(OC, IC, N, A, B, dweight, IC, /*accumulate=*/true, nullptr);
    }
    if (dbias) {
        // Column sums, one thread per column range, rows in order: deterministic.
        constexpr int64_t kColumnBlock = 256;
#pragma omp parallel for schedule(static)
        for (int64_t o0 = 0; o0 < OC; o0 += kColumnBlock) {
            const int64_t cols = std::min(kColumnBlock, OC - o0);
            double sums[kColumnBlock] = {};
            for (int64_t n = 0; n < N; ++n) {
                const float* row = dout + n * OC + o0;
                for (int64_t c = 0; c < cols; ++c) sums[c] += row[c];
            }
            for (int64_t c = 0; c < cols; ++c) dbias[o0 + c] += static_cast<float>(sums[c]);
        }
    }
}

}  // namespace rpt::cpu
