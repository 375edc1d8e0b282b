#!/usr/bin/env python3
"""PyTorch peers of rpt's GPU benchmarks, run beside them in one gpu-check call.

Each part reads the JSON that the matching `rpt_bench` command wrote, so both sides run
exactly the same shapes and the same model:

  --kernels FILE   rpt_bench kernels --json FILE: attention forward/backward through
                   torch.nn.functional.scaled_dot_product_attention with the flash and
                   cuDNN backends (bf16) and the memory-efficient backend (fp32), and
                   Linear forward/backward through torch.matmul (fp32 with TF32 off, bf16);
  --training FILE  rpt_bench training --json FILE: one training step (forward, cross
                   entropy, backward, fused AdamW) of the same model as Hugging Face
                   transformers' Qwen2ForCausalLM with SDPA attention, in bf16 autocast
                   (fp32 master weights) and in fp32 (TF32 off);
  --training-124m FILE  the same for the 124M-class preset, bf16 autocast only;
  --decode FILE    rpt_bench decode --json FILE: greedy KV-cache decoding with
                   model.generate at the same batch sizes, prompt and new-token counts,
                   in bf16 and fp32, prefill time subtracted (rpt's figure excludes it).

Always measured first, in the same run: the ceilings the figures are read against
(a bf16 and an fp32 8192^3 matmul, a device-to-device copy). Every part is wrapped so
that a failure is recorded in the output JSON with its error and the others still run.
Writes one JSON object to --json. Timings: CUDA events, warm-up calls excluded.
"""
import argparse
import json
import sys
import time
import traceback


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernels", help="rpt_bench kernels JSON (shapes)")
    ap.add_argument("--training", help="rpt_bench training JSON (model config, batch, seq)")
    ap.add_argument("--training-124m", help="the same for the 124M-class preset (bf16 autocast only)")
    ap.add_argument("--decode", help="rpt_bench decode JSON (model config, batches, prompt, gen)")
    ap.add_argument("--json", required=True, help="where to write the results")
    ap.add_argument("--min-seconds", type=float, default=0.2, help="measured time per timed op")
    ap.add_argument("--check", action="store_true", help="only check that torch sees a GPU, then exit")
    return ap.parse_args()


def cuda_time(torch, fn, min_seconds, warmup=2):
    """Mean seconds per call of fn, timed with CUDA events after `warmup` calls."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    calls, elapsed = 0, 0.0
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    t0 = time.perf_counter()
    while calls < 3 or time.perf_counter() - t0 < min_seconds:
        fn()
        calls += 1
        if calls % 4 == 0:
            torch.cuda.synchronize()
    stop.record()
    torch.cuda.synchronize()
    elapsed = start.elapsed_time(stop) / 1e3
    return elapsed / calls


def guarded(results, key, fn):
    """Runs one part; records its error instead of stopping the others."""
    t0 = time.perf_counter()
    try:
        results[key] = fn()
    except Exception as e:  # noqa: BLE001 - every failure is a result here
        results[key] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=4)}
    print(f"torch_gpu: {key} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)


def ceilings(torch, min_seconds):
    out = {}
    n = 8192
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        torch.backends.cuda.matmul.allow_tf32 = False
        a = torch.randn(n, n, device="cuda", dtype=dtype)
        b = torch.randn(n, n, device="cuda", dtype=dtype)
        s = cuda_time(torch, lambda: torch.matmul(a, b), min_seconds)
        out[f"matmul_{name}_tflops"] = 2.0 * n**3 / s * 1e-12
        del a, b
    x = torch.empty(1 << 28, device="cuda", dtype=torch.float32)  # 1 GiB
    y = torch.empty_like(x)
    s = cuda_time(torch, lambda: y.copy_(x), min_seconds)
    out["copy_gbs"] = 2.0 * x.numel() * 4 / s * 1e-9  # bytes read + written
    return out


def attention_peer(torch, shape, min_seconds):
    """SDPA at rpt's (B, T, H, KVH, D), causal, per backend: forward and backward ms."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    import torch.nn.functional as F

    B, T, H, KVH, D = (shape[k] for k in ("B", "T", "H", "KVH", "D"))
    fwd_flop = 2.0 * B * H * T * T * D
    row = {k: shape[k] for k in ("B", "T", "H", "KVH", "D")}
    backends = (("flash_bf16", SDPBackend.FLASH_ATTENTION, torch.bfloat16),
                ("cudnn_bf16", SDPBackend.CUDNN_ATTENTION, torch.bfloat16),
                ("efficient_fp32", SDPBackend.EFFICIENT_ATTENTION, torch.float32))
    for name, backend, dtype in backends:
        try:
            q = torch.randn(B, H, T, D, device="cuda", dtype=dtype, requires_grad=True)
            k = torch.randn(B, KVH, T, D, device="cuda", dtype=dtype, requires_grad=True)
            v = torch.randn(B, KVH, T, D, device="cuda", dtype=dtype, requires_grad=True)
            gqa = {"enable_gqa": True} if KVH != H else {}
            with sdpa_kernel(backend):
                fwd = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, **gqa)
                s_fwd = cuda_time(torch, fwd, min_seconds)
                out = fwd()
                dout = torch.randn_like(out)
                bwd = lambda: torch.autograd.grad(out, (q, k, v), dout, retain_graph=True)
                s_bwd = cuda_time(torch, bwd, min_seconds)
            row[name] = {"forward_ms": s_fwd * 1e3, "backward_ms": s_bwd * 1e3,
                         "forward_tflops": fwd_flop / s_fwd * 1e-12, "backward_tflops": 2.5 * fwd_flop / s_bwd * 1e-12}
        except Exception as e:  # noqa: BLE001 - a backend may not support a shape
            row[name] = {"error": f"{type(e).__name__}: {e}"}
    return row


def matmul_peer(torch, shape, min_seconds):
    """out = x @ w.T, din = dout @ w, dW = dout.T @ x at rpt's (N, IC, OC)."""
    N, IC, OC = shape["N"], shape["IC"], shape["OC"]
    flop = 2.0 * N * IC * OC
    row = {"N": N, "IC": IC, "OC": OC}
    torch.backends.cuda.matmul.allow_tf32 = False
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        x = torch.randn(N, IC, device="cuda", dtype=dtype)
        w = torch.randn(OC, IC, device="cuda", dtype=dtype)
        dout = torch.randn(N, OC, device="cuda", dtype=dtype)
        s_fwd = cuda_time(torch, lambda: x @ w.t(), min_seconds)
        s_bwd = cuda_time(torch, lambda: (dout @ w, dout.t() @ x), min_seconds)
        row[name] = {"forward_ms": s_fwd * 1e3, "backward_ms": s_bwd * 1e3,
                     "forward_tflops": flop / s_fwd * 1e-12, "backward_tflops": 2 * flop / s_bwd * 1e-12}
    return row


def kernels(torch, path, min_seconds):
    with open(path) as f:
        ours = json.load(f)
    return {"attention": [attention_peer(torch, s, min_seconds) for s in ours["attention"]],
            "matmul": [matmul_peer(torch, s, min_seconds) for s in ours["matmul"]]}


def hf_model(torch, config_dict, dtype):
    """Qwen2ForCausalLM with SDPA attention, built from rpt's config.json fields."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config.from_dict(dict(config_dict))
    model = None
    # transformers 5 names the argument `dtype`, 4.x `torch_dtype`.
    for kwargs in ({"attn_implementation": "sdpa", "dtype": dtype},
                   {"attn_implementation": "sdpa", "torch_dtype": dtype}):
        try:
            model = Qwen2ForCausalLM._from_config(config, **kwargs)
            break
        except TypeError:
            continue
    if model is None:
        config._attn_implementation = "sdpa"
        model = Qwen2ForCausalLM(config)
    return model.to(dtype).cuda()


def training(torch, path, min_seconds, variants=(("bf16_autocast", True), ("fp32", False))):
    import torch.nn.functional as F

    with open(path) as f:
        ours = json.load(f)
    cfg, B, T = ours["config"], ours["batch"], ours["seq"]
    V = cfg["vocab_size"]
    flops_per_token = ours.get("flops_per_token")
    out = {"batch": B, "seq": T}
    torch.backends.cuda.matmul.allow_tf32 = False
    for name, autocast in variants:
        model = hf_model(torch, cfg, torch.float32)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
        ids = torch.randint(0, V, (B, T), device="cuda")
        labels = torch.randint(0, V, (B, T), device="cuda")

        def step():
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
                logits = model(input_ids=ids).logits
            loss = F.cross_entropy(logits.float().view(-1, V), labels.view(-1))
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        s = cuda_time(torch, step, max(min_seconds, 1.0), warmup=3)
        row = {"seconds_per_step": s, "tokens_per_s": B * T / s}
        if flops_per_token:
            row["tflops"] = flops_per_token * B * T / s * 1e-12
        out[name] = row
        del model, opt
        torch.cuda.empty_cache()
    return out


def decode(torch, path, min_seconds):
    with open(path) as f:
        ours = json.load(f)
    cfg, V = ours["config"], ours["config"]["vocab_size"]
    out = {"runs": []}
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        model = hf_model(torch, cfg, dtype).eval()
        for run in ours.get("throughput", []):
            B, P, G = run["batch"], run["prompt"], run["gen"]
            ids = torch.randint(0, V, (B, P), device="cuda")
            mask = torch.ones_like(ids)

            def gen(n):
                with torch.no_grad():
                    return model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                                          do_sample=False, pad_token_id=0, eos_token_id=None)

            gen(2)  # warm-up (allocations, kernel selection)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            gen(1)
            torch.cuda.synchronize()
            prefill = time.perf_counter() - t0
            t0 = time.perf_counter()
            gen(G)
            torch.cuda.synchronize()
            total = time.perf_counter() - t0
            decode_s = max(total - prefill, 1e-9)
            out["runs"].append({"dtype": name, "batch": B, "prompt": P, "gen": G, "seconds": decode_s,
                                "prefill_seconds": prefill, "tokens_per_s": B * (G - 1) / decode_s})
        del model
        torch.cuda.empty_cache()
    return out


def main():
    args = parse_args()
    results = {"peer": "torch_gpu"}
    try:
        import torch
    except Exception as e:  # noqa: BLE001
        results["error"] = f"torch not importable: {e}"
        json.dump(results, open(args.json, "w"), indent=2)
        print(f"torch_gpu: {results['error']}", file=sys.stderr)
        return 2
    results["torch"] = torch.__version__
    results["cuda_available"] = torch.cuda.is_available()
    if not torch.cuda.is_available():
        results["error"] = "torch sees no GPU"
        json.dump(results, open(args.json, "w"), indent=2)
        print("torch_gpu: torch sees no GPU", file=sys.stderr)
        return 2
    results["gpu"] = torch.cuda.get_device_name(0)
    try:
        import transformers
        results["transformers"] = transformers.__version__
    except Exception as e:  # noqa: BLE001
        results["transformers"] = f"not importable: {e}"
    if args.check:
        json.dump(results, open(args.json, "w"), indent=2)
        return 0
    guarded(results, "ceilings", lambda: ceilings(torch, args.min_seconds))
    if args.kernels:
        guarded(results, "kernels", lambda: kernels(torch, args.kernels, args.min_seconds))
    if args.training:
        guarded(results, "training", lambda: training(torch, args.training, args.min_seconds))
    if args.training_124m:
        guarded(results, "training_124m",
                lambda: training(torch, args.training_124m, args.min_seconds, (("bf16_autocast", True),)))
    if args.decode:
        guarded(results, "decode", lambda: decode(torch, args.decode, args.min_seconds))
    with open(args.json, "w") as f:
        json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
