#!/usr/bin/env bash
# Prints the flags that work around a known miscompilation of the compiler the build
# uses, for the build's target flags, or nothing. Called once by the Makefile.
#
# GCC 12.2 (Debian 12.2.0-14) with AVX-512 targets (-march=native on an AVX-512 Xeon):
# the SLP vectorizer builds the constant vector {1, 1, 1, 0} of a std::vector<double>
# initializer as a broadcast of 1.0, so the last element reads 1 (found by
# tests/test_eval_comparison.cpp on an AVX-512 Xeon; AVX2-only and -O1 code is right).
# Turning the SLP vectorizer off for the whole build removes that wrong code wherever
# it would appear; loop vectorization, which the CPU kernels rely on, stays on, and the
# matmul micro-kernels are intrinsics.
# Usage: tools/compiler-probe.sh CXX "TARGET FLAGS"
set -u
cxx=${1:-g++}
flags=${2:-}
work=$(mktemp -d) || exit 0
trap 'rm -rf "$work"' EXIT
cat >"$work/probe.cpp" <<'CPP'
#include <vector>
__attribute__((noinline)) std::vector<double> made() { return {1, 1, 1, 0}; }
int main() {
    const std::vector<double> v = made();
    return v.size() == 4 && v[0] == 1 && v[1] == 1 && v[2] == 1 && v[3] == 0 ? 0 : 1;
}
CPP
# A compiler that cannot build or run the probe (a cross build) gets no workaround.
# shellcheck disable=SC2086
"$cxx" -O3 $flags "$work/probe.cpp" -o "$work/probe" 2>/dev/null || exit 0
"$work/probe" && exit 0
echo "-fno-tree-slp-vectorize"
