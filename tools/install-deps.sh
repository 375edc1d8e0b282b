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
