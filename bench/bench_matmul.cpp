// rpt_bench matmul [--json FILE] [--peak GFLOPS] [--min-time SECONDS]
//
// Times the CPU matmul (kernels/cpu/matmul.cpp) at the model's shapes, for the three
// passes training runs: forward (out = in W^T + b), backward-din (din += dout W) and
// backward-dweight (dW += dout^T in). Each is 2 N IC OC FLOPs. Prints GFLOP/s and the
// percentage of the machine's fp32 FMA peak.
//
// The peak comes from --peak (e.g. the 2-thread AVX-512 figure of
// /work/shared/anchors/peak_fma.c) or, without it, from a short measurement here:
// every thread runs kPeakChains independent FMA chains on SIMD registers for
// kPeakIters steps (enough independent work to cover FMA latency on both FMA ports), and
// the best of kPeakTrials is kept. It is an honest upper bound of what any fp32 kernel
// can reach, not a theoretical sheet number.
#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include <nlohmann/json.hpp>

#include "bench/benches.h"
#include "kernels/cpu/cpu_ops.h"

namespace rpt::bench {
namespace {

constexpr int kPeakChains = 16;
#if defined(__AVX512F__)
constexpr int kPeakWidth = 16;  // floats per FMA instruction
#elif defined(__AVX2__)
constexpr int kPeakWidth = 8;
#else
constexpr int kPeakWidth = 1;
#endif
constexpr int kPeakTrials = 3;
constexpr int64_t kPeakIters = 10'000'000;  // per thread: ~0.1 s at 2 FMAs per cycle
constexpr double kDefaultMinTime = 0.3;  // seconds of timed calls per (shape, pass)
constexpr int kMinReps = 3;

double now_seconds() {
    using clock = std::chrono::steady_clock;
    return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

// FMA peak of all OpenMP threads together, in GFLOP/s: every thread runs the same fixed
// number of FMAs between two barriers, timed by the master.
double measure_peak_gflops() {
    double best = 0.0;
    for (int trial = 0; trial < kPeakTrials; ++trial) {
        double t0 = 0.0, t1 = 0.0;
        float sink = 0.0f;
        int threads = 1;
#pragma omp parallel reduction(+ : sink)
        {
#if defined(__AVX512F__)
            __m512 acc[kPeakChains];
            for (int i = 0; i < kPeakChains; ++i) acc[i] = _mm512_set1_ps(1.0f + i * 1e-3f);
            const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
#define RPT_PEAK_FMA(x) x = _mm512_fmadd_ps(x, a, b)
#elif defined(__AVX2__)
            __m256 acc[kPeakChains];
            for (int i = 0; i < kPeakChains; ++i) acc[i] = _mm256_set1_ps(1.0f + i * 1e-3f);
            const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
#define RPT_PEAK_FMA(x) x = _mm256_fmadd_ps(x, a, b)
#else
            float acc[kPeakChains];
            for (int i = 0; i < kPeakChains; ++i) acc[i] = 1.0f + i * 1e-3f;
            const float a = 0.999999f, b = 1e-7f;
#define RPT_PEAK_FMA(x) x = x * a + b
#endif
#pragma omp barrier
#pragma omp master
            {
                threads = omp_get_num_threads();
                t0 = now_seconds();
            }
            for (int64_t it = 0; it < kPeakIters; ++it) {
#pragma GCC unroll 16
                for (int i = 0; i < kPeakChains; ++i) RPT_PEAK_FMA(acc[i]);
            }
#undef RPT_PEAK_FMA
#pragma omp barrier
#pragma omp master
            t1 = now_seconds();
            float tmp[kPeakWidth];
            std::memcpy(tmp, &acc[0], sizeof(tmp));
            for (int i = 0; i < kPeakWidth; ++i) sink += tmp[i];
        }
        if (sink == 12345.678f) std::printf(" ");  // keeps the chains alive
        const double flops = 2.0 * kPeakWidth * kPeakChains * static_cast<double>(kPeakIters) * threads;
        best = std::max(best, flops / (t1 - t0) / 1e9);
    }
    return best;
}

// Pins OpenMP thread i to CPU i (mod the CPUs we may use). On small VMs the scheduler
// otherwise sometimes stacks both threads on one vCPU for whole timer ticks, which
// turns a 0.3 ms matmul into 20 ms. Left to the OpenMP runtime when OMP_PROC_BIND is
// set: the runtime then restricts the main thread to one place, and pinning from that
// thread's affinity would put every thread on one CPU.
void pin_threads() {
    if (std::getenv("OMP_PROC_BIND")) return;
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return;
    std::vector<int> cpus;
    for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
    if (cpus.empty()) return;
#pragma omp parallel
    {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpus[static_cast<size_t>(omp_get_thread_num()) % cpus.size()], &one);
        sched_setaffinity(0, sizeof(one), &one);  // 0 = the calling thread
    }
}

struct Shape {
    int64_t N, IC, OC;
};
// Model shapes: the `small` preset (hidden 512: q/o 512x512, kv, FFN 1536, lm head 8192,
// FFN down 1536->512) and the `tiny` preset (hidden 128, FFN 384, vocab 512), N = B*T = 2048.
constexpr Shape kShapes[] = {
    {2048, 512, 512}, {2048, 512, 1536}, {2048, 512, 8192}, {2048, 1536, 512},
    {2048, 128, 128}, {2048, 128, 384},  {2048, 128, 512},
};

// Median seconds per call of fn, over at least kMinReps calls and min_time seconds.
template <class Fn>
double time_call(Fn&& fn, double min_time) {
    fn();  // warm-up: page faults, caches
    std::vector<double> times;
    const double start = now_seconds();
    while (static_cast<int>(times.size()) < kMinReps || now_seconds() - start < min_time) {
        const double t0 = now_seconds();
        fn();
        times.push_back(now_seconds() - t0);
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

std::vector<float> random_vector(int64_t n, uint32_t seed) {
    std::vector<float> v(static_cast<size_t>(n));
    uint32_t state = seed;
    for (float& x : v) {
        state = state * 1664525u + 1013904223u;  // LCG: enough for benchmark data
        x = static_cast<float>(state >> 8) / static_cast<float>(1u << 24) - 0.5f;
    }
    return v;
}

}  // namespace

int matmul(int argc, char** argv) {
    std::string json_path;
    double peak = 0.0, min_time = kDefaultMinTime;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const bool has_value = i + 1 < argc;
        if (arg == "--json" && has_value) {
            json_path = argv[++i];
        } else if (arg == "--peak" && has_value) {
            peak = std::atof(argv[++i]);
        } else if (arg == "--min-time" && has_value) {
            min_time = std::atof(argv[++i]);
        } else {
            std::fprintf(stderr,
                         "usage: rpt_bench matmul [--json FILE] [--peak GFLOPS] [--min-time SECONDS]\n"
                         "  --peak      fp32 FMA peak of this machine in GFLOP/s (default: measured here)\n"
                         "  --min-time  seconds of timed calls per shape and pass (default %.1f)\n",
                         kDefaultMinTime);
            return 2;
        }
    }
    pin_threads();
    const int threads = omp_get_max_threads();
    const bool measured_peak = peak <= 0.0;
    if (measured_peak) peak = measure_peak_gflops();
    std::printf("CPU matmul, %d threads, fp32 peak %.1f GFLOP/s (%s)\n", threads, peak,
                measured_peak ? "measured: FMA chains on SIMD registers" : "given by --peak");
    std::printf("%6s %6s %6s  %-9s %10s %10s %8s\n", "N", "IC", "OC", "pass", "ms", "GFLOP/s", "% peak");

    nlohmann::json results = nlohmann::json::array();
    for (const Shape& s : kShapes) {
        const std::vector<float> in = random_vector(s.N * s.IC, 1), weight = random_vector(s.OC * s.IC, 2),
                                 bias = random_vector(s.OC, 3), dout = random_vector(s.N * s.OC, 4);
        std::vector<float> out(static_cast<size_t>(s.N * s.OC)), din(static_cast<size_t>(s.N * s.IC), 0.0f),
            dweight(static_cast<size_t>(s.OC * s.IC), 0.0f);
        const double flop = 2.0 * static_cast<double>(s.N) * static_cast<double>(s.IC) * static_cast<double>(s.OC);
        struct Pass {
            const char* name;
            double seconds;
        };
        const Pass passes[] = {
            {"forward", time_call([&] { cpu::matmul_forward(out.data(), in.data(), weight.data(), bias.data(), s.N,
                                                            s.IC, s.OC); },
                                  min_time)},
            {"din", time_call([&] { cpu::matmul_backward(din.data(), nullptr, nullptr, dout.data(), in.data(),
                                                         weight.data(), s.N, s.IC, s.OC); },
                              min_time)},
            {"dweight", time_call([&] { cpu::matmul_backward(nullptr, dweight.data(), nullptr, dout.data(),
                                                             in.data(), weight.data(), s.N, s.IC, s.OC); },
                                  min_time)},
        };
        for (const Pass& p : passes) {
            const double gflops = flop / p.seconds / 1e9;
            std::printf("%6lld %6lld %6lld  %-9s %10.3f %10.1f %7.1f%%\n", static_cast<long long>(s.N),
                        static_cast<long long>(s.IC), static_cast<long long>(s.OC), p.name, p.seconds * 1e3, gflops,
                        100.0 * gflops / peak);
            results.push_back({{"N", s.N}, {"IC", s.IC}, {"OC", s.OC}, {"pass", p.name}, {"ms", p.seconds * 1e3},
                               {"gflops", gflops}, {"percent_of_peak", 100.0 * gflops / peak}});
        }
    }
    if (!json_path.empty()) {
        const nlohmann::json doc = {{"bench", "matmul"},       {"threads", threads},
                                    {"peak_gflops", peak},     {"peak_source", measured_peak ? "measured" : "flag"},
                                    {"results", results}};
        std::ofstream f(json_path);
        if (!f) {
            std::fprintf(stderr, "cannot write %s\n", json_path.c_str());
            return 1;
        }
        f << doc.dump(2) << "\n";
    }
    return 0;
}

}  // namespace rpt::bench
