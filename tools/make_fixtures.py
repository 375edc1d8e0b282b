#!/usr/bin/env python3
"""Builds the Hugging Face reference fixtures that rpt's tests compare against.

Not needed to build or test rpt: the fixtures it writes are committed. The model
fixtures need torch, transformers and safetensors; the tokenizer fixtures need only
tokenizers (`pip install tokenizers`).

    python3 tools/make_fixtures.py                      # (re)writes tests/fixtures/hf*/
    python3 tools/make_fixtures.py --only tokenizers    # only the tokenizer fixtures
    python3 tools/make_fixtures.py --only models        # only the model fixtures
    python3 tools/make_fixtures.py --only bf16          # only the bf16 references
    python3 tools/make_fixtures.py --check DIR          # transformers reads an rpt checkpoint

Models (tests/fixtures/hf/<name>/): tiny random Qwen2ForCausalLM models saved with
save_pretrained, plus reference.safetensors holding, for fixed input ids, the fp32
logits, the loss (mean cross-entropy over shifted tokens, as transformers computes it
from labels = input_ids), the gradient of that loss for every parameter
("grad.<parameter name>") and a greedy continuation ("greedy_ids"). Weights are drawn far wider than the 0.02 init so logits
are far from uniform and every parameter matters to the loss.

bf16 references (tests/fixtures/hf/<name>/reference_bf16.safetensors): the committed
model loaded by transformers with torch_dtype=bfloat16 (every weight, activation and
gradient in bf16, eager attention with its fp32 softmax), run on the same input ids:
its logits, loss and parameter gradients, stored as fp32. Written from the committed
model.safetensors, so the fp32 fixtures are left as they are. rpt's bf16 recipe rounds
at fewer points (fp32 LM head, fp32 gradients), so the tests compare within a bf16
tolerance, not bit for bit. Made with torch 1.13 (Debian python3-torch) and
transformers 4.48.3, which reproduce the fp32 references to 3e-6.

Tokenizer (tests/fixtures/hf_tokenizer/): a byte-level BPE trained with `tokenizers`
using exactly Qwen2's normaliser, pre-tokeniser, decoder and added tokens, and
cases.json: for each text of a varied set, the ids HF produces and HF's decode of them.
Its merges are ["a", "b"] pairs, as tokenizers writes them.

Tokenizer with added-token options (tests/fixtures/hf_tokenizer_added/): the same
pipeline, trained with BpeTrainer(special_tokens=...) so that the special tokens are
also entries of model.vocab (as in many published tokenizers), plus added tokens with
every flag tokenizers has (normalized, lstrip, rstrip, single_word, special, content
that is a vocab entry, content in ByteLevel characters, an rstrip token whose white
space holds another token's match), a token listed twice (the last flags win), an entry
whose "id" tokenizers ignores and an empty content. Its merges are written as "a b"
strings (the older form). cases.json covers the base texts and texts aimed at each flag.

Check mode: DIR is written by `rpt_tests` (HfModel.WritesCheckpointForTransformers
writes it when RPT_HF_CHECK_DIR is set) and holds an rpt checkpoint plus
rpt_logits.safetensors; transformers loads the checkpoint and its logits must match.
"""

import argparse
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "fixtures")

SEED = 1234
BATCH, SEQ = 2, 12          # fixed inputs: (B, T)
WEIGHT_STD = 0.2            # wide random weights: logits far from uniform
NORM_JITTER = 0.2           # norm weights 1 +- this
GREEDY_PROMPT, GREEDY_NEW_TOKENS = 5, 8  # greedy generation reference

# name: (vocab, hidden, layers, heads, kv_heads, head_dim, intermediate, tied).
# GQA ratios 1, 2 and 6; head_dim 8, 16, 64 and 128 (q_dim != hidden for most).
MODELS = {
    "tied_gqa1_hd8": (96, 32, 2, 4, 4, 8, 48, True),
    "untied_gqa2_hd16": (96, 32, 2, 4, 2, 16, 40, False),
    "untied_gqa6_hd64": (80, 24, 2, 6, 1, 64, 32, False),
    "tied_gqa2_hd128": (80, 16, 1, 2, 1, 128, 24, True),
}

# Qwen2's tokenizer.json pre-tokeniser regex, verbatim.
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")
TOKENIZER_VOCAB = 700
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<｜begin▁of▁sentence｜>", "<｜User｜>",
                  "<｜Assistant｜>"]
NON_SPECIAL_TOKENS = ["<think>", "</think>"]


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


def make_model(name, spec):
    import torch
    from safetensors.torch import save_file
    from transformers import Qwen2Config, Qwen2ForCausalLM
    vocab, hidden, layers, heads, kv, head_dim, inter, tied = spec
    config = Qwen2Config(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                         num_key_value_heads=kv, head_dim=head_dim, intermediate_size=inter,
                         max_position_embeddings=64, rope_theta=500.0, rms_norm_eps=1e-5,
                         tie_word_embeddings=tied, bos_token_id=1, eos_token_id=2, torch_dtype="float32",
                         attn_implementation="eager")
    torch.manual_seed(SEED)
    model = Qwen2ForCausalLM(config).float()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname:
                p.copy_(1.0 + NORM_JITTER * (2 * torch.rand_like(p) - 1))
            else:
                p.normal_(0.0, WEIGHT_STD)
    model.eval()  # no dropout; gradients still flow
    if model.config.head_dim != head_dim:
        raise SystemExit(f"{name}: this transformers ignores head_dim; upgrade it")

    gen = torch.Generator().manual_seed(SEED + 1)
    ids = torch.randint(0, vocab, (BATCH, SEQ), generator=gen)
    out = model(input_ids=ids, labels=ids)
    out.loss.backward()

    d = os.path.join(FIXTURES, "hf", name)
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    # Greedy continuation of the first row's prefix, by full forwards (no cache, no eos).
    greedy = ids[:1, :GREEDY_PROMPT]
    with torch.no_grad():
        for _ in range(GREEDY_NEW_TOKENS):
            nxt = model(input_ids=greedy).logits[:, -1].argmax(-1, keepdim=True)
            greedy = torch.cat([greedy, nxt], dim=1)
    ref = {"logits": out.logits.detach().float().contiguous(), "input_ids": ids.to(torch.int64).contiguous(),
           "loss": out.loss.detach().reshape(1).float(), "greedy_ids": greedy.to(torch.int64).contiguous()}
    for pname, p in model.named_parameters():
        ref["grad." + pname] = p.grad.detach().float().contiguous()
    save_file(ref, os.path.join(d, "reference.safetensors"), metadata={"format": "pt"})
    print(f"{name}: loss {out.loss.item():.6f}, {sum(p.numel() for p in model.parameters())} parameters")


def make_bf16_reference(name):
    """reference_bf16.safetensors for the committed fixture `name` (see the module doc)."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import Qwen2ForCausalLM
    d = os.path.join(FIXTURES, "hf", name)
    with open(os.path.join(d, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    # A transformers 5 config keeps rope_theta under rope_parameters; older ones read it
    # from the top level, so pass it explicitly.
    rope_theta = config.get("rope_parameters", {}).get("rope_theta", config.get("rope_theta"))
    ids = load_file(os.path.join(d, "reference.safetensors"))["input_ids"]
    model = Qwen2ForCausalLM.from_pretrained(d, torch_dtype=torch.bfloat16, attn_implementation="eager",
                                             rope_theta=rope_theta)
    model.eval()
    if model.config.head_dim != config["head_dim"]:
        raise SystemExit(f"{name}: this transformers ignores head_dim; upgrade it")
    out = model(input_ids=ids, labels=ids)
    out.loss.backward()
    ref = {"logits": out.logits.detach().float().contiguous(), "loss": out.loss.detach().reshape(1).float()}
    for pname, p in model.named_parameters():
        ref["grad." + pname] = p.grad.detach().float().contiguous()
    save_file(ref, os.path.join(d, "reference_bf16.safetensors"), metadata={"format": "pt"})
    print(f"{name}: bf16 loss {out.loss.item():.6f}")


def qwen2_pipeline(tok):
    """Qwen2's normaliser, pre-tokeniser and decoder on a BPE tokenizer."""
    from tokenizers import Regex, decoders, normalizers, pre_tokenizers
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    return tok


def write_tokenizer_fixture(tok, dirname, texts, tokenizer_json=None):
    """tokenizer.json (tok's, or the given JSON text) and cases.json: ids and decodes."""
    d = os.path.join(FIXTURES, dirname)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "tokenizer.json")
    if tokenizer_json is None:
        tok.save(path)
    else:
        with open(path, "w", encoding="utf-8") as f:
            f.write(tokenizer_json)
    cases = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False).ids
        cases.append({"text": text, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)})
    write_json(os.path.join(d, "cases.json"), cases)
    print(f"{dirname}: {tok.get_vocab_size()} tokens, {len(cases)} cases")


def make_tokenizer():
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, trainers
    tok = qwen2_pipeline(Tokenizer(models.BPE(byte_fallback=False)))
    trainer = trainers.BpeTrainer(vocab_size=TOKENIZER_VOCAB, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(training_texts(), trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in NON_SPECIAL_TOKENS])
    write_tokenizer_fixture(tok, "hf_tokenizer", test_texts())


# Added tokens of the second fixture: (content, special, normalized, lstrip, rstrip,
# single_word). "The" is a vocab entry (so it takes the vocab's id); "Ġhello" is written
# in ByteLevel characters (so it decodes to " hello"); "\n\n" lies in the white space
# "</think>" strips.
ADDED_VOCAB = 420
ADDED_TOKENS = [
    ("<think>", False, True, False, False, False),
    ("</think>", False, False, False, True, False),
    ("<tool_call>", False, False, True, False, False),
    ("[MASK]", True, False, True, True, False),
    ("Café", False, True, False, False, False),
    ("Cafe\u0301", False, False, False, False, False),
    ("naïve", False, True, False, False, True),
    ("word", False, False, False, False, True),
    ("ΑΩ", False, True, False, False, True),
    ("The", False, False, False, False, True),
    ("Ġhello", False, False, False, False, False),
    ("\n\n", False, False, False, False, False),
]


def added_token_texts():
    """Texts aimed at each added-token flag (white space and word-character classes)."""
    return [
        "<think>\nok</think>\n\n  answer <tool_call>  {\"a\": 1}\t<tool_call>",
        "a [MASK] b  [MASK]\n\n[MASK][MASK] c \u00a0[MASK]\u3000d\u0085[MASK]\u2028e",
        "Café vs Cafe\u0301 vs CAFÉ; nai\u0308ve naïve xnaïve naïve_",
        "word words sword word_ word1 (word) wordé é word -word- word\u0301 word² ₂word ‿word",
        "ΑΩ xΑΩ ΑΩ1 «ΑΩ» Α\u0301Ω ΑΩ\u0301 中ΑΩ",
        "The other BaThe The_ The. THE The\u00a0The\u3000The \u200dThe The\u200c Theory",
        "Ġhello hello Ġhello",
        "</think> \u00a0\u2003\n<think>",
        "</think>\n\n \n\nx and </think>\n \n\n\ny",
        "<|im_start|>  user\n<|im_end|>  \n<｜User｜> hi<｜Assistant｜> end \n <|im_start|>x",
        "\u0085<tool_call>\u2028[MASK]\u0085x\x1c[MASK]\x1c",
        "\u200b[MASK]\u200b \ufeff<tool_call>",
    ]


def make_added_tokens_tokenizer():
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, trainers
    tok = qwen2_pipeline(Tokenizer(models.BPE(byte_fallback=False)))
    trainer = trainers.BpeTrainer(vocab_size=ADDED_VOCAB, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=SPECIAL_TOKENS)
    tok.train_from_iterator(training_texts(), trainer=trainer)
    vocab = tok.get_vocab(with_added_tokens=False)
    assert all(t in vocab for t in SPECIAL_TOKENS), "the trainer puts special tokens in the vocab"
    assert "The" in vocab, "'The' must be a vocab entry for this fixture"
    for content, special, normalized, lstrip, rstrip, single_word in ADDED_TOKENS:
        t = AddedToken(content, special=special, normalized=normalized, lstrip=lstrip, rstrip=rstrip,
                       single_word=single_word)
        (tok.add_special_tokens if special else tok.add_tokens)([t])
    j = json.loads(tok.to_str())
    # Merges in the older "a b" form (byte-level tokens never hold a space).
    j["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in j["model"]["merges"]]
    entry = {"single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
    # <|im_start|> listed again with lstrip: tokenizers keeps its id and takes these flags.
    first = next(a for a in j["added_tokens"] if a["content"] == "<|im_start|>")
    j["added_tokens"].append(dict(entry, id=first["id"], content="<|im_start|>", lstrip=True))
    # An id tokenizers ignores (it assigns the next one), and an empty content it skips.
    j["added_tokens"].append(dict(entry, id=3, content="<|fim_pad|>"))
    j["added_tokens"].append(dict(entry, id=99999, content=""))
    text = json.dumps(j, ensure_ascii=False, indent=1) + "\n"
    tok = Tokenizer.from_str(text)  # the cases come from what tokenizers makes of the file
    write_tokenizer_fixture(tok, "hf_tokenizer_added", test_texts() + added_token_texts() + ["a<|fim_pad|>b"],
                            tokenizer_json=text)


def training_texts():
    """A small multilingual corpus: GSM8K when shared/ has it, plus the test scripts."""
    texts = []
    gsm = os.path.join(REPO, "..", "shared", "data", "gsm8k", "train.jsonl")
    if os.path.exists(gsm):
        with open(gsm, encoding="utf-8") as f:
            for i, line in enumerate(f):
                if i >= 400:
                    break
                row = json.loads(line)
                texts.append(row["question"] + "\n" + row["answer"])
    texts += test_texts() * 3
    texts += ["def main():\n    return 0\n", "Привет, мир! Как дела?", "你好，世界。今天天气很好。",
              "សួស្តី​ពិភពលោក", "The quick brown fox jumps over the lazy dog. " * 4]
    return texts


def test_texts():
    return [
        "Hello, world! This is a test.",
        "The model's weights aren't tied; we'll see. THEY'RE HERE, I'M SURE, IT'S FINE, YOU'VE WON, SHE'D GO, WE'LL SEE",
        "def f(x):\n    return x ** 2  # square\n\tif x: pass\r\n",
        "int main() { std::vector<int> v{1, 2, 3}; return v[0]; }",
        "Numbers: 1234567890 3.14159 -42 1e-5 2024-06-01 12:30:45 0x1F",
        "Digit runs 11111111111111111111 and 0000 and 9876543210987654321",
        "Whitespace   runs     here\n\n\n\nand   \t\t  tabs\t\nend   ",
        "  leading spaces and trailing spaces   ",
        "\n\n\n",
        "      ",
        "中文测试：自然语言处理很有趣。日本語のテキストも。한국어 문장입니다.",
        "Русский текст: съешь же ещё этих мягких французских булок.",
        "ភាសាខ្មែរ គឺជាភាសាផ្លូវការ",
        "Emoji: 👨‍👩‍👧‍👦 family, 👍🏽 thumbs, 🏳️‍🌈 flag, ❤️ heart",
        "Combining marks: e\u0301 a\u0308 n\u0303 Z\u0351\u0327\u0336algo",
        "Non-NFC: Cafe\u0301 vs Caf\u00e9, \u212b vs \u00c5, \u1e9b\u0323",
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\nsimple</think> 4<|im_end|>",
        "<｜begin▁of▁sentence｜><｜User｜>Solve x<｜Assistant｜><think>\nok</think><|endoftext|>",
        "<|endoftext|><|endoftext|>text<think></think>",
        "Partial <|im_sta and <think and </think >",
        "Mixed: Hello мир 世界 🌍 123 'quoted' \"double\" ...!!! ???",
        "URL https://example.com/path?a=1&b=2#frag and email a.b@c.org",
        "A\u00a0non-breaking\u2003em-space\u200bzero-width",
        "",
        "x",
    ]


def check(root):
    """Checks root, or each directory under it, written by the rpt test."""
    dirs = [root] if os.path.exists(os.path.join(root, "rpt_logits.safetensors")) else sorted(
        os.path.join(root, d) for d in os.listdir(root))
    for d in dirs:
        check_one(d)


def check_one(dir_):
    """transformers loads an rpt-written checkpoint; its logits must match rpt's."""
    from transformers import AutoModelForCausalLM
    ref = load_file(os.path.join(dir_, "rpt_logits.safetensors"))
    model = AutoModelForCausalLM.from_pretrained(os.path.join(dir_, "checkpoint"), dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    ids = ref["input_ids"].to(torch.int64)
    with torch.no_grad():
        logits = model(input_ids=ids).logits.float()
    # rpt reports log-softmax (logits up to a per-row constant): compare those.
    ours = torch.log_softmax(logits, dim=-1)
    theirs = ref["logprobs"].reshape(ours.shape)
    rel = ((ours - theirs).norm() / theirs.norm()).item()
    print(f"check {dir_}: relative error of log-softmax {rel:.3e}")
    if not rel < 1e-4:
        sys.exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", metavar="DIR", help="load an rpt-written checkpoint with transformers and compare")
    ap.add_argument("--only", choices=["models", "bf16", "tokenizers"], help="write only these fixtures")
    args = ap.parse_args()
    if args.check:
        check(args.check)
        return
    if args.only in (None, "models"):
        import torch
        torch.use_deterministic_algorithms(True)
        for name, spec in MODELS.items():
            make_model(name, spec)
    if args.only in (None, "models", "bf16"):
        for name in MODELS:
            make_bf16_reference(name)
    if args.only in (None, "tokenizers"):
        make_tokenizer()
        make_added_tokens_tokenizer()


if __name__ == "__main__":
    main()
