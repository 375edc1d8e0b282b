#!/usr/bin/env bash
# gpu-check.sh — every GPU check of rpt in one call, run from the GPU bundle
# (`make gpu-bundle` builds it on any machine; kernels/cuda/README.md has the recipe).
#
#   gpu-check.sh [--dry-run] [--out DIR] [--budget SECONDS] [--only STEP,STEP...]
#
# Nothing is compiled or installed here: the bundle holds the binaries (sm_80 + sm_90,
# portable host code), their non-CUDA shared libraries, the test fixtures, the PyTorch
# peer and the ptxas reports. cuBLAS/cuBLASLt are found on this machine (its CUDA
# toolkit or the nvidia-* wheels beside PyTorch).
#
# Steps, in order, each with its own time budget; a failing step never stops the later
# ones, and a global deadline (--budget, default 470 s) skips what no longer fits:
#   libs       locate cuBLAS, check every binary starts (--help) with the bundle's libraries
#   probe      GPU name, driver, compute capability, free memory; CPU; PyTorch
#   sanitizer  is compute-sanitizer there, and does it work on this device?
#   ptxas      registers and spills of every kernel, from the bundle's build (reported)
#   tests      every GPU test (Cuda* and HfModel.* on CUDA), one process per suite; the
#              bf16 kernels are the suites CudaBf16Kernels, CudaBf16Matmul and
#              CudaAttentionBf16 (the tensor-core attention)
#   memcheck   compute-sanitizer memcheck on the kernel tests at small shapes
#   racecheck  compute-sanitizer racecheck on the attention (fp32 and bf16), reduction and
#              bf16 kernels
#   agree-pretrain  20 pre-training steps of `tiny`, CUDA vs CPU, same seed
#   agree-rpt       one RPT step, CUDA vs CPU, same checkpoint and seed
#   bench-*    our kernels (matmul in fp32 and bf16), training step (`small`, and the
#              124M-class qwen2-124m: 5 timed steps of 8 x 1024), the cost of --recompute
#              layer on that model (bench-recompute), decode and RPT step, then
#              the PyTorch peer at the same shapes (bench/peers/torch_gpu.py)
# --dry-run (no GPU needed; `make test` runs it): every step whose work needs no GPU
# runs (libs, ptxas, the CPU halves of the agreement checks, listing the GPU tests), and
# every GPU step is skipped, saying so. --only runs the named steps (and libs and probe,
# which the others need), e.g. to rerun what failed: --only tests,agree-rpt.
#
# Results (at most 3 files) go to $OUT when set, else --out, else build/gpu-check:
#   summary.txt            the table, also printed last
#   gpu-check.json         every raw number and each step's status
#   gpu-check-logs.tar.gz  every log, the gtest JSON, the ptxas reports
# Exit status: 0 when no step failed.
set -uo pipefail

bundle=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dry_run=0
out_dir=${OUT:-}
total_budget=470
only=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry_run=1 ;;
        --out) out_dir=$2; shift ;;
        --budget) total_budget=$2; shift ;;
        --only) only=",$2,"; shift ;;
        -h|--help) sed -n '2,35p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu-check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$out_dir" ] || out_dir="$bundle/../gpu-check"
mkdir -p "$out_dir" || { echo "gpu-check: cannot create $out_dir" >&2; exit 2; }
out_dir=$(cd "$out_dir" && pwd)
# The binaries travel packed (tools/gpu-bundle.sh): unpacked once, next to lib/, where
# their $ORIGIN/../lib rpath finds the bundle's libraries.
if [ ! -x "$bundle/bin/rpt_tests" ] && [ -f "$bundle/bin.tar.gz" ]; then
    tar -xzf "$bundle/bin.tar.gz" -C "$bundle" ||
        { echo "gpu-check: cannot unpack $bundle/bin.tar.gz into $bundle (is it writable?)" >&2; exit 2; }
fi
[ -x "$bundle/bin/rpt_tests" ] || { echo "gpu-check: $bundle is not a GPU bundle (no bin/rpt_tests)" >&2; exit 2; }

# Scratch for logs and step records until they are packed into $out_dir; removed on any
# exit, a kill by the device call's timeout included.
work=$(mktemp -d "${TMPDIR:-/tmp}/rpt-gpu-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
logs="$work/logs"
data="$work/data"
mkdir -p "$logs" "$data"
steps="$work/steps.tsv"
: >"$steps"
start_s=$(date +%s)
deadline=$((start_s + total_budget))
report_reserve=20  # seconds kept for the report and the tarball

export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc 2>/dev/null || echo 4)}
cd "$bundle"  # the tests read tests/fixtures/ relative to the working directory

# ---- step bookkeeping ---------------------------------------------------------------------
# record NAME STATUS SECONDS DETAIL — STATUS is pass, fail or skip; DETAIL is one line.
record() {
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4//$'\t'/ }" >>"$steps"
    printf 'gpu-check: %-15s %-4s %4ss  %s\n' "$1" "$2" "$3" "$4"
}
now() { date +%s; }
# budget_for WANTED: seconds a step may use, capped by the global deadline (0: no time).
budget_for() {
    local left=$((deadline - $(now) - report_reserve))
    [ "$left" -lt "$1" ] && echo $((left > 0 ? left : 0)) || echo "$1"
}
# limited SECONDS LOG CMD...: runs CMD under timeout, output to LOG; returns its status
# (124 when it ran out of time).
limited() {
    local seconds=$1 log=$2; shift 2
    timeout --kill-after=10 "$seconds" "$@" >>"$log" 2>&1
}
gpu_skip_reason="dry run: no GPU step runs"
has_gpu() { [ "$dry_run" -eq 0 ] && [ -n "${gpu_ok:-}" ]; }

# ---- libs: cuBLAS from this machine, the rest from the bundle -------------------------------
step_libs() {
    local t0 log="$logs/libs.log" needed dir found="" candidates=()
    t0=$(now)
    # ldd names every library the binary needs, found or not.
    needed=$(ldd bin/rpt_tests 2>/dev/null | awk '$1 ~ /^libcublas/ {print $1}' | sort -u)
    # Where cuBLAS can live: a CUDA toolkit, the NVIDIA wheels beside PyTorch, ldconfig.
    [ -n "${CUDA_HOME:-}" ] && candidates+=("$CUDA_HOME/lib64" "$CUDA_HOME/lib")
    for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-*/lib64; do
        candidates+=("$d")
    done
    if command -v python3 >/dev/null 2>&1; then
        while IFS= read -r d; do candidates+=("$d"); done < <(python3 - 2>/dev/null <<'EOF'
import glob, os, site, sys
roots = site.getsitepackages() + [site.getusersitepackages()]
for r in roots:
    for d in glob.glob(os.path.join(r, "nvidia", "*", "lib")) + glob.glob(os.path.join(r, "nvidia", "cu*", "lib")):
        print(d)
EOF
)
    fi
    while IFS= read -r d; do candidates+=("$d"); done < <(ldconfig -p 2>/dev/null | sed -n 's/.*libcublasLt\.so.* => \(.*\)\/[^/]*$/\1/p')
    for dir in "${candidates[@]}"; do
        [ -d "$dir" ] || continue
        local all=1
        for lib in $needed; do [ -e "$dir/$lib" ] || all=0; done
        if [ "$all" -eq 1 ]; then found=$dir; break; fi
    done
    echo "cuBLAS needed: $needed; searched: ${candidates[*]}" >>"$log"
    local ld="$bundle/lib"
    [ -n "$found" ] && ld="$ld:$found"
    for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do [ -d "$d" ] && ld="$ld:$d"; done  # the driver
    export LD_LIBRARY_PATH="$ld${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    # An older system libstdc++ than the build machine's: use the copy in lib/compat.
    if LD_LIBRARY_PATH="$LD_LIBRARY_PATH" bin/rpt --help 2>&1 | grep -q "GLIBCXX\|CXXABI"; then
        export LD_LIBRARY_PATH="$bundle/lib/compat:$LD_LIBRARY_PATH"
        echo "system libstdc++ too old: using lib/compat" >>"$log"
    fi
    local problems=""
    for b in rpt rpt_tests rpt_bench; do
        ldd "bin/$b" >>"$log" 2>&1
        local missing
        missing=$(ldd "bin/$b" 2>/dev/null | awk '/not found/ {print $1}' | tr '\n' ' ')
        [ -n "$missing" ] && problems="$problems $b lacks: $missing;"
        # Every library a binary takes must be the bundle's own, a CUDA library found
        # above, or the C/C++ runtime of the system.
        local foreign
        foreign=$(ldd "bin/$b" 2>/dev/null | awk '$3 ~ /^\// {print $1 " " $3}' |
            grep -v -E "^(libc|libm|libdl|libpthread|librt|ld-linux[^ ]*|libstdc\+\+|libgcc_s)\.so" |
            grep -v -F "$bundle/lib/" | { [ -n "$found" ] && grep -v -F "$found/" || cat; } | awk '{print $1}' | tr '\n' ' ')
        [ -n "$foreign" ] && problems="$problems $b takes from outside the bundle: $foreign;"
        local help_rc=0
        if [ "$b" = rpt_tests ]; then
            bin/rpt_tests --gtest_list_tests >"$work/tests.list" 2>>"$log" || help_rc=$?
        elif [ "$b" = rpt_bench ]; then
            bin/rpt_bench kernels --help >>"$log" 2>&1 || help_rc=$?
        else
            bin/rpt --help >>"$log" 2>&1 || help_rc=$?
        fi
        [ "$help_rc" -ne 0 ] && problems="$problems $b --help exit $help_rc;"
    done
    local size
    # What travels: the packed binaries, not the bin/ this script unpacked from them.
    size=$(du -sm --exclude=./bin "$bundle"/. | cut -f1)
    printf '{"cublas_dir": "%s", "cublas_needed": "%s", "bundle_mib": %s, "ld_library_path": "%s"}\n' \
        "$found" "$(echo $needed)" "$size" "$LD_LIBRARY_PATH" >"$data/libs.json"
    [ -z "$found" ] && [ -n "$needed" ] && problems="$problems cuBLAS ($needed) not found on this machine;"
    [ "$size" -gt 48 ] && problems="$problems bundle is $size MiB (limit 48);"
    if [ -z "$problems" ]; then
        record libs pass $(($(now) - t0)) "3 binaries start with the bundle's libraries; cuBLAS from ${found:-nowhere}; bundle ${size} MiB"
    else
        record libs fail $(($(now) - t0)) "${problems# }"
    fi
}

# ---- probe: the machine -------------------------------------------------------------------
step_probe() {
    local t0 log="$logs/probe.log"
    t0=$(now)
    local cpu
    cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')
    local avx2=no
    grep -q ' avx2 ' /proc/cpuinfo 2>/dev/null && avx2=yes
    {
        echo "cpu: $cpu ($(nproc) cores, avx2 $avx2)"
        nvidia-smi 2>&1 || true
        command -v python3 && python3 --version
    } >>"$log" 2>&1
    local name="" driver="" cap="" mem_free="" mem_total=""
    if command -v nvidia-smi >/dev/null 2>&1; then
        local q
        q=$(nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.free,memory.total --format=csv,noheader,nounits 2>>"$log" | head -1)
        IFS=',' read -r name driver cap mem_free mem_total <<<"$q"
        name=$(echo "$name" | sed 's/^ *//; s/ *$//'); driver=${driver// /}; cap=${cap// /}
        mem_free=${mem_free// /}; mem_total=${mem_total// /}
    fi
    printf '{"cpu": "%s", "cores": %s, "avx2": "%s", "gpu": "%s", "driver": "%s", "compute_cap": "%s", "memory_free_mib": "%s", "memory_total_mib": "%s"}\n' \
        "$cpu" "$(nproc)" "$avx2" "$name" "$driver" "$cap" "$mem_free" "$mem_total" >"$data/probe.json"
    if [ "$dry_run" -eq 1 ]; then
        record probe pass $(($(now) - t0)) "dry run; CPU: $cpu, avx2 $avx2; GPU: ${name:-none}"
    elif [ -z "$name" ]; then
        gpu_skip_reason="no usable GPU (see step probe)"
        record probe fail $(($(now) - t0)) "nvidia-smi reports no GPU: every GPU step is skipped"
    elif [ "$avx2" != yes ]; then
        gpu_skip_reason="no usable CPU (see step probe)"
        record probe fail $(($(now) - t0)) "$name: this CPU lacks AVX2, which the bundle's host code needs"
    else
        gpu_ok=1
        record probe pass $(($(now) - t0)) "$name, driver $driver, sm_${cap/./}, ${mem_free} MiB free; CPU $cpu"
    fi
}

# ---- sanitizer: present and working? ------------------------------------------------------
step_sanitizer() {
    local t0 log="$logs/sanitizer-probe.log"
    t0=$(now)
    sanitizer=$(command -v compute-sanitizer || true)
    for c in "${CUDA_HOME:-/nonexistent}/bin/compute-sanitizer" /usr/local/cuda/bin/compute-sanitizer \
             /opt/nvidia/nsight-compute/*/compute-sanitizer/compute-sanitizer; do
        [ -z "$sanitizer" ] && [ -x "$c" ] && sanitizer=$c
    done
    if ! has_gpu; then
        sanitizer_ok=""
        record sanitizer skip $(($(now) - t0)) "${gpu_skip_reason}; compute-sanitizer: ${sanitizer:-not found}"
        return
    fi
    if [ -z "$sanitizer" ]; then
        record sanitizer skip $(($(now) - t0)) "compute-sanitizer not found: memcheck and racecheck are skipped"
        return
    fi
    local rc=0
    RPT_TEST_SMALL=1 limited 60 "$log" "$sanitizer" --tool memcheck --error-exitcode 99 --report-api-errors no \
        bin/rpt_tests --gtest_filter='CudaElementwise.*' || rc=$?
    if grep -q -i "device not supported\|unable to\|error 999" "$log" || { [ "$rc" -ne 0 ] && [ "$rc" -ne 99 ]; }; then
        record sanitizer skip $(($(now) - t0)) "compute-sanitizer refuses this device (rc $rc, see logs): memcheck/racecheck skipped"
    else
        sanitizer_ok=1
        record sanitizer pass $(($(now) - t0)) "$sanitizer works here (probe rc $rc)"
    fi
}

# ---- ptxas: registers and spills, from the bundle's build --------------------------------
step_ptxas() {
    local t0 rc=0
    t0=$(now)
    bash ptxas/ptxas-check.sh ptxas >"$logs/ptxas-check.txt" 2>&1 || rc=$?
    local entries spills
    entries=$(grep -c -E '^[a-z0-9_]+ +sm_' "$logs/ptxas-check.txt" || true)
    spills=$(grep -c 'SPILLS' "$logs/ptxas-check.txt" || true)
    printf '{"entries": %s, "spilling": %s, "rc": %s}\n' "${entries:-0}" "${spills:-0}" "$rc" >"$data/ptxas.json"
    if [ "$rc" -eq 0 ]; then
        record ptxas pass $(($(now) - t0)) "$entries kernel/arch entries, no spills"
    else
        record ptxas fail $(($(now) - t0)) "$spills kernel/arch entries spill registers (logs: ptxas-check.txt)"
    fi
}

# ---- tests: one process per suite --------------------------------------------------------
# GPU tests: every test whose suite or name says Cuda, and the transformers fixtures
# (HfModel.*, which run on the CPU and on CUDA when a GPU is present).
gpu_suites() {
    awk '/^[^ ]/ {suite = $1; sub(/\.$/, "", suite); next}
         { name = $1; if (suite ~ /Cuda|HfModel/ || name ~ /Cuda/) print suite "\t" name }' "$work/tests.list"
}
# run_suites STEP FILTER_REGEX PER_SUITE_SECONDS STEP_SECONDS [PREFIX...]: runs each
# selected suite in its own process (PREFIX wraps it, e.g. the sanitizer); writes one
# gtest JSON per suite under $data/STEP/. Prints "passed failed timeouts skipped".
run_suites() {
    local step=$1 regex=$2 per_suite=$3 step_budget=$4; shift 4
    local dir="$data/$step" log="$logs/$step.log" t_end=$(($(now) + step_budget))
    mkdir -p "$dir"
    local suites
    suites=$(gpu_suites | awk -F'\t' -v re="$regex" '$1 ~ re {print $1}' | sort -u)
    local n_pass=0 n_fail=0 n_timeout=0 n_skip=0
    for suite in $suites; do
        local names filter left rc=0
        names=$(gpu_suites | awk -F'\t' -v s="$suite" '$1 == s {print s "." $2}' | paste -sd: -)
        filter=$names
        # Suites whose every test is GPU-only run whole; mixed suites run their GPU tests.
        left=$((t_end - $(now)))
        if [ "$left" -lt 5 ]; then
            echo "== $suite: out of time budget" >>"$log"; n_timeout=$((n_timeout + 1)); continue
        fi
        local budget=$((per_suite < left ? per_suite : left))
        local safe=${suite//\//_}
        echo "== $suite (budget ${budget}s): $filter" >>"$log"
        limited "$budget" "$log" "$@" bin/rpt_tests --gtest_filter="$filter" \
            --gtest_output="json:$dir/$safe.json" || rc=$?
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            n_timeout=$((n_timeout + 1)); echo "== $suite: TIMEOUT after ${budget}s" >>"$log"
        elif [ "$rc" -ne 0 ]; then
            n_fail=$((n_fail + 1)); echo "== $suite: exit $rc" >>"$log"
        else
            n_pass=$((n_pass + 1))
        fi
    done
    n_skip=$(grep -c '^\[  SKIPPED \] [A-Za-z]' "$log" 2>/dev/null || true)
    n_skip=${n_skip:-0}
    echo "$n_pass $n_fail $n_timeout $n_skip"
}

step_tests() {
    local t0 budget
    t0=$(now)
    local count
    count=$(gpu_suites | wc -l)
    if ! has_gpu; then
        record tests skip 0 "${gpu_skip_reason}; $count GPU tests listed in $(gpu_suites | cut -f1 | sort -u | wc -l) suites"
        return
    fi
    budget=$(budget_for 170)
    read -r p f t s < <(run_suites tests '.' 90 "$budget")
    local status=pass
    { [ "$f" -gt 0 ] || [ "$t" -gt 0 ] || [ "$s" -gt 0 ]; } && status=fail
    record tests $status $(($(now) - t0)) "$count tests: suites $p passed, $f failed, $t timed out; $s tests skipped on a GPU machine"
}

step_sanitize() {  # memcheck | racecheck
    local tool=$1 regex=$2 wanted=$3 t0
    t0=$(now)
    if ! has_gpu; then record "$tool" skip 0 "$gpu_skip_reason"; return; fi
    if [ -z "${sanitizer_ok:-}" ]; then record "$tool" skip 0 "compute-sanitizer unavailable here (see step sanitizer)"; return; fi
    local budget
    budget=$(budget_for "$wanted")
    [ "$budget" -lt 10 ] && { record "$tool" skip 0 "out of time budget"; return; }
    local extra=()
    [ "$tool" = memcheck ] && extra=(--leak-check no --report-api-errors no)
    read -r p f t s < <(RPT_TEST_SMALL=1 run_suites "$tool" "$regex" 60 "$budget" \
        "$sanitizer" --tool "$tool" --error-exitcode 99 "${extra[@]}")
    local errors
    errors=$(grep -c -E '^========= (Invalid|Race|Error|Uninitialized)' "$logs/$tool.log" || true)
    local status=pass
    { [ "$f" -gt 0 ] || [ "$t" -gt 0 ] || [ "${errors:-0}" -gt 0 ]; } && status=fail
    record "$tool" $status $(($(now) - t0)) "suites $p clean, $f with errors, $t timed out; ${errors:-0} sanitizer reports"
}

# ---- whole-model agreement: CUDA vs CPU -----------------------------------------------------
# The CPU halves run in a dry run too, so the commands and the comparison cannot rot.
agree_dir="$work/agree"
pretrain_flags=(--preset tiny --corpus "$agree_dir/corpus.jsonl" --tokenizer "$agree_dir/tok.json" --steps 20
                --batch 4 --seq 64 --lr 1e-3 --warmup 2 --eval-docs 4 --seed 1 --data-seed 1 --log-every 5)
# step_agree_pretrain PRECISION: f32 (step agree-pretrain) or bf16 (agree-pretrain-bf16:
# the CUDA bf16 path against the CPU's bf16 emulation, which rounds at the same points).
step_agree_pretrain() {
    local precision=$1 step=agree-pretrain comparison=compare-pretrain
    [ "$precision" = bf16 ] && step=agree-pretrain-bf16 comparison=compare-pretrain-bf16
    local t0 log="$logs/$step.log" budget rc=0 flags=("${pretrain_flags[@]}" --precision "$precision")
    local cpu_metrics="$agree_dir/pretrain_${precision}_cpu.jsonl" cuda_metrics="$agree_dir/pretrain_${precision}_cuda.jsonl"
    t0=$(now)
    budget=$(budget_for 90)
    mkdir -p "$agree_dir"
    { [ -s "$agree_dir/tok.json" ] ||
        { limited "$budget" "$log" bin/rpt data synth --out "$agree_dir/corpus.jsonl" --docs 300 --seed 1 &&
            limited "$budget" "$log" bin/rpt tokenizer train --corpus "$agree_dir/corpus.jsonl" --vocab 512 \
                --out "$agree_dir/tok.json"; }; } &&
        limited "$budget" "$log" bin/rpt pretrain "${flags[@]}" --out "$agree_dir/ck_${precision}_cpu" \
            --metrics "$cpu_metrics" --device cpu || rc=$?
    if [ "$rc" -ne 0 ]; then record "$step" fail $(($(now) - t0)) "CPU run failed (rc $rc, see log)"; return; fi
    if ! has_gpu; then
        if ! self_check "$comparison" "$cpu_metrics" loss 20 "$log"; then
            record "$step" fail $(($(now) - t0)) "the comparison is broken (self-check, see log)"; return
        fi
        record "$step" skip $(($(now) - t0)) "${gpu_skip_reason}; CPU half ran (20 steps), comparison self-checked"
        return
    fi
    limited "$budget" "$log" bin/rpt pretrain "${flags[@]}" --out "$agree_dir/ck_${precision}_cuda" \
        --metrics "$cuda_metrics" --device cuda || rc=$?
    if [ "$rc" -ne 0 ]; then record "$step" fail $(($(now) - t0)) "CUDA run failed (rc $rc, see log)"; return; fi
    compare_and_record "$step" "$comparison" "$cpu_metrics" "$cuda_metrics" "$t0" "$log"
}

# compare_and_record STEP COMPARISON CPU_FILE CUDA_FILE T0 LOG: the two runs' metrics
# through gpu_check_report.py; the step passes when the comparison does, with its verdict.
compare_and_record() {
    local step=$1 comparison=$2 cpu=$3 cuda=$4 t0=$5 log=$6 detail
    if detail=$(python3 "$bundle/gpu_check_report.py" "$comparison" "$cpu" "$cuda" 2>>"$log" |
            tee "$data/$step.json" |
            python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["verdict"]); sys.exit(0 if d["pass"] else 1)'); then
        record "$step" pass $(($(now) - t0)) "$detail"
    else
        record "$step" fail $(($(now) - t0)) "${detail:-comparison failed}"
    fi
}

# self_check COMPARISON FILE FIELD EXPECTED_LINES LOG — without a GPU the comparison is
# checked on the CPU run alone: FILE against itself must pass, and against a copy with
# FIELD moved by 5 % (or, where it is 0, by 0.05) must fail, so it can fail.
self_check() {
    local comparison=$1 file=$2 field=$3 lines=$4 log=$5 moved="$2.moved"
    [ "$(grep -c . "$file")" -ge "$lines" ] || { echo "self-check: $file has fewer than $lines lines" >>"$log"; return 1; }
    python3 - "$file" "$field" >"$moved" <<'EOF' || return 1
import json, sys
for line in open(sys.argv[1]):
    if line.strip():
        r = json.loads(line)
        v = r.get(sys.argv[2])
        if isinstance(v, (int, float)):
            r[sys.argv[2]] = v * 1.05 if v else 0.05
        print(json.dumps(r))
EOF
    python3 "$bundle/gpu_check_report.py" "$comparison" "$file" "$file" >"$data/$comparison-self.json" 2>>"$log" &&
        python3 "$bundle/gpu_check_report.py" "$comparison" "$file" "$moved" >"$data/$comparison-moved.json" 2>>"$log" &&
        python3 -c 'import json, sys
same, moved = (json.load(open(p)) for p in sys.argv[1:3])
sys.exit(0 if same["pass"] and not moved["pass"] else 1)' "$data/$comparison-self.json" "$data/$comparison-moved.json"
}

# A dry run only exercises the commands: 10 steps of the start model are enough there.
start_steps=120
[ "$dry_run" -eq 1 ] && start_steps=10
rpt_start_flags=(--preset tiny --corpus "$agree_dir/corpus.jsonl" --tokenizer "$agree_dir/tok.json"
                 --steps "$start_steps" --batch 8 --seq 64 --lr 3e-3 --warmup 10 --eval-docs 4 --seed 1 --format-share 0.5 --log-every 40)
rpt_flags=(--corpus "$agree_dir/corpus.jsonl" --positions "$agree_dir/pos.jsonl" --steps 1 --contexts 8 --rollouts 8
           --max-new-tokens 8 --rl-seed 1 --precision f32)
step_agree_rpt() {
    local t0 log="$logs/agree-rpt.log" budget rc=0
    t0=$(now)
    budget=$(budget_for 120)
    [ -s "$agree_dir/tok.json" ] || { record agree-rpt skip 0 "no corpus and tokenizer (agree-pretrain failed)"; return; }
    # The start model: a short CPU pre-training with template examples mixed in, so that
    # some rollouts answer in format and earn rewards and the GRPO update has work to do
    # (a model that never answers gets all-zero rewards and a zero update).
    limited "$budget" "$log" bin/rpt pretrain "${rpt_start_flags[@]}" --out "$agree_dir/ck_start" --device cpu &&
        limited "$budget" "$log" bin/rpt filter --model "$agree_dir/ck_start" --corpus "$agree_dir/corpus.jsonl" \
            --out "$agree_dir/pos.jsonl" --max-docs 60 --device cpu &&
        limited "$budget" "$log" bin/rpt train --model "$agree_dir/ck_start" "${rpt_flags[@]}" \
            --out "$agree_dir/rpt_cpu" --metrics "$agree_dir/rpt_cpu.jsonl" --device cpu || rc=$?
    if [ "$rc" -ne 0 ]; then record agree-rpt fail $(($(now) - t0)) "CPU run failed (rc $rc, see log)"; return; fi
    if ! has_gpu; then
        if ! self_check compare-rpt "$agree_dir/rpt_cpu.jsonl" entropy 1 "$log"; then
            record agree-rpt fail $(($(now) - t0)) "the comparison is broken (self-check, see log)"; return
        fi
        record agree-rpt skip $(($(now) - t0)) "${gpu_skip_reason}; CPU half ran (1 step, 8 x 8), comparison self-checked"
        return
    fi
    limited "$budget" "$log" bin/rpt train --model "$agree_dir/ck_start" "${rpt_flags[@]}" \
        --out "$agree_dir/rpt_cuda" --metrics "$agree_dir/rpt_cuda.jsonl" --device cuda || rc=$?
    if [ "$rc" -ne 0 ]; then record agree-rpt fail $(($(now) - t0)) "CUDA run failed (rc $rc, see log)"; return; fi
    compare_and_record agree-rpt compare-rpt "$agree_dir/rpt_cpu.jsonl" "$agree_dir/rpt_cuda.jsonl" "$t0" "$log"
}

# ---- benchmarks: ours, then the PyTorch peer at the same shapes --------------------------
# bench NAME WANTED_SECONDS "GPU ARGS" "SMOKE ARGS": one rpt_bench command writing
# $data/NAME.json. Without a GPU the same command runs on the CPU at the smoke size, so
# its flags, its JSON and the report's tables are exercised (the step still says skip).
bench() {
    local name=$1 wanted=$2 gpu_args=$3 smoke_args=$4
    local t0 budget rc=0
    t0=$(now)
    budget=$(budget_for "$wanted")
    [ "$budget" -lt 10 ] && { record "$name" skip 0 "out of time budget"; return; }
    if ! has_gpu; then
        # shellcheck disable=SC2086 # the argument strings are word lists
        limited "$budget" "$logs/$name.log" bin/rpt_bench $smoke_args --device cpu --json "$data/$name.json" || rc=$?
        if [ "$rc" -eq 0 ]; then record "$name" skip $(($(now) - t0)) "${gpu_skip_reason}; CPU smoke run ok"
        else record "$name" fail $(($(now) - t0)) "CPU smoke run: rpt_bench ${smoke_args%% *} exit $rc (see log)"; fi
        return
    fi
    # shellcheck disable=SC2086
    limited "$budget" "$logs/$name.log" bin/rpt_bench $gpu_args --device cuda --json "$data/$name.json" || rc=$?
    if [ "$rc" -eq 0 ]; then record "$name" pass $(($(now) - t0)) "$(grep . "$logs/$name.log" | tail -n 1 | cut -c1-110)"
    else record "$name" fail $(($(now) - t0)) "rpt_bench ${gpu_args%% *} exit $rc (see log)"; fi
}

step_peer() {
    local t0 budget rc=0
    t0=$(now)
    python3 -m py_compile "$bundle/peers/torch_gpu.py" 2>>"$logs/bench-peer.log" ||
        { record bench-peer fail 0 "peers/torch_gpu.py does not compile"; return; }
    if ! has_gpu; then record bench-peer skip 0 "${gpu_skip_reason}; peers/torch_gpu.py compiles"; return; fi
    budget=$(budget_for 150)
    [ "$budget" -lt 20 ] && { record bench-peer skip 0 "out of time budget"; return; }
    local args=()
    [ -s "$data/bench-kernels.json" ] && args+=(--kernels "$data/bench-kernels.json")
    [ -s "$data/bench-training.json" ] && args+=(--training "$data/bench-training.json")
    [ -s "$data/bench-training-124m.json" ] && args+=(--training-124m "$data/bench-training-124m.json")
    [ -s "$data/bench-decode.json" ] && args+=(--decode "$data/bench-decode.json")
    PYTHONUNBUFFERED=1 limited "$budget" "$logs/bench-peer.log" python3 "$bundle/peers/torch_gpu.py" "${args[@]}" \
        --json "$data/bench-peer.json" || rc=$?
    if [ "$rc" -eq 0 ]; then record bench-peer pass $(($(now) - t0)) "PyTorch peer at the same shapes (see table)"
    else record bench-peer fail $(($(now) - t0)) "torch_gpu.py exit $rc (see log)"; fi
}

# ---- run everything --------------------------------------------------------------------------
# selected NAME CMD...: runs the step unless --only leaves it out.
selected() {
    local name=$1; shift
    if [ -n "$only" ] && [[ $only != *",$name,"* ]]; then return 0; fi
    "$@"
}
echo "gpu-check: bundle $bundle, results to $out_dir$([ "$dry_run" -eq 1 ] && echo ', DRY RUN')"
# Correctness first, then speed: when the deadline bites, benchmarks are what is skipped.
# The seconds are caps; on an H200 each step is expected to use well under its cap.
step_libs
step_probe
selected sanitizer step_sanitizer
selected ptxas step_ptxas
selected tests step_tests
selected memcheck step_sanitize memcheck '^(Cuda|KvBf16)' 100
# ^CudaAttention also selects CudaAttentionBf16 (the WMMA kernels' shared-memory tiles).
selected racecheck step_sanitize racecheck '^Cuda(Attention|SumSquares|Logsoftmax|TopkEntropy|Argmax|Rmsnorm|Embedding|Bf16Kernels)' 50
selected agree-pretrain step_agree_pretrain f32
selected agree-pretrain-bf16 step_agree_pretrain bf16
selected agree-rpt step_agree_rpt
selected bench-kernels bench bench-kernels 45 "kernels" "kernels --quick"
selected bench-training bench bench-training 30 "training --preset small --batch 8 --seq 256" \
    "training --preset tiny --batch 2 --seq 32 --warmup 0 --steps 1"
# The 124M-class Qwen2 (GPT-2 small's size) at its full context: 2 warm-up and 5 timed
# steps of 8 x 1024 tokens (about 6 TFLOP each); its MFU is read against the bf16 matmul
# ceiling measured in the same run. The dry run's smoke uses `tiny` (one CPU step of the
# 124M model takes about a minute on a 2-core machine; the preset is unit-tested).
selected bench-training-124m bench bench-training-124m 30 \
    "training --preset qwen2-124m --batch 8 --seq 1024 --warmup 2 --steps 5" \
    "training --preset tiny --batch 2 --seq 32 --warmup 0 --steps 1"
# What --recompute layer costs on one GPU (issue 15): the same 124M-class steps with and
# without recomputation, side by side, from the same initial weights.
selected bench-recompute bench bench-recompute 30 \
    "training --preset qwen2-124m --batch 8 --seq 1024 --warmup 1 --steps 3 --recompute both" \
    "training --preset tiny --batch 2 --seq 32 --warmup 0 --steps 1 --recompute both"
selected bench-decode bench bench-decode 45 "decode --preset small --batch 64 --batch 256" \
    "decode --preset tiny --batch 2 --prompt 8 --gen 4 --dtype-batch 2 --dtype-prompt 8 --dtype-gen 4 --group 2 --group-contexts 2 --group-gen 4"
selected bench-rpt-step bench bench-rpt-step 40 "rpt-step --preset small --contexts 32 --rollouts 8" \
    "rpt-step --preset tiny --contexts 2 --rollouts 2 --max-new-tokens 4 --steps 1"
selected bench-peer step_peer

# ---- report: summary, JSON, logs ----------------------------------------------------------------
cp "$work/tests.list" "$logs/" 2>/dev/null
elapsed=$(($(now) - start_s))
python3 "$bundle/gpu_check_report.py" report --steps "$steps" --data "$data" --bundle "$bundle" \
    --elapsed "$elapsed" --dry-run "$dry_run" --json "$out_dir/gpu-check.json" --summary "$out_dir/summary.txt" \
    >>"$logs/report.log" 2>&1 || echo "gpu-check: the report script failed (see report.log)" >&2
cp -r "$data" "$logs/data" 2>/dev/null
tar -czf "$out_dir/gpu-check-logs.tar.gz" -C "$work" logs 2>/dev/null
echo
# The summary is printed last, so it is what the tail of the output shows.
if [ -s "$out_dir/summary.txt" ]; then cat "$out_dir/summary.txt"; else cat "$steps"; fi
failed=$(awk -F'\t' '$2 == "fail"' "$steps" | wc -l)
[ "$failed" -eq 0 ]
