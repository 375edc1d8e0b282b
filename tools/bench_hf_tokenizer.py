#!/usr/bin/env python3
"""Hugging Face `tokenizers` throughput on the same text and tokenizer.json as
`rpt_bench tokenizer`, measured the same way (documents encoded one by one on one
thread; encode_batch over all threads; decode on one thread; MB/s of input bytes).

    python3 tools/bench_hf_tokenizer.py --text ../shared/data/gsm8k/train.jsonl \
        [--format gsm8k|omni-math|text|raw] [--tokenizer JSON]
    # a larger Qwen2-pipeline tokenizer trained on the text, for realistic numbers:
    python3 tools/bench_hf_tokenizer.py --text FILE --train-vocab 32000 --save /tmp/tok32k.json

Skips cleanly (exit 0) when the text file is absent. Needs only `tokenizers`
(and tools/make_fixtures.py for --train-vocab).
"""

import argparse
import json
import os
import sys
import time

DEFAULT_TOKENIZER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "fixtures",
                                 "hf_tokenizer", "tokenizer.json")
FIELDS = {"gsm8k": ("question", "answer"), "omni-math": ("problem", "solution"), "text": ("text", None)}


def load_docs(path, fmt):
    with open(path, encoding="utf-8") as f:
        if fmt == "raw":
            return [f.read()]
        first, second = FIELDS[fmt]
        docs = []
        for line in f:
            if line.strip():
                row = json.loads(line)
                docs.append(row[first] + "\n" + row[second] if second else row[first])
        return docs


def time_passes(min_time, fn):
    passes, t0 = 0, time.perf_counter()
    while True:
        fn()
        passes += 1
        if time.perf_counter() - t0 >= min_time:
            return (time.perf_counter() - t0) / passes


def train(docs, vocab, save):
    """Qwen2's pipeline (as tools/make_fixtures.py builds it), trained on docs."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from make_fixtures import QWEN2_SPLIT, SPECIAL_TOKENS
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(docs, trainers.BpeTrainer(vocab_size=vocab, show_progress=False,
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tok.save(save)
    return save


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text", required=True)
    ap.add_argument("--format", default="gsm8k", choices=["gsm8k", "omni-math", "text", "raw"])
    ap.add_argument("--tokenizer", default=DEFAULT_TOKENIZER)
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--train-vocab", type=int, help="train a Qwen2-pipeline tokenizer of this size on the text")
    ap.add_argument("--save", help="where --train-vocab writes its tokenizer.json")
    args = ap.parse_args()
    if not os.path.exists(args.text):
        print(f"tokenizer bench: {args.text} not found, skipped")
        return
    from tokenizers import Tokenizer
    import tokenizers
    docs = load_docs(args.text, args.format)
    path = train(docs, args.train_vocab, args.save) if args.train_vocab else args.tokenizer
    tok = Tokenizer.from_file(path)
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    encodings = []
    one = time_passes(args.min_time, lambda: [tok.encode(d, add_special_tokens=False) for d in docs])
    batch = time_passes(args.min_time,
                        lambda: encodings.__setitem__(slice(None), tok.encode_batch(docs, add_special_tokens=False)))
    ids = [e.ids for e in encodings]
    ntokens = sum(len(i) for i in ids)
    dec = time_passes(args.min_time, lambda: [tok.decode(i, skip_special_tokens=False) for i in ids])
    threads = os.environ.get("RAYON_NUM_THREADS", str(os.cpu_count()))
    print(f"HF tokenizers {tokenizers.__version__}, {path} ({tok.get_vocab_size()} tokens) on {args.text}: "
          f"{len(docs)} documents, {nbytes / 1e6:.2f} MB, {ntokens} tokens ({nbytes / ntokens:.2f} bytes/token)")
    print(f"  encode, 1 thread      {nbytes / 1e6 / one:8.2f} MB/s")
    print(f"  encode_batch, {threads} threads {nbytes / 1e6 / batch:8.2f} MB/s")
    print(f"  decode, 1 thread      {nbytes / 1e6 / dec:8.2f} MB/s")


if __name__ == "__main__":
    main()
