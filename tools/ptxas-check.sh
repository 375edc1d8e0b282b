#!/usr/bin/env bash
# ptxas-check.sh BUILD_DIR — per-kernel register, static shared memory and spill report
# from the ptxas logs the Makefile keeps next to each CUDA object
# (BUILD_DIR/kernels/cuda/*.ptxas.log, written by nvcc -Xptxas -v). Prints one row per
# (kernel, architecture) (the build keeps it as BUILD_DIR/ptxas-check.txt); exits non-zero
# when any kernel spills (spill stores or loads > 0 bytes), or when there are no logs to
# read. smem is the static shared memory ptxas reports; dynamic shared memory (sized at
# launch) is not in it.
set -euo pipefail

build_dir="${1:-build}"
shopt -s nullglob
logs=("$build_dir"/kernels/cuda/*.ptxas.log)
if [ ${#logs[@]} -eq 0 ]; then
    echo "ptxas-check: no ptxas logs under $build_dir/kernels/cuda (build the CUDA objects first)" >&2
    exit 2
fi

demangle() { if command -v c++filt >/dev/null 2>&1; then c++filt; else cat; fi; }

# One tab-separated row per entry function: file, arch, registers, smem, stack, spill stores, spill loads, name.
rows=$(for log in "${logs[@]}"; do
    awk -v file="$(basename "$log" .ptxas.log)" '
        /Compiling entry function/ {
            match($0, /function '\''[^'\'']+'\''/); fn = substr($0, RSTART + 10, RLENGTH - 11)
            match($0, /for '\''sm_[0-9a-z]+'\''/); arch = substr($0, RSTART + 5, RLENGTH - 6)
            in_entry = 1; stack = 0; stores = 0; loads = 0; next
        }
        in_entry && /bytes stack frame/ {
            for (i = 1; i <= NF; i++) {
                if ($(i + 1) == "bytes" && $(i + 2) == "stack") stack = $i
                if ($(i + 1) == "bytes" && $(i + 2) == "spill" && $(i + 3) ~ /^stores/) stores = $i
                if ($(i + 1) == "bytes" && $(i + 2) == "spill" && $(i + 3) ~ /^loads/) loads = $i
            }
            next
        }
        in_entry && /Used [0-9]+ registers/ {
            match($0, /Used [0-9]+ registers/); regs = substr($0, RSTART + 5, RLENGTH - 15)
            smem = 0
            if (match($0, /[0-9]+ bytes smem/)) smem = substr($0, RSTART, RLENGTH - 11)
            printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", file, arch, regs, smem, stack, stores, loads, fn
            in_entry = 0
        }
    ' "$log"
done)

if [ -z "$rows" ]; then
    echo "ptxas-check: the logs hold no kernel entries (were they built with -Xptxas -v?)" >&2
    exit 2
fi

printf '%-14s %-6s %5s %6s %6s %7s %7s  %s\n' file arch regs smem stack spill_st spill_ld kernel
failed=0
while IFS=$'\t' read -r file arch regs smem stack stores loads fn; do
    name=$(printf '%s\n' "$fn" | demangle | sed -E 's/\(anonymous namespace\):://g; s/rpt::cuda:://g')
    mark=""
    if [ "$stores" -gt 0 ] || [ "$loads" -gt 0 ]; then mark="  <-- SPILLS"; failed=1; fi
    printf '%-14s %-6s %5s %6s %6s %7s %7s  %s%s\n' "$file" "$arch" "$regs" "$smem" "$stack" "$stores" "$loads" \
        "${name:0:90}" "$mark"
done <<< "$rows"

if [ "$failed" -ne 0 ]; then
    echo "ptxas-check: FAILED, some kernels spill registers" >&2
    exit 1
fi
echo "ptxas-check: no kernel spills ($(printf '%s\n' "$rows" | wc -l) kernel/arch entries)"
