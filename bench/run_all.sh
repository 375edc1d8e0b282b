#!/usr/bin/env bash
# make bench: rpt's benchmarks side by side with the peer baselines of ../shared/anchors
# (fp32 FMA peak, OpenBLAS sgemm, the same model in PyTorch), on this machine, in one
# run. Raw numbers go to BUILD/bench/*.json; the summary prints ratios. Peers that are
# missing (no ../shared, no OpenBLAS, no PyTorch) are skipped and said so.
# Usage: bench/run_all.sh BUILD_DIR
set -euo pipefail
BUILD=${1:-build}
OUT="$BUILD/bench"
ANCHORS="$(cd "$(dirname "$0")/.." && pwd)/../shared/anchors"
mkdir -p "$OUT"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# The peers' settings (../shared/anchors/README.md). PASSIVE waiting is for PyTorch only:
# rpt's many short parallel regions would pay a thread wake-up each.
export OPENBLAS_NUM_THREADS=2 OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SKYLAKEX}
TORCH_ENV=(env OMP_WAIT_POLICY=PASSIVE)

peak=""
if [ -f "$ANCHORS/peak_fma.c" ]; then
  gcc -O3 -march=native -fopenmp "$ANCHORS/peak_fma.c" -o "$OUT/peak_fma"
  "$OUT/peak_fma" | tee "$OUT/peak_fma.txt"
  peak=$(awk '/threads=2/ {print $5; exit}' "$OUT/peak_fma.txt")
else
  echo "peer: ../shared/anchors absent, no fp32 peak measured (the matmul bench estimates its own)"
fi

echo; echo "== matmul (rpt)"
"$BUILD/rpt_bench" matmul ${peak:+--peak "$peak"} --json "$OUT/matmul.json"

if [ -f "$ANCHORS/sgemm_bench.c" ] && [ -f /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h ]; then
  echo; echo "== matmul (peer: OpenBLAS sgemm)"
  gcc -O2 "$ANCHORS/sgemm_bench.c" -I/usr/include/x86_64-linux-gnu/openblas-pthread \
      -L/usr/lib/x86_64-linux-gnu/openblas-pthread -lopenblas -lm -o "$OUT/sgemm_bench"
  "$OUT/sgemm_bench" ${peak:-0} | tee "$OUT/sgemm.txt"
else
  echo "peer: OpenBLAS sgemm skipped (needs ../shared/anchors and libopenblas-dev)"
fi

have_torch=0
if [ -f "$ANCHORS/torch_qwen2.py" ] && /usr/bin/python3 -c "import torch" 2>/dev/null; then have_torch=1; fi
[ $have_torch -eq 1 ] || echo "peer: PyTorch skipped (needs ../shared/anchors and Debian python3-torch)"

echo; echo "== training"
for preset in tiny small; do
  "$BUILD/rpt_bench" training --preset "$preset" --batch 8 --seq 256 ${peak:+--peak "$peak"} \
      --json "$OUT/training_$preset.json"
  if [ $have_torch -eq 1 ]; then
    cfg=$([ "$preset" = tiny ] && echo A || echo B)
    "${TORCH_ENV[@]}" /usr/bin/python3 "$ANCHORS/torch_qwen2.py" train --config "$cfg" > "$OUT/torch_train_$preset.json"
    python3 - "$OUT/training_$preset.json" "$OUT/torch_train_$preset.json" "$preset" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1])); peer = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
key = "tokens_per_s"
print(f"  {sys.argv[3]}: rpt {ours['tokens_per_s']:.0f} tok/s vs PyTorch {peer[key]:.0f} tok/s "
      f"-> {ours['tokens_per_s'] / peer[key]:.2f}x")
PY
  fi
done

echo; echo "== decode"
"$BUILD/rpt_bench" decode --preset small --json "$OUT/decode.json"
if [ $have_torch -eq 1 ]; then
  for b in 8 64; do
    "${TORCH_ENV[@]}" /usr/bin/python3 "$ANCHORS/torch_qwen2.py" decode --config B --batch $b > "$OUT/torch_decode_$b.json"
    python3 - "$OUT/decode.json" "$OUT/torch_decode_$b.json" $b <<'PY'
import json, sys
ours = json.load(open(sys.argv[1])); peer = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
b = int(sys.argv[3]); mine = next(r for r in ours["throughput"] if r["batch"] == b)
print(f"  batch {b}: rpt {mine['tokens_per_s']:.0f} tok/s vs PyTorch {peer['decode_tokens_per_s']:.0f} tok/s "
      f"-> {mine['tokens_per_s'] / peer['decode_tokens_per_s']:.2f}x")
PY
  done
fi
echo; echo "== one RPT step"
"$BUILD/rpt_bench" rpt-step --preset tiny --contexts 32 --rollouts 8 --json "$OUT/rpt_step.json"
echo; echo "raw results in $OUT/"
