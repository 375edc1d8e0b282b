#!/usr/bin/env bash
# The NCCL backend on whatever GPUs this machine has (called by tools/gpu-check.sh; one
# GPU is enough to exercise the MPI bootstrap of NCCL and every collective):
#   1. rpt_bench comm on 1 rank and on one rank per GPU (when there are several);
#   2. a 1-rank ZeRO-1 pre-training run over NCCL matches the plain GPU run;
#   3. with 2+ GPUs, 2 ranks x B/2 match 1 rank x B.
# Usage: tests/mpi/nccl_check.sh BUILD_DIR   (exit 0 = pass; says SKIPPED without NCCL)
set -u
BUILD=$(realpath "${1:-build}")
RPT=$BUILD/rpt
if ! grep -q "NCCL yes" <<<"$("$RPT" --help 2>&1)"; then
  echo "nccl: SKIPPED: this build has no NCCL"; exit 0
fi
command -v mpirun >/dev/null || { echo "nccl: SKIPPED: no mpirun"; exit 0; }
gpus=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | wc -l)
TOL=1e-4
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
MPIRUN=(timeout 300 mpirun --oversubscribe --allow-run-as-root --mca btl self,vader
        --mca btl_vader_single_copy_mechanism none)
fail=0
step() { echo "== nccl: $*"; }
check() { if "$@"; then echo "  ok"; else echo "  FAILED: $*"; fail=1; fi; }

step "bench on 1 rank"
check "${MPIRUN[@]}" -np 1 "$BUILD/rpt_bench" comm --device cuda --max-bytes $((64 << 20)) --json comm1.json
if [ "$gpus" -ge 2 ]; then
  step "bench on $gpus ranks"
  check "${MPIRUN[@]}" -np "$gpus" "$BUILD/rpt_bench" comm --device cuda --max-bytes $((256 << 20)) --json commN.json
fi

"$RPT" data synth --out corpus.jsonl --docs 400 --seed 2 >/dev/null 2>&1
"$RPT" tokenizer train --corpus corpus.jsonl --vocab 512 --out tok.json >/dev/null 2>&1
A=(pretrain --preset tiny --corpus corpus.jsonl --tokenizer tok.json --steps 4 --batch 8 --seq 64 --eval-docs 8
   --device cuda --lr 1e-3 --warmup 1)
step "1-rank ZeRO-1 over NCCL == plain GPU run"
check "$RPT" "${A[@]}" --out plain
check "${MPIRUN[@]}" -np 1 "$RPT" "${A[@]}" --out nccl1 --zero
check "$BUILD/rpt_st_diff" plain/model.safetensors nccl1/model.safetensors $TOL
if [ "$gpus" -ge 2 ]; then
  step "2 ranks x B/2 == 1 rank x B (NCCL, ZeRO-1)"
  check "${MPIRUN[@]}" -np 2 "$RPT" "${A[@]}" --out nccl2 --zero
  check "$BUILD/rpt_st_diff" plain/model.safetensors nccl2/model.safetensors $TOL
fi
[ $fail -eq 0 ] && echo "nccl: OK" || echo "nccl: FAILED"
exit $fail
