#!/usr/bin/env bash
# Weak scaling of a pre-training step on CPU ranks: N = 1..4 ranks under mpirun, each
# with the same per-rank batch (so the global batch grows with N), one OpenMP thread per
# rank. Efficiency(N) = tokens/s(N) / (N x tokens/s(1)); 1.0 is perfect. On a machine
# with fewer cores than ranks the extra ranks share cores (--oversubscribe) and the
# efficiency shows that, not the communication cost alone. Each ZeRO setting of ZERO
# (default "0 3 3o": plain data parallelism, ZeRO-3, ZeRO-3 with --overlap-reduce) is
# measured at every rank count; efficiency is against the same setting's 1 rank.
# Usage: bench/scaling.sh BUILD_DIR [MAX_RANKS]   (writes BUILD_DIR/bench/scaling.json)
#        ZERO="1 2" bench/scaling.sh build       (other settings: LEVEL, or LEVELo overlapped)
set -euo pipefail
BUILD=$(realpath "${1:-build}")
MAX_RANKS=${2:-4}
ZERO=${ZERO:-0 3 3o}
PER_RANK_BATCH=4
SEQ=128
STEPS=8         # the first LOG_EVERY steps warm up; tokens/s is the last window's
LOG_EVERY=4
OUT="$BUILD/bench"
mkdir -p "$OUT"
if ! grep -q "distributed: MPI yes" <<<"$("$BUILD/rpt" --help 2>&1)"; then
  echo "scaling: skipped: this build has no MPI"; exit 0
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS=1
"$BUILD/rpt" data synth --out "$WORK/corpus.jsonl" --docs 400 --seed 2 >/dev/null 2>&1
"$BUILD/rpt" tokenizer train --corpus "$WORK/corpus.jsonl" --vocab 512 --out "$WORK/tok.json" >/dev/null 2>&1
echo "weak scaling, preset tiny, $PER_RANK_BATCH x $SEQ tokens per rank per step, $(getconf _NPROCESSORS_ONLN) cores"
printf '%6s %8s %12s %12s\n' ranks zero tokens/s efficiency
rows=""
for z in $ZERO; do
level=${z%o}
flags=(--zero "$level")
[ "$z" != "$level" ] && flags+=(--overlap-reduce)
base=""
for ((n = 1; n <= MAX_RANKS; n++)); do
  mpirun --oversubscribe --allow-run-as-root --mca btl self,vader --mca btl_vader_single_copy_mechanism none \
    -np $n "$BUILD/rpt" pretrain --preset tiny --corpus "$WORK/corpus.jsonl" --tokenizer "$WORK/tok.json" \
    --out "$WORK/ck$n" --steps $STEPS --batch $((PER_RANK_BATCH * n)) --seq $SEQ --eval-every 0 --eval-docs 1 \
    --log-every $LOG_EVERY --device cpu --metrics "$WORK/m$n.jsonl" "${flags[@]}" >/dev/null 2>&1
  tok_s=$(tail -1 "$WORK/m$n.jsonl" | sed -E 's/.*"tokens_per_s":([0-9.eE+-]+).*/\1/')
  [ -z "$base" ] && base=$tok_s
  eff=$(awk -v t="$tok_s" -v b="$base" -v n=$n 'BEGIN { printf "%.2f", t / (n * b) }')
  printf '%6d %8s %12.0f %12s\n' $n "$z" "$tok_s" "$eff"
  rows="$rows${rows:+,}{\"ranks\": $n, \"zero\": $level, \"overlap\": $([ "$z" != "$level" ] && echo true || echo false), \"tokens_per_s\": $tok_s, \"efficiency\": $eff}"
  rm -rf "$WORK/ck$n" "$WORK/m$n.jsonl"
done
done
echo "{\"bench\": \"weak_scaling\", \"cores\": $(getconf _NPROCESSORS_ONLN), \"per_rank_batch\": $PER_RANK_BATCH, \"seq\": $SEQ, \"rows\": [$rows]}" \
  > "$OUT/scaling.json"
echo "raw results: $OUT/scaling.json"
