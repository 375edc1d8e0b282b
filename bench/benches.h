// Each benchmark is a function run by `rpt_bench NAME [flags]`; it prints a human table
// and writes its raw numbers as JSON to the path given by --json (if any).
#pragma once

namespace rpt::bench {

int matmul(int argc, char** argv);    // bench/bench_matmul.cpp
int training(int argc, char** argv);  // bench/bench_training.cpp
int decode(int argc, char** argv);    // bench/bench_decode.cpp
int rpt_step(int argc, char** argv);  // bench/bench_rpt_step.cpp
int comm(int argc, char** argv);      // bench/bench_comm.cpp
int tokenizer(int argc, char** argv);  // bench/bench_tokenizer.cpp
int kernels(int argc, char** argv);    // bench/bench_kernels.cpp

}  // namespace rpt::bench
