#!/usr/bin/env bash
# sass-check.sh BUILD_DIR [ARCHS] [LIST] — proof from the compiled objects that the
# kernels which must use tensor cores do: disassembles each object named in LIST
# (default tools/tensor-core-kernels.txt, which says the format) with `cuobjdump -sass`
# and counts HMMA/HGMMA instructions per kernel and architecture (ARCHS: the build's
# CUDA_ARCH, default 80,90). Prints one row per (object, arch, kernel) with the count,
# then one verdict line per entry; exits 1 when an entry fails, 2 when cuobjdump (or the
# nvdisasm it runs) is missing. `sass-check.sh --find-tools` only reports where they are.
#
# cuobjdump comes from $CUOBJDUMP, PATH, $CUDA_HOME/bin, or the NVIDIA wheels
# (nvidia-cuda-cuobjdump, nvidia-cuda-nvdisasm; tools/install-deps.sh installs them when
# the CUDA toolkit here has none).
set -euo pipefail

# Prints the directory holding cuobjdump and nvdisasm, or fails.
find_tools() {
    local dirs=() d
    [ -n "${CUOBJDUMP:-}" ] && dirs+=("$(dirname "$CUOBJDUMP")")
    if command -v cuobjdump >/dev/null 2>&1; then dirs+=("$(dirname "$(command -v cuobjdump)")"); fi
    dirs+=("${CUDA_HOME:-/usr/local/cuda}/bin")
    if command -v python3 >/dev/null 2>&1; then
        while IFS= read -r d; do dirs+=("$d"); done < <(python3 -c '
import glob, os
try:
    import nvidia
except ImportError:
    raise SystemExit
for p in nvidia.__path__:
    for exe in glob.glob(os.path.join(p, "*", "bin", "cuobjdump")):
        print(os.path.dirname(exe))' 2>/dev/null || true)
    fi
    for d in "${dirs[@]}"; do
        if [ -x "$d/cuobjdump" ] && { [ -x "$d/nvdisasm" ] || command -v nvdisasm >/dev/null 2>&1; }; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

if [ "${1:-}" = "--find-tools" ]; then
    find_tools
    exit $?
fi

build_dir="${1:-build}"
archs="${2:-80,90}"
list="${3:-tools/tensor-core-kernels.txt}"

tools_dir=$(find_tools) || {
    echo "sass-check: cuobjdump/nvdisasm not found (install: python3 -m pip install nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm, or run tools/install-deps.sh)" >&2
    exit 2
}
export PATH="$tools_dir:$PATH"

demangle() { if command -v c++filt >/dev/null 2>&1; then c++filt; else cat; fi; }

# Tab-separated rows: arch, mma count, mangled kernel name, for every kernel of OBJECT.
sass_counts() {
    cuobjdump -sass "$1" | awk '
        /code for sm_/ { arch = $NF; next }
        /Function : / { fn = $3; key = arch "\t" fn; if (!(key in count)) { count[key] = 0; order[n++] = key }; next }
        /[^A-Z0-9_.]H(G)?MMA[^A-Z]/ { if (fn != "") count[arch "\t" fn]++ }
        END { for (i = 0; i < n; i++) { split(order[i], k, "\t"); printf "%s\t%d\t%s\n", k[1], count[order[i]], k[2] } }
    '
}

printf '%-32s %-6s %6s  %s\n' object arch mma kernel
failed=0
verdicts=()
while read -r object pattern mode _rest; do
    case "$object" in ''|'#'*) continue ;; esac
    source="${object%.o}.cu"
    if [ ! -f "$source" ]; then
        verdicts+=("skip  $object: no $source in this tree")
        continue
    fi
    if [ ! -f "$build_dir/$object" ]; then
        verdicts+=("FAIL  $object: not built"); failed=1
        continue
    fi
    rows=$(sass_counts "$build_dir/$object")
    entry_ok=1
    why=""
    for a in ${archs//,/ }; do
        arch="sm_$a"
        matching=$(printf '%s\n' "$rows" | awk -F'\t' -v arch="$arch" -v re="$pattern" '$1 == arch && $3 ~ re')
        total=$(printf '%s\n' "$matching" | grep -c . || true)
        with_mma=$(printf '%s\n' "$matching" | awk -F'\t' '$2 > 0' | grep -c . || true)
        while IFS=$'\t' read -r ar cnt fn; do
            [ -z "$fn" ] && continue
            printf '%-32s %-6s %6s  %s\n' "$object" "$ar" "$cnt" "$(printf '%s\n' "$fn" | demangle | cut -c1-90)"
        done <<< "$matching"
        case "$mode" in
            all) [ "$total" -gt 0 ] && [ "$with_mma" -eq "$total" ] || { entry_ok=0; why+=" $arch: $with_mma of $total matching kernels use tensor cores;"; } ;;
            any) [ "$with_mma" -gt 0 ] || { entry_ok=0; why+=" $arch: none of $total matching kernels uses tensor cores;"; } ;;
            none) [ "$with_mma" -eq 0 ] && [ "$total" -gt 0 ] || { entry_ok=0; why+=" $arch: $with_mma of $total matching kernels have HMMA (control expects none);"; } ;;
            *) entry_ok=0; why+=" unknown mode '$mode';" ;;
        esac
    done
    if [ "$entry_ok" -eq 1 ]; then verdicts+=("ok    $object ($pattern, $mode) on sm_${archs//,/, sm_}")
    else verdicts+=("FAIL  $object ($pattern, $mode):$why"); failed=1; fi
done < "$list"

printf '%s\n' "${verdicts[@]}"
if [ "$failed" -ne 0 ]; then
    echo "sass-check: FAILED, kernels that must use tensor cores do not (see above)" >&2
    exit 1
fi
echo "sass-check: tensor-core instructions where required (${#verdicts[@]} entries, archs $archs)"
