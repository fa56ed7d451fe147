"""Plain vs textbook vs chunked-fused generalised-JSD loss: peak memory and time, forward+backward.

For each case (tokens T, hidden H, vocabulary V) the script runs, each in a fresh subprocess so that
peaks do not leak between measurements:

* `plain`: `distillation_loss(student_hidden @ W_s.T, teacher_hidden @ W_t.T, mask, divergence=
  "jsd")` with autograd (teacher logits under `no_grad`), i.e. what a trainer writes by hand with
  this package;
* `textbook`: a minimal hand-written torch JSD (mixture by `logsumexp` of the stacked log-probs,
  KL as `sum p (log p - log m)`) with autograd: a leaner baseline in the style of common trainer
  code, the yardstick for the plain path;
* `fused`: `fused_linear_distillation_loss(...)` with the default `chunk_size=1024`;
* `liger` (CUDA only, when `liger_kernel` imports): `LigerFusedLinearJSDLoss` with soft weight 1.

Memory is measured as the peak *added* by one forward+backward over what is held before it
(inputs, weights): on CUDA with `torch.cuda.max_memory_allocated`; on CPU as the resident-set
high-water mark (`VmHWM` of `/proc/self/status`, reset through `/proc/self/clear_refs` after a
warm-up) minus the resident set before the call. `tracemalloc` does not see torch's CPU
allocations, so it is not used. Time is the median wall time over `--reps` runs after
`--warmup` untimed runs (default 1).

On a shared machine the methods of a case run **interleaved**: `--rounds` rounds, each running
every method once (in a rotated order), and the summary reports per-method medians over the
rounds, the ratios of those medians, and the median of the per-round (paired) ratios. Each
measurement records the 1-minute load average before it and the torch thread count.

A case whose predicted peak (extrapolated linearly in T*V from the largest smaller case measured
for that method) exceeds `--mem-limit-gib` is not run, and says so; the child also runs under
`RLIMIT_AS` so an unexpected peak fails cleanly instead of exhausting a shared machine.

Usage:
  python benchmarks/bench_losses.py                       # the full grid, CPU or CUDA
  python benchmarks/bench_losses.py --T 2048 --H 576 --V 49152 --rounds 5 --threads 2 \
      --out results/bench_losses.json                     # the headline case of docs/lm/losses.md
  python benchmarks/bench_losses.py --device cuda --T 4096 --H 1024 --V 151936 \
      --dtype bfloat16 --methods plain fused liger        # the GPU session's case
Prints one JSON line per measurement and a JSON summary with the ratios; `--out` writes it.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- worker side


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_hwm() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak resident set size (VmHWM), Linux >= 4.0


def _textbook_jsd(zs, zt, beta):
    import torch

    ls = torch.log_softmax(zs.float(), -1)
    lt = torch.log_softmax(zt.float(), -1)
    lw = torch.tensor([math.log(beta), math.log1p(-beta)], dtype=ls.dtype, device=ls.device)
    lm = torch.logsumexp(torch.stack([lt + lw[0], ls + lw[1]]), 0)
    to_t = (lt.exp() * (lt - lm)).sum(-1)
    to_s = (ls.exp() * (ls - lm)).sum(-1)
    return (beta * to_t + (1 - beta) * to_s).mean()


def worker(args) -> dict:
    import torch

    from sdtheory.lm.losses import distillation_loss, fused_linear_distillation_loss

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    T, H, V = args.T, args.H, args.V
    hs = (torch.randn(1, T, H, device=dev) / math.sqrt(H)).to(dtype).requires_grad_(True)
    ht = (torch.randn(1, T, H, device=dev) / math.sqrt(H)).to(dtype)
    ws = (torch.randn(V, H, device=dev) * 2.0).to(dtype).requires_grad_(True)
    wt = (torch.randn(V, H, device=dev) * 2.0).to(dtype)
    mask = torch.ones(1, T, dtype=torch.bool, device=dev)
    beta = 0.5

    if args.method == "liger":
        from liger_kernel.chunked_loss import LigerFusedLinearJSDLoss

        liger = LigerFusedLinearJSDLoss(weight_hard_loss=0.0, weight_soft_loss=1.0, beta=beta)
        labels = torch.zeros(T, dtype=torch.long, device=dev)
        # newer versions take the output biases as positional arguments
        no_bias = (
            (None, None) if "student_bias" in inspect.signature(liger.forward).parameters else ()
        )

    def step():
        if args.method == "plain":
            zs = hs @ ws.T
            with torch.no_grad():
                zt = ht @ wt.T
            loss = distillation_loss(zs, zt, mask, divergence="jsd", beta=beta)
        elif args.method == "textbook":
            zs = hs @ ws.T
            with torch.no_grad():
                zt = ht @ wt.T
            loss = _textbook_jsd(zs, zt, beta)
        elif args.method == "fused":
            loss = fused_linear_distillation_loss(
                hs, ws, ht, wt, mask, divergence="jsd", beta=beta, chunk_size=args.chunk_size
            )
        else:
            loss = liger(hs.view(T, H), ws, ht.view(T, H), wt, labels, *no_bias)
        loss.backward()
        return loss.item()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    value = float("nan")
    for _ in range(args.warmup):  # allocator, kernels, libraries
        value = step()
        hs.grad = ws.grad = None
    sync()
    times = []
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _status_kib("VmRSS") * 1024
        _reset_hwm()
    load = os.getloadavg()[0]  # other jobs on the machine, just before the timed steps
    for _ in range(args.reps):
        t0 = time.perf_counter()
        value = step()
        sync()
        times.append(time.perf_counter() - t0)
        hs.grad = ws.grad = None
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
        meter = "torch.cuda.max_memory_allocated"
    else:
        peak = _status_kib("VmHWM") * 1024 - base
        meter = "VmHWM-VmRSS (resident set high-water mark)"
    return {
        "method": args.method,
        "T": T,
        "H": H,
        "V": V,
        "dtype": args.dtype,
        "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "load_1min": load,
        "peak_gib": peak / 2**30,
        "time_s": statistics.median(times),
        "times_s": times,
        "loss": value,
        "memory_meter": meter,
        "status": "ok",
    }


# ----------------------------------------------------------------------------- driver side


def run_child(args, method, T, H, V, limit_gib) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        "--method",
        method,
        "--T",
        str(T),
        "--H",
        str(H),
        "--V",
        str(V),
        "--device",
        args.device,
        "--dtype",
        args.dtype,
        "--reps",
        str(args.reps),
        "--chunk-size",
        str(args.chunk_size),
        "--warmup",
        str(args.warmup),
        "--threads",
        str(args.threads),
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))

    def limit():
        if args.device == "cpu" and limit_gib:
            cap = int((limit_gib + 3) * 2**30)  # + interpreter, libraries, inputs
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, preexec_fn=limit)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        return {"method": method, "T": T, "H": H, "V": V, "status": f"failed: {tail[0][:200]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _measure(args, method, T, H, V, limit_gib, done) -> dict:
    """One measurement in a fresh subprocess, unless its predicted peak exceeds the limit."""
    ok = [r for r in done if r["method"] == method and r["status"] == "ok"]
    if args.device == "cpu" and ok:
        ref = max(ok, key=lambda r: r["T"] * r["V"])
        predicted = ref["peak_gib"] * (T * V) / (ref["T"] * ref["V"])
        if predicted > limit_gib:
            return {
                "method": method,
                "T": T,
                "H": H,
                "V": V,
                "status": f"skipped: predicted peak {predicted:.1f} GiB > limit "
                f"{limit_gib:.1f} GiB on this machine",
                "predicted_peak_gib": predicted,
            }
    print(f"running {method} T={T} H={H} V={V} ...", file=sys.stderr, flush=True)
    return run_child(args, method, T, H, V, limit_gib)


RATIOS = [("plain", "textbook"), ("fused", "textbook"), ("fused", "plain"), ("fused", "liger")]


def summarize(results: list[dict], cases) -> list[dict]:
    """Per case: per-method medians over rounds, ratios of medians and medians of paired ratios."""
    summary = []
    for T, H, V in cases:
        row = {"T": T, "H": H, "V": V}
        mine = [r for r in results if (r["T"], r["H"], r["V"]) == (T, H, V)]
        ok = {}
        for m in dict.fromkeys(r["method"] for r in mine):
            runs = [r for r in mine if r["method"] == m]
            good = [r for r in runs if r["status"] == "ok"]
            row[f"{m}_status"] = "ok" if good else runs[-1]["status"]
            if good:
                ok[m] = {r.get("round", 0): r for r in good}
                row[f"{m}_time_s"] = round(statistics.median(r["time_s"] for r in good), 3)
                row[f"{m}_peak_gib"] = round(statistics.median(r["peak_gib"] for r in good), 3)
                row[f"{m}_times_s"] = [round(r["time_s"], 3) for r in good]
                row[f"{m}_load_1min"] = [round(r.get("load_1min", math.nan), 2) for r in good]
            elif "predicted_peak_gib" in runs[-1]:
                row[f"{m}_predicted_peak_gib"] = round(runs[-1]["predicted_peak_gib"], 2)
        for a, b in RATIOS:
            if a in ok and b in ok:
                for q, key in (("time", "time_s"), ("memory", "peak_gib")):
                    den = row[f"{b}_{key}"]  # a peak below the meter's page size reads as 0
                    row[f"{a}_over_{b}_{q}"] = round(row[f"{a}_{key}"] / den, 3) if den else None
                paired = [ok[a][k]["time_s"] / ok[b][k]["time_s"] for k in ok[a] if k in ok[b]]
                row[f"{a}_over_{b}_time_paired_median"] = round(statistics.median(paired), 3)
            elif a in ok and f"{b}_predicted_peak_gib" in row:
                row[f"{a}_over_{b}_memory_vs_predicted"] = round(
                    row[f"{a}_peak_gib"] / row[f"{b}_predicted_peak_gib"], 4
                )
        summary.append(row)
    return summary


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, nargs="+", default=[1024, 4096], help="tokens per step")
    p.add_argument("--H", type=int, nargs="+", default=[576, 1024], help="hidden sizes")
    p.add_argument("--V", type=int, nargs="+", default=[49152, 151936], help="vocabulary sizes")
    p.add_argument(
        "--methods",
        nargs="+",
        default=None,
        help="default: plain textbook fused (+ liger on CUDA when installed)",
    )
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--dtype", default="float32", help="float32 or bfloat16")
    p.add_argument("--reps", type=int, default=2, help="timed repetitions after the warm-up")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs before the timed ones")
    p.add_argument(
        "--rounds", type=int, default=1, help="interleaved rounds of every method per case"
    )
    p.add_argument(
        "--threads", type=int, default=0, help="torch threads in each worker (0: torch default)"
    )
    p.add_argument("--chunk-size", type=int, default=1024, help="tokens per chunk (fused)")
    p.add_argument(
        "--mem-limit-gib",
        type=float,
        default=None,
        help="skip/abort CPU cases above this peak (default: 60%% of MemAvailable)",
    )
    p.add_argument("--out", type=Path, default=None, help="write the JSON summary here")
    p.add_argument(
        "--prior",
        type=Path,
        nargs="*",
        default=[],
        help="earlier --out files whose measurements seed the memory predictions",
    )
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--method", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.worker:
        args.T, args.H, args.V = args.T[0], args.H[0], args.V[0]
        print(json.dumps(worker(args)))
        return None

    methods = args.methods
    if methods is None:
        methods = ["plain", "textbook", "fused"]
        if args.device == "cuda":
            try:
                import liger_kernel  # noqa: F401

                methods.append("liger")
            except ImportError:
                pass
    limit_gib = args.mem_limit_gib
    if limit_gib is None and args.device == "cpu":
        with open("/proc/meminfo") as f:
            avail = next(int(x.split()[1]) for x in f if x.startswith("MemAvailable"))
        limit_gib = 0.6 * avail / 2**20
    cases = sorted(
        ((T, H, V) for T in args.T for H in args.H for V in args.V), key=lambda c: c[0] * c[2]
    )
    prior = [
        r
        for f in args.prior
        for r in json.loads(f.read_text())["measurements"]
        if r["status"] == "ok" and r.get("device", "cpu") == args.device
    ]
    results = []
    for T, H, V in cases:
        for rnd in range(args.rounds):
            k = rnd % len(methods)
            for method in methods[k:] + methods[:k]:  # rotate: no method always runs first
                res = _measure(args, method, T, H, V, limit_gib, prior + results)
                res["round"] = rnd
                print(json.dumps(res), flush=True)
                results.append(res)
    summary = summarize(results, cases)
    out = {
        "device": args.device,
        "dtype": args.dtype,
        "chunk_size": args.chunk_size,
        "reps": args.reps,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "threads": args.threads or "torch default",
        "cpu_count": os.cpu_count(),
        "memory_meter": "torch.cuda.max_memory_allocated"
        if args.device == "cuda"
        else "VmHWM - VmRSS of a subprocess per measurement (RSS high-water mark)",
        "cases": summary,
        "measurements": results,
    }
    print(json.dumps({"summary": summary}, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
