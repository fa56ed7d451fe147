"""Shared pieces of the validation experiments: verdicts, the real model, real text, run folders."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ... import claims, simio

SCALES = ("fast", "cpu", "cpu-long", "gpu")


@dataclasses.dataclass(frozen=True)
class Settings:
    """How the experiments run (`configure`): device, precision, and the real model.

    `model="tiny"` replaces SmolLM2 by a small random Llama with the tiny tokenizer
    (`sdtheory.lm.models.build_model("tiny")`): every code path runs in seconds, the verdicts
    mean nothing (the smoke test and the budget tests use it).
    """

    device: str = "auto"
    precision: str = "auto"
    model: str = "smollm2"


MODELS = ("smollm2", "tiny")
_settings = Settings()


def configure(*, device: str = "auto", precision: str = "auto", model: str = "smollm2") -> Settings:
    """Set the experiments' device (`auto`, `cpu`, `cuda`), precision and real model."""
    global _settings
    from .. import device as D

    dev = D.resolve_device(device)  # raises for a bad name or a missing CUDA device
    D.resolve_precision(precision, dev)
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if Settings(device, precision, model) != _settings:
        smollm2.cache_clear()
    _settings = Settings(device, precision, model)
    D.configure(dev)
    return _settings


def settings() -> Settings:
    return _settings


def device() -> torch.device:
    """The experiments' device (`configure`; by default CUDA when visible, else the CPU)."""
    from .. import device as D

    return D.resolve_device(_settings.device)


def autocast():
    """bf16 autocast for forward passes whose outputs are samples, features or training
    signals (not measured divergences) when the precision is bf16 (`auto`: on CUDA)."""
    from .. import device as D

    dev = device()
    return D.autocast(dev, D.resolve_precision(_settings.precision, dev))


def memory_probe() -> dict:
    """Peak memory since the previous call, for each line of an experiment's budget log."""
    from .. import device as D

    return D.memory_stats(device())


#: the scale that can decide what a scale leaves undecided
NEXT_SCALE = {"cpu": "cpu-long", "cpu-long": "gpu"}


def with_scale(results: Sequence[claims.CheckResult], scale: str) -> list[claims.CheckResult]:
    """Stamp `lm-<scale>` on every result; at `cpu` and `cpu-long` an undecided band needs more.

    `--scale cpu` answers each claim with held, failed, or "needs `--scale cpu-long`": a band
    that straddles the null there is a check the cpu sizes cannot decide (listed, not counted),
    with the band kept in the details. `cpu-long` is sized to decide every claim; what it still
    leaves undecided is reported the same way, as needing `gpu` (never counted as decided). A
    `needs-scale` result an experiment made itself (e.g. too few units per bin) names the scale
    after this one; at `gpu` it names `gpu` (the same scale with more time or units), and an
    undecided band stays inconclusive.
    """
    out = []
    nxt = NEXT_SCALE.get(scale)
    for r in results:
        r = dataclasses.replace(r, scale=f"lm-{scale}")
        if nxt and r.verdict == "inconclusive":
            r = dataclasses.replace(
                r,
                verdict="needs-scale",
                needs=nxt,
                details=f"undecided at {scale} scale (band {r.tolerance}). {r.details}".strip(),
            )
        elif r.verdict == "needs-scale" and (nxt or scale == "gpu"):
            r = dataclasses.replace(r, needs=nxt or scale)  # gpu: the same, with more time
        out.append(r)
    return out


@functools.lru_cache(maxsize=1)
def smollm2():
    """SmolLM2-135M-Instruct (frozen, eval mode, on `device()`) and its tokenizer, loaded once.

    Under `configure(model="tiny")`, the tiny model and tokenizer instead (for smoke runs).
    """
    from ..models import build_model, load_smollm2

    model, tok = load_smollm2() if _settings.model == "smollm2" else build_model("tiny")
    model.to(device())
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, tok


def real_texts(n: int, seed: int = 0, task: str = "chain_sum") -> list[str]:
    """`n` distinct real texts: reasoning-gym questions with their worked solution.

    `task="champ"` gives champ-dataset competition problems with their step solutions.
    """
    from ..tasks import make_task

    opts = {} if task != "chain_sum" else {"max_terms": 3}
    probs = make_task(task, **opts).problems(n, seed=seed)
    out = []
    for p in probs:
        sol = " ".join(p.steps) if p.steps else f"The answer is {p.answer}."
        out.append(f"{p.question}\n{sol}")
    return out


def encode_batch(tok, texts: Sequence[str], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded token ids and attention mask (truncated to `max_len`)."""
    enc = [tok(t, add_special_tokens=False)["input_ids"][:max_len] for t in texts]
    width = max(len(e) for e in enc)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    ids = torch.full((len(enc), width), pad, dtype=torch.long)
    mask = torch.zeros((len(enc), width), dtype=torch.long)
    for i, e in enumerate(enc):
        ids[i, : len(e)] = torch.tensor(e)
        mask[i, : len(e)] = 1
    return ids, mask


class Timer:
    """Wall-clock of a block, for the run records."""

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0


def save_run(out: Path, cfg, metrics: dict | list, table: Any | None = None) -> None:
    """config.json, metrics.json and (if given) metrics.csv of an experiment's run folder."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    simio.save_json(out / "config.json", dataclasses.asdict(cfg))
    simio.save_json(out / "metrics.json", metrics)
    if table is not None:
        simio.save_table(out / "metrics.csv", table)


def log(name: str, msg: str) -> None:
    print(f"[validate:{name}] {msg}", flush=True)


def measure_then_decide(cfg, out: Path, budget, measure, decide, claim_list) -> list:
    """The experiments' skeleton: `measure(cfg, out, budget)` writes units to `out/units.jsonl`
    as they finish (a budget stops between units), then `decide(rows, cfg, out)` judges what was
    measured; with no unit at all, every claim of `claim_list` is reported as needing a larger
    scale."""
    out = Path(out)
    with budget.measuring():
        measure(cfg, out, budget)
    rows = Units.read(out / "units.jsonl")
    if not rows:
        save_run(out, cfg, dict(stopped=budget.stopped))
        return [budget.undecided(c, details="No unit was measured.") for c in claim_list]
    return decide(rows, cfg, out)


class Units:
    """Append-only JSON-lines record of an experiment's units (one line per problem, seed, ...).

    Written as the run goes (each line flushed), so a run stopped by a budget or a crash keeps
    what it measured, and the verdicts can be computed from the file alone (`read`).
    """

    def __init__(self, path: Path, *, fresh: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if fresh and self.path.exists():
            self.path.unlink()

    def write(self, **row) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(simio.finite_json(row), default=_plain, allow_nan=False) + "\n")

    @staticmethod
    def read(path: Path) -> list[dict]:
        p = Path(path)
        if not p.exists():
            return []
        lines = p.read_text(encoding="utf-8").splitlines()
        return [_unfinite(json.loads(line)) for line in lines if line]


_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _unfinite(o):
    """Inverse of `simio.finite_json` on a unit row: the strings 'nan', 'inf', '-inf' as floats
    (so `decide` reads back exactly what `run` measured)."""
    if isinstance(o, str):
        return _NONFINITE.get(o, o)
    if isinstance(o, dict):
        return {k: _unfinite(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_unfinite(v) for v in o]
    return o


def _plain(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
