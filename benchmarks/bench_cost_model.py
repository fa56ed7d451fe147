"""Calibrate the cost model (`sdtheory.lm.cost`) on this machine: measured against predicted.

In one run, on one device, it measures:

* `matmul`: the peak FLOP/s of a square matrix product (n = 2048 on CPU, 8192 on CUDA);
* `bandwidth`: memory bandwidth of a 256 MiB tensor copy (bytes read + written per second);
* `train`: the model's forward + backward on B x T tokens (median of `--reps`): tokens/s, and
  the FLOP/s it implies through `train_flops_per_token` (causal), as a fraction of `matmul`;
* `activations`: bytes saved for backward per token (autograd's saved tensors other than the
  parameters, each storage once), and per layer in units of the hidden size H after taking off
  the logits (V values per token);
* `decode`: greedy generation with a KV cache (B sequences, P prompt tokens, G new tokens,
  prefill excluded): seconds per step against the bandwidth floor
  `decode_bytes_per_step / bandwidth`;
* `dispatch`: the same decode with a model of the same depth and width 64 (vocabulary 320):
  the per-step cost of launching the layers, which no bandwidth can remove.

Usage:
  python benchmarks/bench_cost_model.py                            # SmolLM2, CPU fp32
  python benchmarks/bench_cost_model.py --device cuda --dtype bf16 # on a GPU
  python benchmarks/bench_cost_model.py --model tiny --reps 1      # a smoke run
Prints a JSON summary (and writes it with `--out`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path


def _log(msg: str) -> None:
    print(f"[bench_cost_model] {msg}", file=sys.stderr, flush=True)


def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device, reps: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(reps):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def matmul_flops(device, dtype, reps: int) -> float:
    import torch

    n = 8192 if device.type == "cuda" else 2048
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n**3 / _timed(lambda: a @ b, device, reps)


def bandwidth(device, reps: int) -> float:
    import torch

    src = torch.empty(64 << 20, device=device, dtype=torch.float32).fill_(1.0)
    dst = torch.empty_like(src)
    return 2 * src.numel() * 4 / _timed(lambda: dst.copy_(src), device, reps)


def _model(name: str, device, layers: int | None = None):
    from sdtheory.lm.models import load_smollm2, small_model, tiny_tokenizer

    if name == "smollm2" and layers is None:
        model, tok = load_smollm2()
    else:
        tok = tiny_tokenizer()
        model = small_model(
            tok, hidden_size=64, num_layers=layers or 2, num_heads=4, num_kv_heads=2
        )
    return model.to(device), tok


def _shape(model):
    from sdtheory.lm.cost import ModelShape

    return ModelShape.from_config(model.config, sum(p.numel() for p in model.parameters()))


def train(model, device, dtype, batch: int, context: int, reps: int) -> dict:
    import torch

    from sdtheory.lm.cost import train_flops_per_token

    shape = _shape(model)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, shape.vocab, (batch, context), generator=g).to(device)
    model.train()
    auto = device.type == "cuda" and dtype != torch.float32

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=auto):
            loss = model(ids, labels=ids).loss
        loss.backward()
        model.zero_grad(set_to_none=True)

    sec = _timed(step, device, reps)
    saved = {}
    params = {q.untyped_storage().data_ptr() for q in model.parameters()}

    def pack(t):  # activations only: linear layers also save their weights, which are not
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            saved[ptr] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast(device.type, dtype=dtype, enabled=auto):
            loss = model(ids, labels=ids).loss
    del loss
    model.eval()
    tokens = batch * context
    flops = train_flops_per_token(shape, context) * tokens
    act = sum(saved.values()) / tokens
    logits = shape.vocab * (4 if not auto else 2)
    return dict(
        batch=batch,
        context=context,
        seconds=sec,
        tokens_per_s=tokens / sec,
        flops_per_token=flops / tokens,
        achieved_flops=flops / sec,
        saved_bytes_per_token=act,
        saved_bytes_per_token_layer_over_H=(act - logits) / shape.n_layers / shape.hidden,
    )


def decode(model, device, dtype, batch: int, prompt: int, new: int, reps: int, bw: float) -> dict:
    import torch

    from sdtheory.lm.cost import decode_bytes_per_step

    shape = _shape(model)
    model = model.to(dtype)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, shape.vocab, (batch, prompt), generator=g).to(device)
    mask = torch.ones_like(ids)
    kw = dict(do_sample=False, min_new_tokens=new, max_new_tokens=new, pad_token_id=0)

    @torch.no_grad()
    def gen():
        model.generate(input_ids=ids, attention_mask=mask, **kw)

    @torch.no_grad()
    def prefill():
        model(input_ids=ids, attention_mask=mask, use_cache=True)

    total, pre = _timed(gen, device, reps), _timed(prefill, device, reps)
    step = max(total - pre, 1e-9) / new
    wbytes = torch.finfo(dtype).bits // 8
    floor = decode_bytes_per_step(
        shape, batch, prompt + new // 2, weight_bytes=wbytes, kv_bytes=wbytes
    )
    model.to(torch.float32)
    return dict(
        batch=batch,
        prompt=prompt,
        new=new,
        seconds_per_step=step,
        tokens_per_s=batch / step,
        bytes_per_step=floor,
        bandwidth_floor_s=floor / bw,
        step_over_floor=step / (floor / bw),
    )


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--model", default="smollm2", choices=["smollm2", "tiny"])
    p.add_argument("--batch", type=int, default=2, help="training batch")
    p.add_argument("--context", type=int, default=128, help="training context T")
    p.add_argument("--decode-batch", type=int, default=4)
    p.add_argument("--prompt", type=int, default=64)
    p.add_argument("--new", type=int, default=16)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = as is)")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device
    )
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    t0 = time.perf_counter()
    peak = matmul_flops(device, dtype, a.reps)
    bw = bandwidth(device, a.reps)
    _log(
        f"matmul {peak / 1e9:.1f} GFLOP/s, copy {bw / 1e9:.1f} GB/s ({time.perf_counter() - t0:.0f}s)"
    )
    model, _ = _model(a.model, device)
    tr = train(model, device, dtype, a.batch, a.context, a.reps)
    tr["fraction_of_matmul_peak"] = tr["achieved_flops"] / peak
    _log(f"train {tr['tokens_per_s']:.0f} tokens/s ({time.perf_counter() - t0:.0f}s)")
    dec = decode(model, device, dtype, a.decode_batch, a.prompt, a.new, a.reps, bw)
    _log(f"decode {dec['seconds_per_step'] * 1e3:.1f} ms/step ({time.perf_counter() - t0:.0f}s)")
    narrow, _ = _model(a.model, device, layers=model.config.num_hidden_layers)
    disp = decode(narrow, device, dtype, a.decode_batch, a.prompt, a.new, a.reps, bw)
    _log(f"dispatch {disp['seconds_per_step'] * 1e3:.1f} ms/step ({time.perf_counter() - t0:.0f}s)")
    out = dict(
        device=torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
        threads=torch.get_num_threads(),
        load_average=list(os.getloadavg()),  # other processes skew CPU timings: say how many
        dtype=a.dtype,
        model=a.model,
        params=sum(p.numel() for p in model.parameters()),
        matmul_flops=peak,
        bandwidth_bytes_per_s=bw,
        train=tr,
        decode=dec,
        dispatch=dict(
            layers=narrow.config.num_hidden_layers,
            hidden=narrow.config.hidden_size,
            seconds_per_step=disp["seconds_per_step"],
        ),
    )
    text = json.dumps(out, indent=1)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")
    return out


if __name__ == "__main__":
    main()
