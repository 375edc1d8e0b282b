// rpt_bench: one binary, one subcommand per benchmark (see bench/benches.h).
#include <cstdio>
#include <cstring>

#include "bench/benches.h"

namespace {

struct BenchEntry {
    const char* name;
    int (*run)(int, char**);
    const char* what;
};

constexpr BenchEntry kBenches[] = {
    {"kernels", rpt::bench::kernels, "attention and matmul TFLOP/s at fixed shapes on any backend (PyTorch peer)"},
    {"matmul", rpt::bench::matmul, "CPU matmul GFLOP/s at the model's shapes vs the fp32 peak"},
    {"training", rpt::bench::training, "pre-training tokens/s and GFLOP/s for a preset"},
    {"rpt-step", rpt::bench::rpt_step, "one RPT step (B contexts x G rollouts) split by phase"},
    {"decode", rpt::bench::decode, "KV-cache decode tokens/s and bytes/s; shared vs copied prefix"},
    {"comm", rpt::bench::comm, "allreduce / ZeRO bus bandwidth over message sizes (run under mpirun)"},
    {"tokenizer", rpt::bench::tokenizer, "tokenizer encode/decode MB/s on a text; checkpoint load GB/s"},
};

}  // namespace

int main(int argc, char** argv) {
    if (argc >= 2) {
        for (const BenchEntry& b : kBenches)
            if (std::strcmp(argv[1], b.name) == 0) return b.run(argc - 1, argv + 1);
    }
    std::fprintf(stderr, "usage: rpt_bench NAME [flags]\n");
    for (const BenchEntry& b : kBenches) std::fprintf(stderr, "  %-10s %s\n", b.name, b.what);
    return 2;
}
