"""Shared pieces of the validation experiments: verdicts, the real model, real text, run folders."""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ... import claims, simio

SCALES = ("fast", "cpu", "cpu-long", "gpu")


def device() -> torch.device:
    """The accelerator when there is one (GPU scale), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


#: the scale that can decide what a scale leaves undecided
NEXT_SCALE = {"cpu": "cpu-long", "cpu-long": "gpu"}


def with_scale(results: Sequence[claims.CheckResult], scale: str) -> list[claims.CheckResult]:
    """Stamp `lm-<scale>` on every result; at `cpu` and `cpu-long` an undecided band needs more.

    `--scale cpu` answers each claim with held, failed, or "needs `--scale cpu-long`": a band
    that straddles the null there is a check the cpu sizes cannot decide (listed, not counted),
    with the band kept in the details. `cpu-long` is sized to decide every claim; what it still
    leaves undecided is reported the same way, as needing `gpu` (never counted as decided). A
    `needs-scale` result an experiment made itself (e.g. too few units per bin) names the scale
    after this one. At `gpu` an undecided band stays inconclusive.
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
        elif nxt and r.verdict == "needs-scale":
            r = dataclasses.replace(r, needs=nxt)
        out.append(r)
    return out


@functools.lru_cache(maxsize=1)
def smollm2():
    """SmolLM2-135M-Instruct (frozen, eval mode, on `device()`) and its tokenizer, loaded once."""
    from ..models import load_smollm2

    model, tok = load_smollm2()
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
            fh.write(json.dumps(row, default=_plain) + "\n")

    @staticmethod
    def read(path: Path) -> list[dict]:
        p = Path(path)
        if not p.exists():
            return []
        return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line]


def _plain(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
