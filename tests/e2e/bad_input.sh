#!/usr/bin/env bash
# The bad-input table: every row is one bad command line, which must end with exactly
# one "rpt: error:" line naming its file, field or flag, a non-zero exit (no crash, no
# hang), and leave the work directory exactly as it was: no output behind, the user's
# files untouched (every file's checksum compared). Then what must be allowed: the
# --overwrite rows, reruns onto rpt's own earlier output, and the removal of a dead
# writer's temporaries (never a live one's).
# Usage: tests/e2e/bad_input.sh build/rpt
set -u
RPT=$(realpath "${1:-build/rpt}")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
ROW_TIMEOUT=120   # seconds before a hung row is killed (and fails)
passed=0
failed=0

ok()   { passed=$((passed + 1)); echo "  ok   $1"; }
bad()  { failed=$((failed + 1)); echo "  FAIL $1"; [ -n "${2:-}" ] && sed 's/^/       /' <<<"$2" | head -20; }

# Every file's checksum and every directory's name, under the work directory.
snapshot() { find . -mindepth 1 \( -type d -printf 'dir %p\n' \) -o \( -type f -exec sha256sum {} + \) | sort; }

# refuse NAME NEEDLE ARGS...: the row's checks (see the top of the file).
refuse() {
  local name=$1 needle=$2; shift 2
  local before err rc errors
  before=$(snapshot)
  err=$(timeout $ROW_TIMEOUT "$RPT" "$@" 2>&1 >/dev/null); rc=$?
  if [ $rc -eq 0 ]; then bad "$name (exit 0)" "$err"; return; fi
  if [ $rc -eq 124 ]; then bad "$name (hung: killed after ${ROW_TIMEOUT}s)" "$err"; return; fi
  if [ $rc -ge 128 ]; then bad "$name (crashed, status $rc)" "$err"; return; fi
  errors=$(grep "^rpt: error:" <<<"$err")
  if [ "$(grep -c . <<<"$errors")" -ne 1 ]; then bad "$name (not exactly one error line)" "$err"; return; fi
  if ! grep -q -- "$needle" <<<"$errors"; then bad "$name (message lacks '$needle')" "$err"; return; fi
  if [ "$(snapshot)" != "$before" ]; then bad "$name (files changed)" "$(diff <(echo "$before") <(snapshot))"; return; fi
  ok "$name"
}

# allow NAME ARGS...: exit 0.
allow() {
  local name=$1; shift
  local out
  if out=$(timeout $ROW_TIMEOUT "$RPT" "$@" 2>&1); then ok "$name"; else bad "$name" "$out"; fi
}

# table ROWS...: each row is "name | needle | arguments" (arguments split on spaces).
table() {
  local row name needle args
  for row in "$@"; do
    IFS='|' read -r name needle args <<<"$row"
    # shellcheck disable=SC2086  # the arguments are meant to split
    refuse "$(echo $name)" "$(echo $needle)" $args
  done
}

echo "bad input: setup"
"$RPT" data synth --out corpus.jsonl --docs 200 --seed 3 >/dev/null 2>&1 || bad "data synth"
"$RPT" tokenizer train --corpus corpus.jsonl --vocab 300 --out tok.json >/dev/null 2>&1 || bad "tokenizer train"
"$RPT" pretrain --preset tiny --corpus corpus.jsonl --tokenizer tok.json --out ck --steps 2 --batch 2 --seq 32 \
  --eval-docs 2 --device cpu --metrics ck.jsonl >/dev/null 2>&1 || bad "pretrain the checkpoint"
"$RPT" filter --model ck --corpus corpus.jsonl --out pos.jsonl --max-docs 6 --device cpu >/dev/null 2>&1 \
  || bad "filter"
"$RPT" convert --in ck --out infer >/dev/null 2>&1 || bad "convert (a checkpoint without trainer state)"
# The user's own files, which no refused command may touch.
mkdir thesis && printf '\\chapter{One}\n' > thesis/thesis.tex && printf 'draft\n' > thesis/notes.md
printf 'my own notes\n' > notes.txt
printf '<svg/>\n' > figure.svg
mkdir adir
printf '{"text": "fine"}\n{"text": oops}\n' > malformed.jsonl
printf '{"txt": "x"}\n' > nofield.jsonl
printf '{"doc": 0, "pos": 3, "entropy": 1.0}\n{"doc": 0}\n' > badpos.jsonl
printf '{"prompt_prefix": 3}\n' > badtemplate.json
printf '{"model": ' > badtok.json
mkdir garbled && cp ck/config.json ck/tokenizer.json garbled/ && printf 'garbage' > garbled/model.safetensors
mkdir badconfig && printf '{"hidden_size": "wide"}' > badconfig/config.json && cp ck/tokenizer.json badconfig/

# Command prefixes of the rows; each would succeed with good flags, writing to a new path.
PRE="pretrain --preset tiny --corpus corpus.jsonl --tokenizer tok.json --steps 2 --batch 2 --seq 32 --eval-docs 2 --device cpu"
TRAIN="train --model ck --corpus corpus.jsonl --positions pos.jsonl --steps 1 --contexts 2 --rollouts 2 --max-new-tokens 2 --device cpu"
EVAL="eval --model ck --corpus corpus.jsonl --positions pos.jsonl --all-docs --max-positions 4 --device cpu"
FILTER="filter --model ck --corpus corpus.jsonl --max-docs 4 --device cpu"
GEN="generate --model ck --prompt x --max-new-tokens 2 --device cpu"
DEMO="demo --quick --device cpu"

echo "bad input: outputs that are not rpt's own"
table \
  "pretrain onto a foreign directory   | notes.md     | $PRE --out thesis" \
  "pretrain onto a file                | notes.txt    | $PRE --out notes.txt" \
  "pretrain onto a file, nested        | notes.txt/ck | $PRE --out notes.txt/ck" \
  "pretrain, fresh --metrics exists    | --metrics    | $PRE --out new --metrics notes.txt" \
  "pretrain, --metrics is a directory  | --metrics    | $PRE --out new --metrics adir --overwrite" \
  "train onto a foreign directory      | thesis       | $TRAIN --out thesis" \
  "train onto a file                   | notes.txt    | $TRAIN --out notes.txt" \
  "convert onto a foreign directory    | --overwrite  | convert --in ck --out thesis" \
  "convert onto a file                 | notes.txt    | convert --in ck --out notes.txt" \
  "demo onto a foreign directory       | thesis       | $DEMO --out thesis" \
  "demo onto a file                    | notes.txt    | $DEMO --out notes.txt" \
  "demo onto a checkpoint              | checkpoint   | $DEMO --out ck" \
  "data synth onto a file              | notes.txt    | data synth --out notes.txt --docs 5" \
  "data synth onto a directory         | adir         | data synth --out adir --docs 5 --overwrite" \
  "data synth into a missing directory | nodir        | data synth --out nodir/c.jsonl --docs 5" \
  "tokenizer train onto a file         | notes.txt    | tokenizer train --corpus corpus.jsonl --vocab 300 --out notes.txt" \
  "tokenizer train onto its own output | tok.json     | tokenizer train --corpus corpus.jsonl --vocab 300 --out tok.json" \
  "filter onto a file                  | notes.txt    | $FILTER --out notes.txt" \
  "plot onto a file                    | figure.svg   | plot --metrics ck.jsonl --out figure.svg"

echo "bad input: missing and malformed files"
table \
  "missing corpus                      | nofile.jsonl        | tokenizer train --corpus nofile.jsonl --vocab 300 --out t.json" \
  "malformed JSONL names file:line     | malformed.jsonl:2   | tokenizer train --corpus malformed.jsonl --vocab 300 --out t.json" \
  "missing text field                  | text                | tokenizer train --corpus nofield.jsonl --vocab 300 --out t.json" \
  "missing checkpoint                  | config.json         | pretrain --model nodir --out new" \
  "garbled safetensors                 | model.safetensors   | pretrain --model garbled --out new --steps 2 --device cpu" \
  "malformed config.json               | config.json         | pretrain --model badconfig --out new --steps 2 --device cpu" \
  "malformed tokenizer.json            | badtok.json         | pretrain --preset tiny --tokenizer badtok.json --out new" \
  "resume without trainer state        | --resume            | pretrain --resume infer --out infer --steps 4 --device cpu" \
  "malformed positions names file:line | badpos.jsonl:2      | train --model ck --corpus corpus.jsonl --positions badpos.jsonl --out new --device cpu" \
  "missing template                    | nosuch.json         | $TRAIN --out new --template nosuch.json" \
  "malformed template field            | prompt_prefix       | $TRAIN --out new --template badtemplate.json" \
  "missing metrics to plot             | nosuch.jsonl        | plot --metrics nosuch.jsonl --out new.svg" \
  "unknown command                     | nosuch              | nosuch" \
  "unknown flag                        | --bogus             | data synth --out new.jsonl --bogus" \
  "unknown preset                      | --preset            | pretrain --preset huge --out new"

echo "bad input: float flags (nan, inf, out of range)"
table \
  "pretrain --lr nan                   | --lr               | $PRE --out new --lr nan" \
  "pretrain --lr inf                   | --lr               | $PRE --out new --lr inf" \
  "pretrain --lr 1e39 (inf as a float) | --lr               | $PRE --out new --lr 1e39" \
  "pretrain --lr 0                     | --lr               | $PRE --out new --lr 0" \
  "pretrain --lr -1e-3                 | --lr               | $PRE --out new --lr -1e-3" \
  "pretrain --min-lr-ratio 1.5         | --min-lr-ratio     | $PRE --out new --min-lr-ratio 1.5" \
  "pretrain --min-lr-ratio nan         | --min-lr-ratio     | $PRE --out new --min-lr-ratio nan" \
  "pretrain --weight-decay -0.1        | --weight-decay     | $PRE --out new --weight-decay -0.1" \
  "pretrain --weight-decay inf         | --weight-decay     | $PRE --out new --weight-decay inf" \
  "pretrain --beta1 1                  | --beta1            | $PRE --out new --beta1 1" \
  "pretrain --beta1 nan                | --beta1            | $PRE --out new --beta1 nan" \
  "pretrain --beta2 -0.1               | --beta2            | $PRE --out new --beta2 -0.1" \
  "pretrain --grad-clip -1             | --grad-clip        | $PRE --out new --grad-clip -1" \
  "pretrain --grad-clip nan            | --grad-clip        | $PRE --out new --grad-clip nan" \
  "pretrain --format-share 0.95        | --format-share     | $PRE --out new --format-share 0.95" \
  "pretrain --format-share nan         | --format-share     | $PRE --out new --format-share nan" \
  "pretrain --heldout-fraction -inf    | --heldout-fraction | $PRE --out new --heldout-fraction -inf" \
  "train --lr nan                      | --lr               | $TRAIN --out new --lr nan" \
  "train --temperature 0               | --temperature      | $TRAIN --out new --temperature 0" \
  "train --temperature nan             | --temperature      | $TRAIN --out new --temperature nan" \
  "train --top-p 0                     | --top-p            | $TRAIN --out new --top-p 0" \
  "train --top-p 1.5                   | --top-p            | $TRAIN --out new --top-p 1.5" \
  "train --top-p nan                   | --top-p            | $TRAIN --out new --top-p nan" \
  "train --clip-low 1                  | --clip-low         | $TRAIN --out new --clip-low 1" \
  "train --clip-high inf               | --clip-high        | $TRAIN --out new --clip-high inf" \
  "train --clip-high -0.2              | --clip-high        | $TRAIN --out new --clip-high -0.2" \
  "train --kl-beta nan                 | --kl-beta          | $TRAIN --out new --kl-beta nan" \
  "train --weight-decay -1             | --weight-decay     | $TRAIN --out new --weight-decay -1" \
  "train --grad-clip inf               | --grad-clip        | $TRAIN --out new --grad-clip inf" \
  "train --min-lr-ratio 2              | --min-lr-ratio     | $TRAIN --out new --min-lr-ratio 2" \
  "train --kv-budget-mb 0              | --kv-budget-mb     | $TRAIN --out new --kv-budget-mb 0" \
  "train --kv-budget-mb 1e30           | --kv-budget-mb     | $TRAIN --out new --kv-budget-mb 1e30" \
  "train --kv-block-tokens -1          | --kv-block-tokens  | $TRAIN --out new --kv-block-tokens -1" \
  "generate --kv-block-tokens 2000000  | --kv-block-tokens  | $GEN --kv-block-tokens 2000000" \
  "train --entropy-threshold nan       | --entropy-threshold| $TRAIN --out new --entropy-threshold nan" \
  "train --heldout-fraction 0.9        | --heldout-fraction | $TRAIN --out new --heldout-fraction 0.9" \
  "train --truth-tokens -1             | --truth-tokens     | $TRAIN --out new --truth-tokens -1" \
  "train --reward bogus                | --reward           | $TRAIN --out new --reward bogus" \
  "train --dynamic-sampling-from -1    | --dynamic-sampling-from | $TRAIN --out new --dynamic-sampling-from -1" \
  "train --recipe bogus                | --recipe           | $TRAIN --out new --recipe bogus" \
  "train --recipe paper --lr nan       | --lr               | $TRAIN --out new --recipe paper --lr nan" \
  "eval --eval-truth-tokens -1         | --eval-truth-tokens| $EVAL --eval-truth-tokens -1" \
  "eval --eval-temperature 0           | --eval-temperature | $EVAL --sampled --eval-temperature 0" \
  "eval --hard nan                     | --hard             | $EVAL --hard nan" \
  "eval --easy -1                      | --easy             | $EVAL --easy -1" \
  "filter --train-threshold nan        | --train-threshold  | $FILTER --out new.jsonl --train-threshold nan" \
  "filter --medium inf                 | --medium           | $FILTER --out new.jsonl --medium inf" \
  "generate --temperature 0            | --temperature      | $GEN --temperature 0" \
  "generate --temperature inf          | --temperature      | $GEN --temperature inf" \
  "generate --top-p 1.01               | --top-p            | $GEN --top-p 1.01" \
  "generate --top-p nan                | --top-p            | $GEN --top-p nan" \
  "demo --format-share nan             | --format-share     | $DEMO --out new --format-share nan" \
  "demo --rpt-lr-grid 1e-4,abc         | --rpt-lr-grid      | $DEMO --out new --rpt-lr-grid 1e-4,abc" \
  "demo --ntp-lr-grid 0                | --ntp-lr-grid      | $DEMO --out new --ntp-lr-grid 0" \
  "demo --grid-fraction 0              | --grid-fraction    | $DEMO --out new --grid-fraction 0" \
  "eval --compare nosuch               | nosuch             | $EVAL --compare nosuch"

echo "bad input: integer flags"
table \
  "pretrain --steps 0                  | --steps            | $PRE --out new --steps 0" \
  "pretrain --steps nan                | --steps            | $PRE --out new --steps nan" \
  "pretrain --batch -1                 | --batch            | $PRE --out new --batch -1" \
  "pretrain --seq 1.5                  | --seq              | $PRE --out new --seq 1.5" \
  "pretrain --seed -1                  | --seed             | $PRE --out new --seed -1" \
  "train --rollouts 0                  | --rollouts         | $TRAIN --out new --rollouts 0" \
  "train --max-new-tokens 0            | --max-new-tokens   | $TRAIN --out new --max-new-tokens 0" \
  "train --max-refill-rounds -1        | --max-refill-rounds | $TRAIN --out new --max-refill-rounds -1" \
  "train --max-refill-rounds 5000      | --max-refill-rounds | $TRAIN --out new --max-refill-rounds 5000" \
  "train --max-refill-rounds 1.5       | --max-refill-rounds | $TRAIN --out new --max-refill-rounds 1.5" \
  "filter --max-docs -1                | --max-docs         | $FILTER --out new.jsonl --max-docs -1" \
  "eval --max-positions -5             | --max-positions    | $EVAL --max-positions -5" \
  "data synth --docs -3                | --docs             | data synth --out new.jsonl --docs -3" \
  "tokenizer train --vocab 10          | --vocab            | tokenizer train --corpus corpus.jsonl --vocab 10 --out t.json" \
  "generate --max-new-tokens 0         | --max-new-tokens   | $GEN --max-new-tokens 0" \
  "demo --seeds 0                      | --seeds            | $DEMO --out new --seeds 0" \
  "demo --eval-hard-positions 0        | --eval-hard-positions | $DEMO --out new --eval-hard-positions 0"

echo "bad input: evaluation studies (template sweep, scaling study, their plot)"
EVALS="eval --corpus corpus.jsonl --positions pos.jsonl --all-docs --max-positions 4 --device cpu"
table \
  "eval --samples 0                    | --samples          | $EVAL --sampled --samples 0" \
  "eval --samples 4, greedy            | --samples          | $EVAL --samples 4" \
  "eval --pass-k above --samples       | --pass-k           | $EVAL --sampled --samples 2 --pass-k 3" \
  "eval --pass-k -1                    | --pass-k           | $EVAL --sampled --samples 2 --pass-k -1" \
  "eval --samples with --compare       | --compare          | $EVAL --sampled --samples 2 --compare ck" \
  "eval --template-sweep empty name    | --template-sweep   | $EVAL --template-sweep compact,,compact" \
  "eval --template-sweep twice         | --template-sweep   | $EVAL --template-sweep compact,compact" \
  "eval --template-sweep missing file  | nosuch.json        | $EVAL --template-sweep compact,nosuch.json" \
  "eval --template-sweep, no R1 token  | v0                 | $EVAL --template-sweep all" \
  "eval --template-sweep and --template| --template         | $EVAL --template-sweep compact --template compact" \
  "eval --template-sweep, standard mode| --template-sweep   | $EVAL --template-sweep compact --mode standard" \
  "eval --template-sweep --checkpoints | --template-sweep   | $EVALS --template-sweep compact --checkpoints ck" \
  "eval without --model or checkpoints | --model            | $EVALS" \
  "eval --checkpoints with --model     | --model            | $EVAL --checkpoints ck,infer" \
  "eval --checkpoints listed twice     | --checkpoints      | $EVALS --checkpoints ck,ck" \
  "eval --checkpoints missing dir      | config.json        | $EVALS --checkpoints ck,nodir" \
  "eval --checkpoints without compute  | --checkpoints      | $EVALS --checkpoints ck,infer" \
  "eval --checkpoints with --compare   | --compare          | $EVALS --checkpoints ck,infer --compare ck" \
  "plot neither --metrics nor --scaling| --scaling          | plot --out new.svg" \
  "plot both --metrics and --scaling   | --scaling          | plot --metrics ck.jsonl --scaling ck.jsonl --out new.svg" \
  "plot --scaling missing file         | nosuch.json        | plot --scaling nosuch.json --out new.svg" \
  "plot --scaling not JSON             | corpus.jsonl       | plot --scaling corpus.jsonl --out new.svg" \
  "plot --scaling not a study          | tok.json           | plot --scaling tok.json --out new.svg" \
  "plot --metric bogus                 | --metric           | plot --scaling tok.json --metric bogus --out new.svg"

echo "allowed: --overwrite, and reruns onto rpt's own output"
cp -r thesis thesis2
allow "pretrain --overwrite replaces a foreign directory" $PRE --out thesis2 --overwrite
[ -f thesis2/model.safetensors ] && [ ! -e thesis2/thesis.tex ] && ok "  ... with a checkpoint, whole" \
  || bad "pretrain --overwrite result" "$(ls thesis2)"
cp notes.txt notes2.txt
allow "data synth --overwrite replaces a file" data synth --out notes2.txt --docs 5 --overwrite
[ "$(wc -l < notes2.txt)" -eq 5 ] && ok "  ... with the corpus" || bad "data synth --overwrite result"
allow "tokenizer train --overwrite replaces its own output" tokenizer train --corpus corpus.jsonl --vocab 300 \
  --out tok.json --overwrite
allow "pretrain reruns onto its own checkpoint" $PRE --out ck
allow "pretrain --resume CK --out CK" pretrain --resume ck --corpus corpus.jsonl --out ck --steps 4 --batch 2 \
  --seq 32 --eval-docs 2 --device cpu --metrics ck.jsonl
grep -q '"step": 4' ck/trainer_state.json && ok "  ... resumed to step 4" || bad "resume result"
allow "train onto a pretrain checkpoint (the same kind)" $TRAIN --out infer
allow "convert reruns onto its own output" convert --in ck --out infer
cp -r thesis thesis3
allow "convert --force (the old name of --overwrite)" convert --in ck --out thesis3 --force
# The demo reruns into its own directory: a bad --corpus after the claim proves it passed.
mkdir demo && printf '{"written_by": "rpt", "kind": "demo"}\n' > demo/rpt_output.json
refuse "demo reruns into its own directory (then stops at the corpus)" "nosuch.jsonl" $DEMO --out demo \
  --corpus nosuch.jsonl
refuse "demo --overwrite onto a foreign directory (then stops at the corpus)" "nosuch.jsonl" $DEMO --out thesis \
  --corpus nosuch.jsonl --overwrite

echo "leftovers of killed writers"
DEAD=999999
while kill -0 $DEAD 2>/dev/null; do DEAD=$((DEAD + 1)); done
mkdir -p "ck.tmp-$DEAD/half" "ck.tmp-$$"
printf 'half a file' > "ck.tmp-$DEAD/half/model.safetensors"
printf 'half' > "corpus2.jsonl.tmp.$DEAD"
if err=$("$RPT" $PRE --out ck 2>&1); then
  [ ! -e "ck.tmp-$DEAD" ] && ok "a dead writer's ck.tmp-PID is removed" || bad "ck.tmp-$DEAD left"
  grep -q "removed .*ck.tmp-$DEAD" <<<"$err" && ok "  ... saying so" || bad "no removal line" "$err"
  [ -d "ck.tmp-$$" ] && ok "a live process's ck.tmp-PID is kept" || bad "ck.tmp-$$ (a live PID) removed"
else bad "pretrain beside temporaries" "$err"; fi
allow "data synth beside a dead writer's file" data synth --out corpus2.jsonl --docs 5
[ ! -e "corpus2.jsonl.tmp.$DEAD" ] && ok "a dead writer's corpus2.jsonl.tmp.PID is removed" || bad "file temporary left"
mkdir -p "thesis.tmp-$DEAD"
refuse "a refused command removes nothing" "notes.md" $PRE --out thesis
[ -d "thesis.tmp-$DEAD" ] && ok "  ... its temporaries stay too" || bad "a refused command removed a temporary"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
