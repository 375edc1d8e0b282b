#!/usr/bin/env bash
# gpu-check.sh — everything a short GPU slot should verify, in one go (`make gpu-check`):
#   1. build for the local GPU's architecture (its own build dir, so a CPU/other-arch
#      build tree is left alone) and fail on any register spill (tools/ptxas-check.sh);
#   2. run every CUDA test (gtest filter Cuda*) — a skipped test counts as a failure here,
#      since this script only runs where a GPU is present;
#   3. run them again, on small shapes (RPT_TEST_SMALL=1), under compute-sanitizer memcheck;
#   4. print the kernel timings the tests measured (step 2, CUDA events, mean of 5 runs)
#      and write every raw result to build/gpu-check.json;
#   5. the NCCL backend (tests/mpi/nccl_check.sh): MPI bootstrap, collectives' bus
#      bandwidth, a ZeRO-1 run over NCCL against the plain GPU run;
#   6. the RPT engine end to end on the GPU: one RPT step (32 contexts x 8 rollouts, the
#      prompt shared and per response) split by phase, and batched decoding with the
#      bf16 vs f32 KV cache (rpt_bench rpt-step / decode --device cuda).
# Exits non-zero on any failure. Sized to finish well under 8 minutes on one H100.
set -uo pipefail

cd "$(dirname "$0")/.."
out_dir=build
mkdir -p "$out_dir"
report="$out_dir/gpu-check.json"
timings="$out_dir/gpu-check-timings.jsonl"
jobs=$(nproc 2>/dev/null || echo 4)

fail() {
    echo "gpu-check: FAILED: $*" >&2
    exit 1
}

command -v nvidia-smi >/dev/null 2>&1 || fail "nvidia-smi not found: no NVIDIA driver on this machine"
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '. ')
gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
[ -n "$arch" ] || fail "could not read the GPU's compute capability"
build_dir="$out_dir/sm$arch"
echo "== gpu-check on $gpu_name (sm_$arch), build dir $build_dir"

# ---- 1. build + spill check ------------------------------------------------------------
build_start=$(date +%s)
# The dependency stamp of the main build tree covers this one too (same machine).
mkdir -p "$build_dir"
[ -f "$out_dir/.deps-installed" ] && touch "$build_dir/.deps-installed"
make -j"$jobs" BUILD="$build_dir" CUDA=1 CUDA_ARCH="$arch" "$build_dir/rpt_tests" "$build_dir/rpt" \
    "$build_dir/rpt_bench" "$build_dir/rpt_st_diff" || fail "build"
build_s=$(( $(date +%s) - build_start ))
bash tools/ptxas-check.sh "$build_dir" | tee "$out_dir/gpu-check-ptxas.txt"
ptxas_rc=${PIPESTATUS[0]}
[ "$ptxas_rc" -eq 0 ] || fail "register spills (see $out_dir/gpu-check-ptxas.txt)"

# ---- 2. CUDA tests ---------------------------------------------------------------------
rm -f "$timings"
test_log="$out_dir/gpu-check-tests.log"
RPT_CUDA_TIMINGS="$timings" "$build_dir/rpt_tests" --gtest_filter='Cuda*' \
    --gtest_output="json:$out_dir/gpu-check-tests.json" 2>&1 | tee "$test_log"
tests_rc=${PIPESTATUS[0]}
skipped=$(grep -c '^\[  SKIPPED \]' "$test_log" || true)
passed_line=$(grep -E '^\[  PASSED  \] [0-9]+ test' "$test_log" | head -1)

# ---- 3. compute-sanitizer memcheck on small shapes ----------------------------------------
# API errors are not reported by the sanitizer: the code checks every API call itself, and
# the out-of-memory test fails an allocation on purpose.
sanitizer=$(command -v compute-sanitizer || true)
[ -z "$sanitizer" ] && [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/compute-sanitizer" ] && sanitizer="$CUDA_HOME/bin/compute-sanitizer"
[ -z "$sanitizer" ] && [ -x /usr/local/cuda/bin/compute-sanitizer ] && sanitizer=/usr/local/cuda/bin/compute-sanitizer
memcheck_log="$out_dir/gpu-check-memcheck.log"
if [ -n "$sanitizer" ]; then
    RPT_TEST_SMALL=1 "$sanitizer" --tool memcheck --error-exitcode 99 --leak-check no \
        --report-api-errors no \
        "$build_dir/rpt_tests" --gtest_filter='Cuda*' >"$memcheck_log" 2>&1
    memcheck_rc=$?
    tail -5 "$memcheck_log"
else
    echo "compute-sanitizer not found" >"$memcheck_log"
    memcheck_rc=127
fi

# ---- 4. timings table + JSON report -------------------------------------------------------
echo
echo "== kernel timings measured by the tests on $gpu_name (mean of 5 runs, CUDA events)"
printf '%-20s %-22s %10s %12s\n' op shape ms rate
if [ -s "$timings" ]; then
    # rate: GB/s of the bytes the op must move, or GFLOP/s of the FLOPs it must do.
    awk -F'"' '{
        op = $4; shape = $8
        match($0, /"ms": [0-9.eE+-]+/); ms = substr($0, RSTART + 6, RLENGTH - 6) + 0
        match($0, /"work": [0-9.eE+-]+/); work = substr($0, RSTART + 8, RLENGTH - 8) + 0
        match($0, /"unit": "[A-Z]+"/); unit = substr($0, RSTART + 9, RLENGTH - 10)
        rate = ms > 0 ? work / (ms * 1e6) : 0
        printf "%-20s %-22s %10.4f %9.1f %s\n", op, shape, ms, rate, unit == "FLOP" ? "GFLOP/s" : "GB/s"
    }' "$timings"
else
    echo "(no timings recorded)"
fi

{
    echo "{"
    echo "  \"gpu\": \"$gpu_name\","
    echo "  \"arch\": \"sm_$arch\","
    echo "  \"build_seconds\": $build_s,"
    echo "  \"ptxas_check_rc\": $ptxas_rc,"
    echo "  \"tests_rc\": $tests_rc,"
    echo "  \"tests_skipped\": $skipped,"
    echo "  \"tests_summary\": \"${passed_line//\"/}\","
    echo "  \"memcheck_rc\": $memcheck_rc,"
    echo "  \"timings\": ["
    if [ -s "$timings" ]; then sed '$!s/$/,/; s/^/    /' "$timings"; fi
    echo "  ]"
    echo "}"
} >"$report"
echo
echo "raw results: $report (test log $test_log, memcheck log $memcheck_log)"

# ---- 5. NCCL: bootstrap over MPI, collectives, a ZeRO-1 run (skipped without NCCL/MPI) ----
nccl_log="$out_dir/gpu-check-nccl.log"
bash tests/mpi/nccl_check.sh "$build_dir" 2>&1 | tee "$nccl_log"
nccl_rc=${PIPESTATUS[0]}

# ---- 6. the RPT engine on the GPU: one step by phase, decoding with each KV dtype ----------
engine_log="$out_dir/gpu-check-engine.log"
engine_rc=0
for preset in tiny small; do
    echo "== one RPT step on the GPU ($preset)"
    "$build_dir/rpt_bench" rpt-step --device cuda --preset "$preset" --contexts 32 --rollouts 8 \
        --json "$out_dir/gpu-check-rpt-step-$preset.json" 2>&1 | tee -a "$engine_log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || engine_rc=1
done
echo "== batched decoding on the GPU (small)"
"$build_dir/rpt_bench" decode --device cuda --preset small --json "$out_dir/gpu-check-decode.json" 2>&1 |
    tee -a "$engine_log"
[ "${PIPESTATUS[0]}" -eq 0 ] || engine_rc=1

[ "$tests_rc" -eq 0 ] || fail "CUDA tests (see $test_log)"
[ "$skipped" -eq 0 ] || fail "$skipped CUDA test(s) skipped on a GPU machine"
[ "$memcheck_rc" -eq 0 ] || fail "compute-sanitizer memcheck (rc $memcheck_rc, see $memcheck_log)"
[ "$nccl_rc" -eq 0 ] || fail "NCCL checks (see $nccl_log)"
[ "$engine_rc" -eq 0 ] || fail "the RPT engine on the GPU (see $engine_log)"
echo "gpu-check: OK"
