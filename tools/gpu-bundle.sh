#!/usr/bin/env bash
# gpu-bundle.sh OBJ_DIR BUNDLE_DIR [CU_OBJ_DIR] — assembles the GPU bundle from a PORTABLE=1 build
# (`make gpu-bundle` calls it): a folder that runs every GPU check on another machine
# with nothing compiled or installed there.
#
#   bin.tar.gz      bin/ with rpt, rpt_tests, rpt_bench (sm_80 + sm_90, x86-64-v3 host
#                   code, cudart static, rpath $ORIGIN/../lib), packed: their CUDA
#                   fatbins are most of their size and compress 4:1; gpu-check.sh
#                   unpacks it next to lib/ on its first run
#   lib/            their non-CUDA shared libraries (fmt, pcre2, utf8proc, OpenMP, ...)
#   lib/compat/     this machine's libstdc++/libgcc_s, used only where the GPU machine's
#                   are older (gpu-check.sh decides)
#   tests/fixtures  what the tests read (they run with the bundle as working directory)
#   peers/          the PyTorch peer of the benchmarks
#   ptxas/          the ptxas reports of the build and the script that reads them, and
#                   the build's tensor-core check (sass-check.txt)
#   gpu-check.sh, gpu_check_report.py, MANIFEST.json
# CU_OBJ_DIR holds the CUDA objects and their ptxas logs when they are another build's
# (the Makefile shares them; default OBJ_DIR).
# cuBLAS/cuBLASLt (hundreds of MiB) stay out: gpu-check.sh finds them on the GPU machine.
set -euo pipefail

obj=${1:?usage: gpu-bundle.sh OBJ_DIR BUNDLE_DIR}
bundle=${2:?usage: gpu-bundle.sh OBJ_DIR BUNDLE_DIR}
cu_obj=${3:-$obj}
readonly max_mib=48
root=$(cd "$(dirname "$0")/.." && pwd)
binaries=(rpt rpt_tests rpt_bench)

# Built into a temporary sibling and renamed, so a failed run leaves the old bundle whole.
tmp="$bundle.tmp-$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/{bin,lib/compat,ptxas/kernels/cuda,peers,tests}

# Debug info would double the size; the symbols stay for backtraces.
for b in "${binaries[@]}"; do
    strip --strip-debug -o "$tmp/bin/$b" "$obj/$b"
done

# ---- shared libraries: everything the binaries take that is neither the C/C++ runtime
# of the system nor a CUDA library found on the GPU machine.
is_runtime() { [[ $1 =~ ^(linux-vdso|libc|libm|libdl|libpthread|librt|ld-linux[^.]*)\.so ]]; }
is_cxx_runtime() { [[ $1 =~ ^(libstdc\+\+|libgcc_s)\.so ]]; }
is_cuda() { [[ $1 =~ ^lib(cublas|cublasLt|cudart|cuda|nvidia-ml)\.so ]]; }
declare -A copied=()
for b in "${binaries[@]}"; do
    while read -r name path; do
        [ -n "$path" ] && [ -f "$path" ] || continue
        is_runtime "$name" && continue
        is_cuda "$name" && continue
        [ -n "${copied[$name]:-}" ] && continue
        if is_cxx_runtime "$name"; then cp -L "$path" "$tmp/lib/compat/$name"
        else cp -L "$path" "$tmp/lib/$name"; fi
        copied[$name]=1
    done < <(ldd "$tmp/bin/$b" | awk '$2 == "=>" {print $1, $3}')
    if ldd "$tmp/bin/$b" | grep -q "not found"; then
        echo "gpu-bundle: $b has unresolved libraries here:" >&2
        ldd "$tmp/bin/$b" | grep "not found" >&2
        exit 1
    fi
done

# ---- data, scripts, reports
cp -r "$root/tests/fixtures" "$tmp/tests/fixtures"
cp "$root/bench/peers/torch_gpu.py" "$tmp/peers/"
cp "$root/tools/gpu-check.sh" "$root/tools/gpu_check_report.py" "$tmp/"
cp "$root/tools/ptxas-check.sh" "$tmp/ptxas/"
cp "$cu_obj"/kernels/cuda/*.ptxas.log "$tmp/ptxas/kernels/cuda/"
[ -f "$obj/ptxas-check.txt" ] && cp "$obj/ptxas-check.txt" "$tmp/ptxas/"
[ -f "$obj/sass-check.txt" ] && cp "$obj/sass-check.txt" "$tmp/ptxas/"  # the tensor-core proof (HMMA counts)

binaries_listed=$(ls "$tmp/bin" | tr '\n' ' ')
tar -C "$tmp" -czf "$tmp/bin.tar.gz" bin
rm -rf "$tmp/bin"

commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD 2>/dev/null || commit="$commit+local-changes"
size_kib=$(du -sk "$tmp" | cut -f1)
cat >"$tmp/MANIFEST.json" <<EOF
{
  "commit": "$commit",
  "built": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "build_host": "$(uname -srm)",
  "cuda_arch": "sm_80 sm_90",
  "host_isa": "x86-64-v3",
  "mpi": false,
  "nvcc": "$(nvcc --version 2>/dev/null | tail -n 1)",
  "libraries": "$(ls "$tmp/lib" "$tmp/lib/compat" | grep '\.so' | tr '\n' ' ')",
  "size_kib": $size_kib
}
EOF

size_mib=$(( (size_kib + 1023) / 1024 ))
if [ "$size_mib" -gt "$max_mib" ]; then
    echo "gpu-bundle: $tmp is $size_mib MiB, over the $max_mib MiB that travels with the working tree:" >&2
    du -sh "$tmp"/* >&2
    exit 1
fi
rm -rf "$bundle"
mv "$tmp" "$bundle"
trap - EXIT
echo "gpu-bundle: $bundle ($size_mib MiB, commit $commit): $binaries_listed(packed in bin.tar.gz) + ${#copied[@]} libraries"
