#!/usr/bin/env bash
# Soak test of resume: `rpt pretrain` and `rpt train` are killed with SIGKILL at random
# moments, half of them while a checkpoint is being written, and each time continued
# with `--resume CK --out CK` alone (the run's flags are not repeated). Checks:
#   - after every kill, the checkpoint (when there is one) is whole and loadable;
#   - every resumed run ends with model, optimizer (and KL reference) bit-identical to
#     the uninterrupted run;
#   - no temporary directory (CK.tmp-PID, CK.old-PID) is left after the final resume.
# Usage: tests/soak/soak.sh RPT_BINARY [KILLS_PER_COMMAND] [PRESET]
#   KILLS_PER_COMMAND default 20 (`make soak`); `make test` runs 3. PRESET: tiny | small.
set -u
RPT=$(realpath "${1:-build/rpt}")
KILLS=${2:-20}
PRESET=${3:-tiny}
# One thread per process: the model is tiny, and spinning OpenMP threads on a loaded
# machine make every life slow.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
start=$(date +%s)

fail() { echo "  FAIL $1"; [ -n "${2:-}" ] && sed 's/^/       /' <<<"$2" | tail -20; exit 1; }
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
step_of() { grep -o '"step": [0-9]*' "$1/trainer_state.json" | head -1 | grep -o '[0-9]*$'; }

# A checkpoint left by a kill must be whole: every file present, the weights loadable
# (`rpt generate` reads config, weights and tokenizer). The next resume loads the rest.
check_loadable() {
  local ck=$1; shift
  [ -d "$ck" ] || return 0
  for f in config.json model.safetensors tokenizer.json optimizer.safetensors trainer_state.json "$@"; do
    [ -f "$ck/$f" ] || fail "after a kill, $ck lacks $f"
  done
  "$RPT" generate --model "$ck" --prompt "Problem:" --greedy --max-new-tokens 1 --device cpu >/dev/null 2>gen.err \
    || fail "after a kill, $ck does not load" "$(cat gen.err)"
}

# soak NAME COMMAND STEPS EXTRA_FILES -- FLAGS...: the uninterrupted run, then rounds of
# interrupted runs until KILLS kills; each round ends with a comparison.
soak() {
  local name=$1 command=$2 steps=$3 extra=$4; shift 5
  local flags=("$@") ref="$name-ref" ck="$name-ck"
  local t0 run_ms kills=0 in_write=0 rounds=0 pid rc life delay args writing=0 left
  t0=$(now_ms)
  "$RPT" "$command" "${flags[@]}" --out "$ref" >"$name-ref.log" 2>&1 || fail "$name: uninterrupted run" "$(cat "$name-ref.log")"
  run_ms=$(( $(now_ms) - t0 ))
  while [ $kills -lt "$KILLS" ]; do
    rounds=$((rounds + 1))
    rm -rf "$ck"
    life=0
    while :; do
      life=$((life + 1))
      # The first life starts the run; every later one resumes it with --resume alone.
      if [ -d "$ck" ]; then args=(--resume "$ck" --out "$ck"); else args=("${flags[@]}" --out "$ck"); fi
      if [ -d "$ck" ] && [ "$(step_of "$ck")" -eq "$steps" ]; then
        # Killed after its last checkpoint: a last resume only tidies up (and says so).
        "$RPT" "$command" "${args[@]}" >>"$name.log" 2>&1 && fail "$name: resume past the end succeeded"
        grep -q "already at step $steps" "$name.log" || fail "$name: resume at the end" "$(tail "$name.log")"
        break
      fi
      "$RPT" "$command" "${args[@]}" >>"$name.log" 2>&1 &
      pid=$!
      if [ $kills -lt "$KILLS" ]; then
        if [ $((kills % 2)) -eq 1 ]; then
          # Into a checkpoint write: wait for its temporary directory, then a few ms more.
          for _ in $(seq 1 2000); do
            [ -d "$ck.tmp-$pid" ] && break
            kill -0 $pid 2>/dev/null || break
            sleep 0.005
          done
          sleep_ms $((RANDOM % 15))
        else
          # Anywhere: start-up, a step, or a write.
          delay=$((RANDOM % (2 * run_ms / (KILLS < 4 ? 4 : KILLS) + 1)))
          sleep_ms $delay
        fi
        [ -d "$ck.tmp-$pid" ] && writing=1 || writing=0
        kill -9 $pid 2>/dev/null
      fi
      { wait $pid; } 2>/dev/null  # no "Killed" notice: the kills are counted below
      rc=$?
      if [ $rc -eq 137 ]; then
        kills=$((kills + 1))
        in_write=$((in_write + writing))
        check_loadable "$ck" $extra
        continue
      fi
      [ $rc -eq 0 ] || fail "$name: life $life exited with status $rc" "$(tail -20 "$name.log")"
      break
    done
    for f in model.safetensors optimizer.safetensors $extra; do
      cmp -s "$ck/$f" "$ref/$f" || fail "$name: round $rounds: $f differs from the uninterrupted run"
    done
    left=$(ls -d "$ck".tmp-* "$ck".old-* 2>/dev/null)
    [ -z "$left" ] || fail "$name: temporary directories left: $left"
    echo "  ok   $name round $rounds: $life lives, bit-identical to the uninterrupted run, no temporary directory left"
  done
  echo "  ok   $name: $kills kills ($in_write during a checkpoint write), $rounds rounds, uninterrupted run ${run_ms} ms"
}

echo "soak: setup ($PRESET, $KILLS kills per command)"
"$RPT" data synth --out corpus.jsonl --docs 300 --seed 2 >/dev/null 2>&1 || fail "data synth"
"$RPT" tokenizer train --corpus corpus.jsonl --vocab 512 --out tok.json >/dev/null 2>&1 || fail "tokenizer"
"$RPT" pretrain --preset "$PRESET" --corpus corpus.jsonl --tokenizer tok.json --out start --steps 4 --batch 2 --seq 64 \
  --eval-docs 2 --device cpu >/dev/null 2>start.log || fail "start model" "$(cat start.log)"
"$RPT" filter --model start --corpus corpus.jsonl --out pos.jsonl --max-docs 40 --device cpu >/dev/null 2>&1 \
  || fail "filter"

echo "soak: pretrain"
soak pretrain pretrain 16 "" -- --preset "$PRESET" --corpus corpus.jsonl --tokenizer tok.json --steps 16 --batch 2 \
  --seq 64 --seed 3 --data-seed 5 --lr 2e-3 --warmup 4 --eval-every 5 --eval-docs 2 --checkpoint-every 1 --device cpu
echo "soak: train"
soak train train 8 reference.safetensors -- --model start --corpus corpus.jsonl --positions pos.jsonl --steps 8 \
  --contexts 4 --rollouts 4 --max-new-tokens 4 --rl-seed 7 --kl-beta 0.1 --weight-decay 0.1 --dynamic-sampling \
  --checkpoint-every 2 --device cpu
echo "soak: passed in $(( $(date +%s) - start )) s"
