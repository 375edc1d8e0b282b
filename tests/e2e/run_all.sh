#!/usr/bin/env bash
# End-to-end checks of the `rpt` binary: bad input gives one clear line and a non-zero
# exit without leaving partial files; the pipeline commands run and resume; the quick
# demo runs. Usage: tests/e2e/run_all.sh build/rpt
set -u
RPT=$(realpath "${1:-build/rpt}")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)  # the repository (bench/configs)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
passed=0
failed=0

ok()   { passed=$((passed + 1)); echo "  ok   $1"; }
bad()  { failed=$((failed + 1)); echo "  FAIL $1"; [ -n "${2:-}" ] && sed 's/^/       /' <<<"$2" | head -20; }

# expect_error NAME NEEDLE CMD...: non-zero exit, exactly one "rpt: error:" line on stderr,
# mentioning NEEDLE (progress lines before it are fine).
expect_error() {
  local name=$1 needle=$2; shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  if [ $rc -eq 0 ]; then bad "$name (exit 0)" "$err"; return; fi
  if [ $rc -ge 128 ]; then bad "$name (crashed, status $rc)" "$err"; return; fi
  local errors
  errors=$(grep "^rpt: error:" <<<"$err")
  if [ "$(grep -c . <<<"$errors")" -ne 1 ]; then bad "$name (not exactly one error line)" "$err"; return; fi
  if ! grep -q -- "$needle" <<<"$errors"; then bad "$name (message lacks '$needle')" "$err"; return; fi
  ok "$name"
}

# expect_success NAME CMD...
expect_success() {
  local name=$1; shift
  local out
  if out=$("$@" 2>&1); then ok "$name"; else bad "$name" "$out"; fi
}

echo "e2e: bad input"
expect_error "unknown subcommand" "nosuch" "$RPT" nosuch
expect_error "unknown flag" "--bogus" "$RPT" data synth --out x.jsonl --bogus
expect_error "missing required flag" "--out" "$RPT" data synth
expect_error "bad flag value" "--docs" "$RPT" data synth --out x.jsonl --docs -3
expect_error "missing corpus file" "nofile.jsonl" "$RPT" tokenizer train --corpus nofile.jsonl --vocab 300 --out t.json
printf '{"text": "fine"}\n{"text": oops}\n' > malformed.jsonl
expect_error "malformed JSONL names file:line" "malformed.jsonl:2" "$RPT" tokenizer train --corpus malformed.jsonl --vocab 300 --out t.json
[ ! -e t.json ] && ok "no tokenizer written after an error" || bad "tokenizer written after an error"
printf '{"txt": "x"}\n' > nofield.jsonl
expect_error "missing field names it" "text" "$RPT" tokenizer train --corpus nofield.jsonl --vocab 300 --out t.json
expect_error "unknown preset" "--preset" "$RPT" pretrain --preset huge --out ck
expect_error "missing checkpoint dir" "config.json" "$RPT" pretrain --model nodir --out ck
expect_error "ZeRO level out of range" "--zero" "$RPT" pretrain --preset tiny --out ck --zero 5
expect_error "--overlap-reduce without ZeRO-2/3" "--overlap-reduce" "$RPT" pretrain --preset tiny --out ck --zero 1 \
  --overlap-reduce

echo "e2e: pipeline"
expect_success "data synth" "$RPT" data synth --out corpus.jsonl --docs 400 --seed 2
[ "$(wc -l < corpus.jsonl)" -eq 400 ] && ok "400 documents written" || bad "document count"
expect_success "tokenizer train" "$RPT" tokenizer train --corpus corpus.jsonl --vocab 512 --out tok.json
expect_success "pretrain 6 steps" "$RPT" pretrain --preset tiny --corpus corpus.jsonl --tokenizer tok.json --out full \
  --steps 6 --batch 2 --seq 64 --eval-docs 4 --metrics full.jsonl --device cpu
[ "$(wc -l < full.jsonl)" -eq 6 ] && ok "6 metrics lines" || bad "metrics lines" "$(cat full.jsonl)"
expect_success "pretrain 6 steps, --recompute layer" "$RPT" pretrain --preset tiny --corpus corpus.jsonl \
  --tokenizer tok.json --out fullrc --steps 6 --batch 2 --seq 64 --eval-docs 4 --device cpu --recompute layer
cmp -s full/model.safetensors fullrc/model.safetensors && ok "--recompute layer trains bit-identically" \
  || bad "--recompute layer changed the weights"
expect_error "unknown --recompute" "--recompute" "$RPT" pretrain --preset tiny --corpus corpus.jsonl --out rc \
  --recompute all
expect_success "pretrain, stop at step 3" "$RPT" pretrain --preset tiny --corpus corpus.jsonl --tokenizer tok.json \
  --out part --steps 6 --stop-at 3 --batch 2 --seq 64 --eval-docs 4 --device cpu
expect_success "resume to step 6" "$RPT" pretrain --resume part --corpus corpus.jsonl --out part --steps 6 \
  --batch 2 --seq 64 --eval-docs 4 --device cpu
cmp -s part/model.safetensors full/model.safetensors && ok "resumed run is bit-identical" \
  || bad "resumed run differs from the uninterrupted one"
cmp -s part/optimizer.safetensors full/optimizer.safetensors && ok "resumed optimizer state is bit-identical" \
  || bad "resumed optimizer state differs"
missing=""
for f in config.json model.safetensors tokenizer.json optimizer.safetensors trainer_state.json; do
  [ -f "full/$f" ] || missing="$missing $f"
done
[ -z "$missing" ] && ok "checkpoint has all five files" || bad "checkpoint lacks$missing"
printf 'garbage' > full_bad.safetensors
mkdir -p garbled && cp full/config.json full/tokenizer.json garbled/ && cp full_bad.safetensors garbled/model.safetensors
expect_error "garbled safetensors" "model.safetensors" "$RPT" pretrain --model garbled --out ck2 --steps 2
[ ! -e ck2 ] && ok "no checkpoint written after an error" || bad "checkpoint written after an error"
expect_error "steps already reached" "--steps" "$RPT" pretrain --resume full --out full --steps 6 --device cpu

echo "e2e: resume continues the recorded run"
# A run with non-default settings, stopped at step 3 and resumed with --resume alone,
# ends bit for bit where the uninterrupted run does.
RUN=(--preset tiny --corpus corpus.jsonl --tokenizer tok.json --steps 6 --batch 2 --seq 64 --eval-docs 4 --device cpu
     --seed 3 --data-seed 7 --lr 2e-3 --warmup 1 --beta2 0.99)
expect_success "pretrain --seed 3, uninterrupted" "$RPT" pretrain "${RUN[@]}" --out s3full
expect_success "pretrain --seed 3, stop at step 3" "$RPT" pretrain "${RUN[@]}" --out s3part --stop-at 3
cp -r s3part s3more && cp -r s3part s3moved
grep -q '"--seed": 3' s3part/trainer_state.json && ok "trainer_state.json records the run's settings" \
  || bad "no run record" "$(cat s3part/trainer_state.json)"
expect_error "a differing flag is refused, naming it and both values" \
  "--seed 5 differs from the run being resumed (3)" "$RPT" pretrain --resume s3part --out s3part --seed 5
expect_error "another corpus is refused naming --corpus" "--corpus" "$RPT" pretrain --resume s3part --out s3part \
  --corpus malformed.jsonl
expect_success "resume without repeating the run's flags" "$RPT" pretrain --resume s3part --out s3part
cmp -s s3part/model.safetensors s3full/model.safetensors && ok "resumed weights are bit-identical" \
  || bad "resumed weights differ from the uninterrupted run"
cmp -s s3part/optimizer.safetensors s3full/optimizer.safetensors && ok "resumed optimizer state is bit-identical" \
  || bad "resumed optimizer state differs"
expect_success "--steps may change on resume" "$RPT" pretrain --resume s3more --out s3more --steps 8
grep -q '"step": 8' s3more/trainer_state.json && ok "the longer run reached step 8" || bad "--steps 8 on resume"
cp corpus.jsonl moved.jsonl
if "$RPT" pretrain --resume s3moved --out s3moved --corpus moved.jsonl >/dev/null 2>moved.err; then
  grep -q "warning: --corpus .*moved.jsonl.*same size" moved.err && cmp -s s3moved/model.safetensors s3full/model.safetensors \
    && ok "a moved corpus with the same contents is accepted with a warning" || bad "moved corpus" "$(cat moved.err)"
else bad "moved corpus refused" "$(cat moved.err)"; fi
mkdir -p s3stale.tmp-999999999 && cp -r s3part s3stale
expect_error "resume at the end still refuses --steps" "--steps" "$RPT" pretrain --resume s3stale --out s3stale
[ ! -e s3stale.tmp-999999999 ] && ok "a dead process's temporary directory is removed" || bad "stale temp dir left"

echo "e2e: generate and convert"
if out=$("$RPT" generate --model full --prompt "Problem: 3 + 4" --greedy --max-new-tokens 5 --device cpu 2>/dev/null); then
  [ -n "$out" ] && ok "generate streams text" || bad "generate printed nothing"
else bad "generate"; fi
expect_success "convert to bf16" "$RPT" convert --in full --out conv16 --dtype bf16
expect_success "convert back to f32" "$RPT" convert --in conv16 --out conv32 --dtype f32
expect_success "generate from the converted checkpoint" "$RPT" generate --model conv32 --prompt "Problem:" \
  --greedy --max-new-tokens 3 --device cpu
expect_success "convert reruns onto its own output" "$RPT" convert --in full --out conv16 --dtype bf16
mkdir -p mine && echo "my file" > mine/keep.txt
expect_error "convert onto a directory it did not write" "--overwrite" "$RPT" convert --in full --out mine --dtype bf16
[ "$(cat mine/keep.txt)" = "my file" ] && ok "  ... which is left as it was" || bad "convert touched mine/"
if "$RPT" generate --model full --prompt "Problem:" --greedy --max-new-tokens 3 --device cpu --kv-dtype bf16 \
    >/dev/null 2>gen.err; then
  grep -q "KV cache .* in bf16" gen.err && ok "generate with a bf16 KV cache says so" || bad "generate KV report" "$(cat gen.err)"
else bad "generate --kv-dtype bf16" "$(cat gen.err)"; fi
expect_error "unknown KV dtype" "--kv-dtype" "$RPT" generate --model full --prompt "x" --kv-dtype fp16 --device cpu

if "$RPT" plan --model full --run pretrain --device cpu --batch 2 --seq 64 --device-memory 1 >plan.out 2>&1; then
  grep -q "plan: total .* fits in" plan.out && ok "plan of a checkpoint fits" || bad "plan output" "$(cat plan.out)"
else bad "plan" "$(cat plan.out)"; fi
if "$RPT" plan --preset small --run train --contexts 64 --rollouts 16 --prompt-tokens 512 --max-new-tokens 512 \
    --device-memory 2 >plan2.out 2>&1; then
  grep -q "does NOT fit" plan2.out && grep -q "plan: fits with\|plan: does not fit even" plan2.out \
    && ok "plan says what would make it fit" || bad "plan suggestions" "$(cat plan2.out)"
else bad "plan (train)" "$(cat plan2.out)"; fi
expect_error "plan needs a model" "--model" "$RPT" plan --run pretrain
expect_error "plan of a missing config" "nofile.json" "$RPT" plan --model nofile.json
# The step-time model on the paper's 14B shape (bench/configs).
if "$RPT" plan --model "$ROOT/bench/configs/r1-distill-qwen-14b.json" --run train --ranks 64 --zero 3 --recompute layer \
    --contexts 256 --rollouts 8 --prompt-tokens 512 --max-new-tokens 8192 --micro-batch 2 --precision bf16 \
    --step-time >plan3.out 2>&1; then
  grep -q "rollout .* wave" plan3.out && grep -q "step .* MFU" plan3.out && ok "plan --step-time: the phases of an RPT step" \
    || bad "plan --step-time output" "$(cat plan3.out)"
else bad "plan --step-time" "$(cat plan3.out)"; fi
expect_error "step time needs an RPT run" "--run train" "$RPT" plan --preset tiny --step-time
expect_error "step time's mean response within the budget" "--mean-response-tokens" "$RPT" plan --preset tiny \
  --run train --step-time --mean-response-tokens 99
grep -q "^plan: total" <(
  "$RPT" pretrain --preset tiny --corpus corpus.jsonl --tokenizer tok.json --out planrun --steps 1 --batch 2 --seq 32 \
    --eval-docs 2 --device cpu 2>&1) && ok "pretrain prints its plan" || bad "pretrain plan lines"

echo "e2e: RPT commands"
expect_success "filter" "$RPT" filter --model full --corpus corpus.jsonl --out pos.jsonl --max-docs 60 --device cpu
[ -s pos.jsonl ] && ok "positions written" || bad "no positions written"
expect_success "train 2 RPT steps" "$RPT" train --model full --corpus corpus.jsonl --positions pos.jsonl --out rptck \
  --steps 2 --contexts 4 --rollouts 4 --max-new-tokens 4 --metrics rpt.jsonl --device cpu
[ "$(wc -l < rpt.jsonl)" -eq 2 ] && grep -q reward_mean rpt.jsonl && ok "2 RPT metrics lines" || bad "RPT metrics" "$(cat rpt.jsonl)"
expect_success "1 RPT step, --recompute layer" "$RPT" train --model full --corpus corpus.jsonl --positions pos.jsonl \
  --out rptrc --steps 1 --contexts 4 --rollouts 4 --max-new-tokens 4 --device cpu --recompute layer
expect_success "1 RPT step, prompt per response" "$RPT" train --model full --corpus corpus.jsonl --positions pos.jsonl \
  --out rptsep --steps 1 --contexts 4 --rollouts 4 --max-new-tokens 4 --metrics rptsep.jsonl --device cpu \
  --prompt-layout separate  # tests/test_grpo.cpp checks every layout gives one gradient
expect_success "resume RPT to step 3" "$RPT" train --resume rptck --corpus corpus.jsonl --positions pos.jsonl \
  --out rptck --steps 3 --contexts 4 --rollouts 4 --max-new-tokens 4 --device cpu
grep -q '"step": 3' rptck/trainer_state.json && ok "RPT resumed to step 3" || bad "RPT resume" "$(cat rptck/trainer_state.json)"
# RPT with a KL reference and dynamic sampling, stopped at step 2 and resumed alone.
TRAIN=(--model full --corpus corpus.jsonl --positions pos.jsonl --steps 4 --contexts 4 --rollouts 4 --max-new-tokens 4
       --rl-seed 9 --kl-beta 0.1 --weight-decay 0.1 --dynamic-sampling --device cpu)
expect_success "RPT, uninterrupted" "$RPT" train "${TRAIN[@]}" --out rfull
expect_success "RPT, stop at step 2" "$RPT" train "${TRAIN[@]}" --out rpart --stop-at 2
cp -r rpart rmore
expect_error "RPT: a differing flag is refused" "--rl-seed 1 differs from the run being resumed (9)" \
  "$RPT" train --resume rpart --out rpart --rl-seed 1
expect_success "RPT: resume without repeating the run's flags" "$RPT" train --resume rpart --out rpart
for f in model optimizer reference; do
  cmp -s "rpart/$f.safetensors" "rfull/$f.safetensors" && ok "RPT resumed $f.safetensors is bit-identical" \
    || bad "RPT resumed $f.safetensors differs"
done
expect_success "RPT: --steps may change on resume" "$RPT" train --resume rmore --out rmore --steps 5
grep -q '"step": 5' rmore/trainer_state.json && ok "the longer RPT run reached step 5" || bad "RPT --steps 5 on resume"
expect_success "eval both modes" "$RPT" eval --model rptck --corpus corpus.jsonl --positions pos.jsonl --all-docs \
  --max-positions 40 --device cpu
expect_success "eval with a bf16 KV cache" "$RPT" eval --model rptck --corpus corpus.jsonl --positions pos.jsonl \
  --all-docs --max-positions 20 --mode reasoning --kv-dtype bf16 --device cpu
expect_success "plot" "$RPT" plot --metrics rpt.jsonl --out rpt.svg --x step
[ -s rpt.svg ] && ok "plot drawn" || bad "no plot"

echo "e2e: the paper's evaluation studies"
# One run's checkpoints at steps 1, 2 and 3 (--stop-at, a copy, --resume): the scaling study.
STUDY=(--corpus corpus.jsonl --positions pos.jsonl --device cpu)
expect_success "RPT run, stop at step 1" "$RPT" train --model full "${STUDY[@]}" --out srun --steps 3 --stop-at 1 \
  --contexts 4 --rollouts 4 --max-new-tokens 4 --dynamic-sampling --max-refill-rounds 6
grep -q '"--max-refill-rounds": 6' srun/trainer_state.json && ok "the refill bound is recorded" \
  || bad "--max-refill-rounds not in the run record"
grep -q '"rpt_training_flops"' srun/trainer_state.json && ok "the checkpoint records its FLOPs" \
  || bad "no rpt_training_flops in trainer_state.json"
cp -r srun s1
expect_success "RPT resumed to step 2" "$RPT" train --resume srun --out srun "${STUDY[@]}" --stop-at 2
cp -r srun s2
expect_success "RPT resumed to step 3" "$RPT" train --resume srun --out srun "${STUDY[@]}"
expect_success "scaling study over 4 checkpoints" "$RPT" eval --checkpoints full,s1,s2,srun "${STUDY[@]}" --all-docs \
  --max-positions 20 --json scaling.json
grep -q '"r_squared"' scaling.json && grep -q '"rpt_flops"' scaling.json && ok "scaling JSON has fits and FLOPs" \
  || bad "scaling JSON" "$(head -40 scaling.json)"
expect_success "plot the scaling study" "$RPT" plot --scaling scaling.json --out scaling.svg
[ -s scaling.svg ] && ok "scaling plot drawn" || bad "no scaling plot"
cat > worded.json <<'JSON'
{"name": "worded", "prompt_prefix": "Predict the next token. <ctx>", "prompt_suffix": "<think>",
 "think_close": "</think>", "answer_open": "<answer>", "answer_close": "</answer>",
 "stop": ["</answer>", "<|endoftext|>"]}
JSON
expect_success "template sweep, 4 samples" "$RPT" eval --model srun "${STUDY[@]}" --all-docs --max-positions 10 \
  --template-sweep compact,worded.json --sampled --samples 4 --json sweep.json
grep -q '"random_at_1"' sweep.json && grep -q '"worded.json"' sweep.json && ok "sweep JSON per template" \
  || bad "sweep JSON" "$(head -40 sweep.json)"
expect_error "KV budget names the knob" "--kv-budget-mb" "$RPT" train --model full --corpus corpus.jsonl \
  --positions pos.jsonl --out never --steps 1 --kv-budget-mb 0.01 --device cpu
expect_error "an f32 KV cache over budget suggests bf16" "--kv-dtype bf16" "$RPT" train --model full \
  --corpus corpus.jsonl --positions pos.jsonl --out never --steps 1 --kv-budget-mb 0.01 --device cpu
if "$RPT" train --model full --corpus corpus.jsonl --positions pos.jsonl --out rptbf16 --steps 1 --contexts 4 \
    --rollouts 4 --max-new-tokens 4 --kv-dtype bf16 --device cpu >/dev/null 2>train.err; then
  grep -q "KV cache: .* in bf16" train.err && ok "train with a bf16 KV cache reports it" || bad "train KV report" "$(cat train.err)"
else bad "train --kv-dtype bf16" "$(tail -20 train.err)"; fi
printf '{"doc": 0, "pos": 3, "entropy": 1.0}\n{"doc": 0}\n' > badpos.jsonl
expect_error "malformed positions name file:line" "badpos.jsonl:2" "$RPT" train --model full --corpus corpus.jsonl \
  --positions badpos.jsonl --out never --steps 1 --device cpu
expect_error "unknown template" "nosuch.json" "$RPT" train --model full --corpus corpus.jsonl \
  --positions pos.jsonl --out never --steps 1 --template nosuch.json --device cpu
[ ! -e never ] && ok "no checkpoint after RPT errors" || bad "checkpoint written after an error"

echo "e2e: the quick demo"
# E2E_SKIP_DEMO=1 (make sanitize): the demo is minutes of training, which a sanitized
# build makes ten times longer; its commands ran above.
if [ -n "${E2E_SKIP_DEMO:-}" ]; then
  echo "  skip the quick demo (E2E_SKIP_DEMO set)"
elif out=$("$RPT" demo --quick --out demo --device cpu 2>demo.err); then
  grep -q "RPT" <<<"$out" && grep -q "NTP-continued" <<<"$out" && ok "demo table printed" || bad "demo table" "$out"
  [ -s demo/summary.json ] && [ -s demo/curves.svg ] && ok "demo summary and plot written" || bad "demo outputs missing"
  grep -q "McNemar p" <<<"$out" && grep -q "traces at the same positions" <<<"$out" \
    && ok "demo paired comparisons and traces printed" || bad "demo comparisons" "$out"
  python3 - demo/summary.json <<'PY' && ok "summary.json: intervals, the paired claim, trace metrics" || bad "demo summary.json fields"
import json, sys
s = json.load(open(sys.argv[1]))
hard = s["results"]["RPT"]["hard"]
lo, hi = hard["reasoning"]["ci95"]
assert lo <= hard["reasoning"]["mean"] <= hi and hard["reasoning"]["n"] == hard["positions"] > 0
claim = s["comparisons"]["RPT reasoning - NTP-continued standard"]["splits"]["hard"]["a_minus_b"]
assert 0 <= claim["mcnemar_p"] <= 1 and claim["ci95"][0] <= claim["ci95"][1]
assert "traces_correct" in hard and s["worked_examples"] is True
assert s["grids"]["rpt"]["chosen_lr"] > 0
PY
else
  bad "demo --quick" "$(tail -20 demo.err)"
fi
# A second `make run` reuses the directory; a bad --corpus stops it just after that check.
expect_error "the demo reruns into its own directory" "nosuch.jsonl" "$RPT" demo --quick --out demo --device cpu \
  --corpus nosuch.jsonl

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
