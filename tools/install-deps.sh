#!/usr/bin/env bash
# Installs the Debian packages rpt needs, only those that are missing. Idempotent.
set -euo pipefail

PACKAGES=(
  g++ make
  libfmt-dev          # formatting
  nlohmann-json3-dev  # JSON: config.json, tokenizer.json, safetensors headers, JSONL
  libcli11-dev        # command-line parsing
  libpcre2-dev        # the Qwen2 pre-tokenizer regex (Unicode classes)
  libutf8proc-dev     # NFC normalisation
  libgtest-dev        # unit tests
  gnuplot-nox         # demo plots
  libopenmpi-dev openmpi-bin  # MPI: multi-rank training (mpirun), NCCL bootstrap
)

# cuobjdump and nvdisasm for the build's tensor-core check (tools/sass-check.sh), from the
# NVIDIA wheels when the CUDA toolkit here has none (one installed from wheels, as on this
# project's machines, lacks them). Pinned to versions seen reading this toolkit's
# sm_80/sm_90 objects.
install_sass_tools() {
  command -v nvcc >/dev/null 2>&1 || return 0
  bash "$(dirname "${BASH_SOURCE[0]}")/sass-check.sh" --find-tools >/dev/null 2>&1 && return 0
  echo "install-deps: installing cuobjdump and nvdisasm (NVIDIA wheels)"
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore \
      nvidia-cuda-cuobjdump==13.2.51 nvidia-cuda-nvdisasm==13.2.86 ||
    echo "install-deps: cuobjdump/nvdisasm not installed: the build's tensor-core check will fail" >&2
}
install_sass_tools

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
