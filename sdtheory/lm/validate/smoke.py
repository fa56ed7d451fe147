r"""`sdtheory validate --smoke`: every code path on the device with the tiny model, in a minute.

Run this first on a new machine: it touches each part a GPU run uses, on tiny inputs, and says
which part breaks. Each check is timed and recorded in `OUT/smoke.json` (exit status 1 if any
failed; a check whose dependency is missing is `skipped`, never failed):

1. **losses**: for every divergence of `sdtheory.lm.losses.DIVERGENCES`, `distillation_loss` in
   fp32 and on bf16 logits, against float64 on the same (rounded) logits: the losses upcast, so
   both agree to 1e-4 relative. Then `fused_linear_distillation_loss` against the plain loss on
   `hidden @ weight.T`: values and student gradients, fp32 (1e-5 / 1e-4; TF32 off for these
   comparisons) and bf16 (2e-2).
2. **liger**: when `liger_kernel` imports, Liger-Kernel's `LigerFusedLinearJSDLoss` (soft
   loss only, beta 0.5, mean over tokens) against ours (`divergence="jsd"`, beta 0.5): value
   and gradients in fp32 (1e-4); `skipped` when it does not import.
3. **methods**: every method of `sdtheory.lm.methods.REGISTRY` (read at run time, so methods
   added later are covered), 2 optimiser steps with the tiny model and a tiny separate teacher,
   at the run's precision (bf16 autocast on CUDA); finite losses, and the per-step throughput
   and memory fields logged.
4. **seeds**: the same OPSD run twice from one seed gives the same rollouts and first loss.
5. **experiments**: every validation experiment (`--only` restricts them) at its `fast`
   configuration with the tiny model as the real model, through `run_validation`, into
   `OUT/experiments/` (its report is written as usual; the verdicts mean nothing).

On the CPU (`--device cpu`) the methods run in fp32 only (bf16 matrix products are about 19x
slower on CPUs without AVX512-BF16); the bf16 *loss* checks run on both devices (they are tiny).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import platform
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from ... import simio
from .. import device as D

__all__ = ["run_smoke", "task_calls"]

_N_TRAIN, _N_EVAL, _SEEDS = 8, 2, (0, 3)  # the method checks' problems (seeds: 0, and 3 twice)

_TOL = {"fp32": (1e-5, 1e-4), "bf16": (2e-2, 2e-2)}  # (value rtol, gradient rtol) fused vs plain


class Skip(Exception):
    """A check that cannot run here (a missing optional dependency)."""


@contextlib.contextmanager
def _exact_fp32():
    """TF32 off inside: the fp32 comparisons check formulas, not TF32's 10-bit mantissa."""
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-30))


def check_losses(dev: torch.device) -> str:
    """Plain losses in fp32 and bf16 against float64; the fused loss against the plain one."""
    from ..losses import DIVERGENCES, distillation_loss, fused_linear_distillation_loss

    g = torch.Generator().manual_seed(0)
    n, t, v, h = 2, 7, 97, 16
    mask = torch.rand(n, t, generator=g) > 0.2
    mask[:, 0] = True
    zs64 = 3 * torch.randn(n, t, v, generator=g, dtype=torch.float64)
    zt64 = 3 * torch.randn(n, t, v, generator=g, dtype=torch.float64)
    worst = {}
    for div in DIVERGENCES:
        for dt in (torch.float32, torch.bfloat16):
            zs, zt = zs64.to(dt).to(dev), zt64.to(dt).to(dev)
            got = distillation_loss(zs, zt, mask.to(dev), divergence=div)
            ref = distillation_loss(zs.double(), zt.double(), mask.to(dev), divergence=div)
            err = _rel(got.detach().cpu(), ref.detach().cpu())
            worst[f"{div}/{str(dt)[6:]}"] = err
            if not (math.isfinite(float(got)) and err <= 1e-4):
                raise AssertionError(f"{div} in {dt}: relative error {err:.2e} > 1e-4")
    hs64 = torch.randn(n, t, h, generator=g, dtype=torch.float64)
    ht64 = torch.randn(n, t, h, generator=g, dtype=torch.float64)
    ws64 = 2 * torch.randn(v, h, generator=g, dtype=torch.float64)
    wt64 = 2 * torch.randn(v, h, generator=g, dtype=torch.float64)
    for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        tol_v, tol_g = _TOL[name]
        for div in ("forward_kl", "jsd", "reverse_kl"):
            out = {}
            for how in ("plain", "fused"):
                hs = hs64.to(dt).to(dev).requires_grad_(True)
                ws = ws64.to(dt).to(dev).requires_grad_(True)
                ht, wt, m = ht64.to(dt).to(dev), wt64.to(dt).to(dev), mask.to(dev)
                if how == "plain":
                    loss = distillation_loss(hs @ ws.T, ht @ wt.T, m, divergence=div)
                else:
                    loss = fused_linear_distillation_loss(
                        hs, ws, ht, wt, m, divergence=div, chunk_size=5
                    )
                loss.backward()
                out[how] = (loss.detach().float().cpu(), hs.grad.cpu(), ws.grad.cpu())
            errs = [_rel(a, b) for a, b in zip(out["fused"], out["plain"], strict=True)]
            worst[f"fused-{div}/{name}"] = max(errs)
            if not (errs[0] <= tol_v and max(errs[1:]) <= tol_g):
                raise AssertionError(
                    f"fused {div} in {name}: value {errs[0]:.2e} (tol {tol_v}), gradients "
                    f"{max(errs[1:]):.2e} (tol {tol_g}) relative to the plain loss"
                )
    top = max(worst, key=worst.get)
    return f"{len(worst)} comparisons; largest relative difference {worst[top]:.1e} ({top})"


def check_liger(dev: torch.device) -> str:
    """Liger-Kernel's fused linear JSD against ours (beta 0.5), value and gradients, fp32."""
    try:
        from liger_kernel.chunked_loss import LigerFusedLinearJSDLoss
    except Exception as e:  # ImportError, or triton failing to initialise
        raise Skip(f"liger_kernel does not import ({type(e).__name__}: {e})") from None
    from ..losses import fused_linear_distillation_loss

    g = torch.Generator().manual_seed(1)
    t, v, h = 33, 211, 32
    hs0 = torch.randn(t, h, generator=g)
    ht0 = torch.randn(t, h, generator=g)
    ws0, wt0 = torch.randn(v, h, generator=g), torch.randn(v, h, generator=g)
    kwargs = dict(weight_hard_loss=0.0, weight_soft_loss=1.0, beta=0.5)
    if "compiled" in inspect.signature(LigerFusedLinearJSDLoss).parameters:
        kwargs["compiled"] = False  # torch.compile would take most of the smoke's minute
    liger = LigerFusedLinearJSDLoss(**kwargs)
    biases = "student_bias" in inspect.signature(liger.forward).parameters
    out = {}
    for how in ("ours", "liger"):
        # fresh leaves each time (`.to` returns the tensor itself when it is already there,
        # and the two gradients would then be one accumulated tensor)
        hs = hs0.to(dev, copy=True).requires_grad_(True)
        ws = ws0.to(dev, copy=True).requires_grad_(True)
        ht, wt = ht0.to(dev), wt0.to(dev)
        if how == "ours":
            mask = torch.ones(1, t, dtype=torch.bool, device=dev)
            loss = fused_linear_distillation_loss(
                hs[None], ws, ht[None], wt, mask, divergence="jsd", beta=0.5
            )
        else:
            labels = torch.zeros(t, dtype=torch.long, device=dev)
            extra = (None, None) if biases else ()
            loss = liger(hs, ws, ht, wt, labels, *extra)
        loss.backward()
        out[how] = (loss.detach().cpu(), hs.grad.cpu(), ws.grad.cpu())
    if any(a is b for a, b in zip(out["ours"], out["liger"], strict=True)):
        raise AssertionError("ours and Liger's results share a tensor")
    errs = [_rel(a, b) for a, b in zip(out["ours"], out["liger"], strict=True)]
    if max(errs) > 1e-4:
        raise AssertionError(
            f"ours vs Liger JSD(beta=0.5): value {errs[0]:.2e}, gradients {max(errs[1:]):.2e}"
        )
    from importlib import metadata

    try:
        version = metadata.version("liger-kernel")
    except metadata.PackageNotFoundError:  # imported from a path without its metadata
        version = "?"
    return f"liger-kernel {version}: value and gradients agree to {max(errs):.1e} (fp32)"


def _method_config(name: str, dev: torch.device, precision: str, out: Path, seed: int = _SEEDS[0]):
    from ..config import TrainConfig
    from ..methods import get_method

    k = max(2, get_method(name).min_k)
    return TrainConfig(
        method=name,
        model="tiny",
        teacher_model="tiny",
        hidden_size=32,
        num_layers=2,
        n_train=_N_TRAIN,
        n_eval=_N_EVAL,
        batch_problems=2,
        k=k,
        max_new_tokens=6,
        eval_k=1,
        eval_every=0,
        steps=2,
        lr=1e-3,
        progress=False,
        seed=seed,
        device=str(dev),
        precision=precision,
        out=str(out),
    )


def task_calls(methods: Sequence[str] | None = None) -> list[tuple]:
    """The `Task.problems(size, seed)` calls of the method and seed checks, as `(task, size,
    seed)`, once each: recorded while their trainers are built (tiny model, CPU, nothing
    trained), so a method that draws extra problems (e.g. EffOPD's validation pool) is covered
    without a list kept by hand. The bundle carries these sets; a call made only during
    training would make the bundled smoke stop naming the missing set (the bundle test runs it).
    """
    from ..methods import method_names
    from ..taskfile import task_key, task_spec
    from ..tasks import set_problem_source
    from ..trainers import Trainer

    calls: dict[str, tuple] = {}

    def record(task, size, seed):
        calls.setdefault(task_key(task_spec(task), size, seed), (task, size, seed))
        return None  # and generate as usual

    cpu = torch.device("cpu")
    previous = set_problem_source(record)
    try:
        with tempfile.TemporaryDirectory() as d:
            for name in method_names() if methods is None else methods:
                Trainer(_method_config(name, cpu, "fp32", Path(d) / name))
            Trainer(_method_config("opsd", cpu, "fp32", Path(d) / "seeds", seed=_SEEDS[1]))
    finally:
        set_problem_source(previous)
    return list(calls.values())


def check_method(name: str, dev: torch.device, precision: str, out: Path) -> str:
    """Two optimiser steps of method `name` with the tiny model."""
    from ..trainers import Trainer

    hist = Trainer(_method_config(name, dev, precision, out)).train()
    train = [r for r in hist if r["kind"] == "train"]
    if len(train) != 2 or not all(math.isfinite(r["loss"]) for r in train):
        raise AssertionError(f"{name}: steps {[(r['step'], r['loss']) for r in train]}")
    for key in ("tokens_per_s", "peak_memory_gib"):
        if key not in train[-1]:
            raise AssertionError(f"{name}: no {key} in the step log")
    last = train[-1]
    return (
        f"loss {last['loss']:.4g}, {last['tokens_per_s']:.0f} tokens/s, "
        f"peak {last['peak_memory_gib']:.3f} GiB ({precision})"
    )


def check_seeds(dev: torch.device, precision: str, out: Path) -> str:
    """The same OPSD run twice from one seed: same completions, same first-step loss."""
    from ..trainers import Trainer

    firsts = []
    for i in range(2):
        t = Trainer(_method_config("opsd", dev, precision, out / f"run{i}", seed=_SEEDS[1]))
        with t.autocast():
            batch = t.make_batch(0)
            loss, _ = t.method.loss(batch)
        firsts.append((batch.rollouts.completions.cpu(), float(loss.detach())))
    (c0, l0), (c1, l1) = firsts
    if not torch.equal(c0, c1):
        raise AssertionError("the same seed gave different completions")
    if abs(l0 - l1) > 1e-6 * max(abs(l0), 1e-12):
        raise AssertionError(f"the same seed gave losses {l0!r} and {l1!r}")
    return f"completions equal, first loss {l0:.6g} both times"


def check_experiments(
    dev: torch.device, out: Path, only: Sequence[str] | None, threads: int
) -> str:
    """Every experiment at its fast configuration with the tiny model; none may crash."""
    from . import run_validation

    _, _, results = run_validation(
        "cpu", out, only, fast=True, threads=threads, device=str(dev), model="tiny"
    )
    crashed = [r for r in results if r.claim_id.endswith(".run") and r.verdict == "failed"]
    if crashed:
        raise AssertionError("; ".join(f"{r.claim_id}: {r.details}" for r in crashed))
    for p in out.rglob("*.json"):
        json.loads(p.read_text())  # every JSON file it wrote parses
    return f"{len(results)} results, no crash; report in {out / 'report.md'}"


def _run(name: str, fn: Callable[[], str], checks: list) -> None:
    t0 = time.perf_counter()
    try:
        status, details = "ok", fn()
    except Skip as e:
        status, details = "skipped", str(e)
    except Exception as e:
        traceback.print_exc()
        status, details = "failed", f"{type(e).__name__}: {e}"[:2000]
    seconds = time.perf_counter() - t0
    checks.append(dict(name=name, status=status, seconds=round(seconds, 2), details=details))
    print(f"[smoke] {status:7s} {name} ({seconds:.1f}s): {details}", flush=True)


def run_smoke(
    out: str | Path,
    *,
    device: str = "auto",
    only: Sequence[str] | None = None,
    threads: int = 0,
) -> dict:
    """Run the smoke checks (module docstring) and write `out/smoke.json`; returns its content."""
    from ..methods import method_names

    t_all = time.perf_counter()
    if threads:
        torch.set_num_threads(int(threads))
    dev = D.resolve_device(device)
    D.configure(dev)
    precision = D.resolve_precision("auto", dev)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    checks: list[dict] = []
    with _exact_fp32():
        _run("losses", lambda: check_losses(dev), checks)
        _run("liger", lambda: check_liger(dev), checks)
    for name in method_names():
        _run(f"method/{name}", lambda n=name: check_method(n, dev, precision, out / n), checks)
    _run("seeds", lambda: check_seeds(dev, precision, out / "seeds"), checks)
    _run("experiments", lambda: check_experiments(dev, out / "experiments", only, threads), checks)
    failed = [c["name"] for c in checks if c["status"] == "failed"]
    report = dict(
        ok=not failed,
        failed=failed,
        device=D.describe(dev),
        precision=precision,
        torch=torch.__version__,
        cuda=torch.version.cuda,
        platform=platform.platform(),
        seconds=round(time.perf_counter() - t_all, 2),
        checks=checks,
    )
    simio.save_json(out / "smoke.json", report)
    n_ok = sum(c["status"] == "ok" for c in checks)
    n_skip = sum(c["status"] == "skipped" for c in checks)
    print(
        f"[smoke] {n_ok} ok, {len(failed)} failed, {n_skip} skipped in {report['seconds']:.0f}s "
        f"on {report['device']} -> {out / 'smoke.json'}",
        flush=True,
    )
    return report
