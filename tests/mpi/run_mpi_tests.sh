#!/usr/bin/env bash
# Multi-rank checks of data-parallel pre-training under mpirun, on CPU ranks
# (oversubscribed: 2 cores run up to 3 ranks, one OpenMP thread each):
#   - N ranks with B/N sequences each == 1 rank with B, for N = 2, 3 (fp32 tolerance:
#     ranks sum gradients in another order, so not bit-exact);
#   - ZeRO-1, 2 and 3 == plain data parallelism (ZeRO-2/3 also over two micro-batches,
#     which they sum in another order: within tolerance); --overlap-reduce bit-identical
#     to the same level without it;
#   - a 2-rank ZeRO-1 run stopped half way resumes on 3 ranks and on 1 and matches the
#     uninterrupted run; a 2-rank ZeRO-3 one resumes on 3 ranks under ZeRO-1, a ZeRO-1 one
#     on 3 ranks under ZeRO-2;
#   - one rank failing (an error, or a NaN gradient) ends every rank, non-zero, fast;
#     --skip-nonfinite skips the NaN step instead and writes finite weights;
#   - RPT: 2 ranks with B/2 contexts == 1 rank with B; ZeRO-1, 2 and 3 == off (ranks keep
#     different numbers of groups, so ZeRO-2/3 make up rounds of zeros).
# Usage: tests/mpi/run_mpi_tests.sh BUILD_DIR   (skips, saying so, in a build without MPI)
set -u
BUILD=$(realpath "${1:-build}")
RPT=$BUILD/rpt
DIFF=$BUILD/rpt_st_diff
if ! grep -q "distributed: MPI yes" <<<"$("$RPT" --help 2>&1)"; then
  echo "mpi: SKIPPED: this build has no MPI (install libopenmpi-dev, rebuild with MPI=1)"
  exit 0
fi
if ! command -v mpirun >/dev/null; then
  echo "mpi: SKIPPED: mpirun not found (apt-get install openmpi-bin)"
  exit 0
fi

# Tolerance on parameters after STEPS steps at LR: one AdamW step moves an element by at
# most about LR (1e-3); summation-order noise moves it by ~1e-5 here. 1e-4 = 10% of one step.
TOL=1e-4
STEPS=6
FAIL_TIMEOUT=60   # seconds before a hung failure test is killed (and fails)
FAIL_FAST=30      # a failure must end every rank within this many seconds

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
export OMP_NUM_THREADS=1
# Open MPI as root in CI, more ranks than cores, no warnings about missing fabrics.
MPIRUN=(mpirun --oversubscribe --allow-run-as-root --mca btl self,vader --mca btl_vader_single_copy_mechanism none)
passed=0
failed=0
ok()  { passed=$((passed + 1)); echo "  ok   $1"; }
bad() { failed=$((failed + 1)); echo "  FAIL $1"; [ -n "${2:-}" ] && sed 's/^/       /' <<<"$2" | tail -20; }

# run NAME NP ARGS...: pretrain on NP ranks (NP=1: a plain run without mpirun).
run() {
  local name=$1 np=$2; shift 2
  local out
  if [ "$np" -eq 1 ]; then out=$("$RPT" pretrain "${COMMON[@]}" "$@" 2>&1)
  else out=$("${MPIRUN[@]}" -np "$np" "$RPT" pretrain "${COMMON[@]}" "$@" 2>&1); fi
  if [ $? -eq 0 ]; then ok "$name"; else bad "$name" "$out"; fi
}
# same NAME A B: model.safetensors of checkpoints A and B agree within TOL.
same() {
  local out
  if out=$("$DIFF" "$2/model.safetensors" "$3/model.safetensors" "$TOL" 2>&1); then ok "$1: $out"
  else bad "$1" "$out"; fi
}

start=$(date +%s)
echo "mpi: setup"
"$RPT" data synth --out corpus.jsonl --docs 400 --seed 2 >/dev/null 2>&1 || bad "data synth"
"$RPT" tokenizer train --corpus corpus.jsonl --vocab 512 --out tok.json >/dev/null 2>&1 || bad "tokenizer"
# Training flags of every run; fresh runs add FRESH, resumed ones --resume.
COMMON=(--corpus corpus.jsonl --steps $STEPS --batch 6 --seq 64 --eval-docs 6 --device cpu --lr 1e-3 --warmup 2
        --weight-decay 0.1 --grad-clip 0.5 --log-every 100)
FRESH=(--preset tiny --tokenizer tok.json)

echo "mpi: N ranks x B/N == 1 rank x B"
run "1 rank, B=6" 1 "${FRESH[@]}" --out r1
run "2 ranks, B=6" 2 "${FRESH[@]}" --out r2 --metrics r2.jsonl
run "3 ranks, B=6" 3 "${FRESH[@]}" --out r3
same "2 ranks == 1 rank" r1 r2
same "3 ranks == 1 rank" r1 r3
[ "$(wc -l < r2.jsonl)" -eq $STEPS ] && ok "rank 0 alone writes metrics ($STEPS lines)" || bad "metrics lines" "$(cat r2.jsonl)"
expect_batch=$("${MPIRUN[@]}" -np 4 "$RPT" pretrain "${COMMON[@]}" "${FRESH[@]}" --out r4 2>&1)
grep -q "not divisible by the 4 ranks" <<<"$expect_batch" && ok "B=6 on 4 ranks: clear error" \
  || bad "B=6 on 4 ranks" "$expect_batch"

echo "mpi: ZeRO-1"
run "2 ranks, ZeRO-1 (a bare --zero)" 2 "${FRESH[@]}" --out z2 --zero
run "3 ranks, ZeRO-1" 3 "${FRESH[@]}" --out z3 --zero 1
same "ZeRO-1 == plain, 2 ranks" r2 z2
same "ZeRO-1 == plain, 3 ranks" r3 z3
if out=$("$DIFF" r2/optimizer.safetensors z2/optimizer.safetensors "$TOL" 2>&1); then
  ok "ZeRO-1 checkpoint holds the full moments: $out"
else bad "ZeRO-1 moments" "$out"; fi

echo "mpi: ZeRO-2 and ZeRO-3, reductions overlapped with the backward"
run "2 ranks, ZeRO-2" 2 "${FRESH[@]}" --out z2_2 --zero 2
run "2 ranks, ZeRO-2, overlapped" 2 "${FRESH[@]}" --out z2_2o --zero 2 --overlap-reduce
# Two micro-batches per rank: ZeRO-3 reduces each into the shards (ranks, then micro-batches).
run "3 ranks, 2 micro-batches" 3 "${FRESH[@]}" --out r3a --grad-accum 2
run "3 ranks, ZeRO-3, 2 micro-batches" 3 "${FRESH[@]}" --out z3_3 --zero 3 --grad-accum 2
run "3 ranks, ZeRO-3, 2 micro-batches, overlapped" 3 "${FRESH[@]}" --out z3_3o --zero 3 --grad-accum 2 --overlap-reduce
same "ZeRO-2 == plain, 2 ranks" r2 z2_2
same "ZeRO-3 == plain, 3 ranks, 2 micro-batches" r3a z3_3
# Same collectives in the same bucket order on the communication thread: the same bits.
for pair in "z2_2 z2_2o" "z3_3 z3_3o"; do
  set -- $pair
  cmp -s "$1/model.safetensors" "$2/model.safetensors" && cmp -s "$1/optimizer.safetensors" "$2/optimizer.safetensors" \
    && ok "overlapped == unoverlapped, bit for bit ($2)" || bad "overlapped $2 differs from $1"
done

echo "mpi: resume a 2-rank ZeRO-1 run on other rank counts"
run "2 ranks, ZeRO-1, stop at step 3" 2 "${FRESH[@]}" --out zpart --zero --stop-at 3
cp -r zpart zres3 && cp -r zpart zres1
run "resume on 3 ranks (ZeRO-1)" 3 --resume zres3 --out zres3 --zero
run "resume on 1 rank" 1 --resume zres1 --out zres1
same "resumed on 3 == uninterrupted" z2 zres3
same "resumed on 1 == uninterrupted" z2 zres1
grep -q '"step": 6' zres3/trainer_state.json && ok "resumed run reached step 6" || bad "resumed step"
run "2 ranks, ZeRO-3, stop at step 3" 2 "${FRESH[@]}" --out z3part --zero 3 --stop-at 3
cp -r z3part z3res && cp -r zpart z2res
run "resume the ZeRO-3 run on 3 ranks under ZeRO-1" 3 --resume z3res --out z3res --zero 1
run "resume the ZeRO-1 run on 3 ranks under ZeRO-2, overlapped" 3 --resume z2res --out z2res --zero 2 --overlap-reduce
same "ZeRO-3 on 2 -> ZeRO-1 on 3 == uninterrupted" z2 z3res
same "ZeRO-1 on 2 -> ZeRO-2 on 3 == uninterrupted" z2 z2res

echo "mpi: failures end every rank"
# expect_abort NAME NEEDLE ARGS...: non-zero, not timed out, fast, the failing rank's message.
expect_abort() {
  local name=$1 needle=$2; shift 2
  local t0 rc err secs
  t0=$(date +%s)
  err=$(timeout $FAIL_TIMEOUT "${MPIRUN[@]}" -np 2 "$RPT" pretrain "${COMMON[@]}" "${FRESH[@]}" "$@" 2>&1)
  rc=$?
  secs=$(( $(date +%s) - t0 ))
  if [ $rc -eq 0 ]; then bad "$name (exit 0)" "$err"; return; fi
  if [ $rc -eq 124 ]; then bad "$name (hung: killed after ${FAIL_TIMEOUT}s)" "$err"; return; fi
  if [ $secs -gt $FAIL_FAST ]; then bad "$name (took ${secs}s)" "$err"; return; fi
  if ! grep -q -- "$needle" <<<"$err"; then bad "$name (message lacks '$needle')" "$err"; return; fi
  ok "$name (exit $rc after ${secs}s)"
}
expect_abort "rank 1 fails at step 2" "rpt: error: rank 1: step 2: failure injected" --out f1 --debug-fail-at 1:2
expect_abort "rank 0 fails at step 2" "rpt: error: rank 0: step 2: failure injected" --out f0 --debug-fail-at 0:2
[ ! -e f1 ] && [ ! -e f0 ] && ok "no checkpoint after a failure" || bad "checkpoint written after a failure"
mkdir -p foreign && echo "chapter 1" > foreign/thesis.tex
expect_abort "--out onto a directory rpt did not write: refused, every rank ends" "thesis.tex" --out foreign
[ "$(ls foreign)" = thesis.tex ] && [ "$(cat foreign/thesis.tex)" = "chapter 1" ] && ok "  ... and it is left as it was" \
  || bad "the foreign directory was changed" "$(ls -la foreign)"
expect_abort "NaN gradient on rank 1 stops with the step" "step 3: gradient norm is nan" --out fnan \
  --debug-nan-at 1:3 --checkpoint-every 2
if [ -d fnan ] && grep -q '"step": 2' fnan/trainer_state.json && "$DIFF" fnan/model.safetensors fnan/model.safetensors 0 >/dev/null; then
  ok "the last checkpoint before the NaN (step 2) is finite"
else bad "checkpoint before the NaN"; fi
# ZeRO-2 holds no gradient buffer: the NaN goes into the rank's gradient shard.
expect_abort "NaN gradient on rank 1 under ZeRO-2 stops with the step" "step 3: gradient norm is nan" --out fnan2 \
  --debug-nan-at 1:3 --zero 2
run "--skip-nonfinite skips the NaN step" 2 "${FRESH[@]}" --out skip --debug-nan-at 1:3 --skip-nonfinite --metrics skip.jsonl
grep -q '"skipped":true' skip.jsonl && ok "metrics mark step 3 skipped" || bad "skipped step not in metrics" "$(cat skip.jsonl)"
if out=$("$DIFF" skip/model.safetensors skip/model.safetensors 0 2>&1); then ok "weights after a skipped step are finite"
else bad "weights after a skipped step" "$out"; fi

echo "mpi: RPT, N ranks x B/N contexts == 1 rank x B"
# Groups stay on one rank and the sampler is keyed by global context ids, so the ranks
# draw the rollouts one rank would (up to summation-order noise in the update).
# A start checkpoint that answers in the template often enough for non-uniform groups
# (the start model of gpu-check's agree-rpt: 120 steps of 8 x 64 tokens, a minute on two
# cores where 200 steps of 8 x 128 took eight).
"$RPT" pretrain --preset tiny --tokenizer tok.json --corpus corpus.jsonl --out base --steps 120 --batch 8 --seq 64 \
  --format-share 0.5 --lr 3e-3 --warmup 10 --eval-docs 4 --device cpu --log-every 1000 >/dev/null 2>&1 \
  || bad "pretrain the RPT start checkpoint"
"$RPT" filter --model base --corpus corpus.jsonl --out pos.jsonl --max-docs 40 --device cpu >/dev/null 2>&1 \
  || bad "filter for RPT"
RPT_COMMON=(--model base --corpus corpus.jsonl --positions pos.jsonl --steps 2 --contexts 8 --rollouts 8
            --max-new-tokens 6 --lr 1e-3 --device cpu --log-every 100)
rpt_run() {
  local name=$1 np=$2; shift 2
  local out
  if [ "$np" -eq 1 ]; then out=$("$RPT" train "${RPT_COMMON[@]}" "$@" 2>&1)
  else out=$("${MPIRUN[@]}" -np "$np" "$RPT" train "${RPT_COMMON[@]}" "$@" 2>&1); fi
  if [ $? -eq 0 ]; then ok "$name"; else bad "$name" "$out"; fi
}
rpt_run "RPT, 1 rank, 8 contexts" 1 --out q1 --metrics q1.jsonl
rpt_run "RPT, 2 ranks, 4 contexts each" 2 --out q2 --metrics q2.jsonl
rpt_run "RPT, 2 ranks, ZeRO-1" 2 --out qz --zero 1
# Small micro-batches: the ranks, which keep different numbers of groups, run different
# numbers of backwards, and ZeRO-2/3 reduce in each.
rpt_run "RPT, 2 ranks, ZeRO-2, micro-batches of 4" 2 --out qz2 --zero 2 --micro-batch 4
rpt_run "RPT, 2 ranks, ZeRO-3, micro-batches of 4, overlapped" 2 --out qz3 --zero 3 --overlap-reduce --micro-batch 4
if "$DIFF" base/model.safetensors q1/model.safetensors 0 >/dev/null 2>&1; then
  bad "RPT did not change the model (all groups uniform?)" "$(cat q1.jsonl)"
else ok "RPT updated the model"; fi
# GRPO gradients are small (a few non-uniform groups), and where |g| is near AdamW's eps
# the step g / (|g| + eps) turns summation-order noise (1 and 2 ranks reduce in other
# orders, and their micro-batch shapes pick other matmul paths) into up to one step of lr
# per step. So: at most 0.01% of the values beyond 30% of a step, none beyond the two
# steps' 2 lr. A wrong gradient moves most of the 0.9M parameters by about lr.
same_rpt() {
  local out
  if out=$("$DIFF" "$2/model.safetensors" "$3/model.safetensors" 3e-4 2e-3 1e-4 2>&1); then ok "$1: $out"
  else bad "$1" "$out"; fi
}
same_rpt "RPT: 2 ranks == 1 rank" q1 q2
# The comparison can fail: two RPT steps against none are told apart.
if out=$("$DIFF" base/model.safetensors q1/model.safetensors 3e-4 2e-3 1e-4 2>&1); then
  bad "the RPT comparison cannot tell two steps from none" "$out"
else ok "the RPT comparison tells two steps from none: $out"; fi
same_rpt "RPT: ZeRO-1 == plain" q2 qz
same_rpt "RPT: ZeRO-2 == plain" q2 qz2
same_rpt "RPT: ZeRO-3 (overlapped) == plain" q2 qz3
# Levels 2 and 3 reduce the same bucket sums in the same order (ZeRO-1 sums the
# micro-batches first: within tolerance above).
cmp -s qz2/model.safetensors qz3/model.safetensors && ok "RPT: ZeRO-3 overlapped == ZeRO-2, bit for bit" \
  || bad "RPT: ZeRO-3 differs from ZeRO-2"
if python3 -c "import json,sys; a=[json.loads(l)['reward_mean'] for l in open('q1.jsonl')]; b=[json.loads(l)['reward_mean'] for l in open('q2.jsonl')]; sys.exit(0 if a==b else 1)"; then
  ok "RPT: the same rewards on 1 and 2 ranks"
else bad "RPT rewards differ" "$(cat q1.jsonl q2.jsonl)"; fi

echo "mpi: $passed passed, $failed failed ($(( $(date +%s) - start ))s)"
[ "$failed" -eq 0 ]
