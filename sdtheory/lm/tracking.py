"""Experiment trackers beside `metrics.jsonl`: `--report-to none|tensorboard|trackio`.

`metrics.jsonl` is always written; a tracker receives the same records. Every scalar keeps one
name everywhere (`scalars`): the record's kind and key, `train/loss`, `eval/accuracy`, with
nested values flattened by `/` (`eval/by_difficulty/num_digits=2/accuracy`). Booleans become
0/1; text and lists are not scalars and stay in the JSONL only. Both trackers are local-first:

* `tensorboard`: event files in `OUT/tensorboard` (`tensorboard --logdir OUT/tensorboard`);
* `trackio`: trackio's local store (`$TRACKIO_DIR`, default `~/.cache/huggingface/trackio`),
  project `sdtheory`, run named after the run directory (`trackio show --project sdtheory`).

The packages come with the `track` extra (`pip install 'sdtheory[track]'`); asking for a
tracker that is not installed is an error at start, naming the extra. numpy/stdlib only here:
`sdtheory plot` uses `scalars` without torch.
"""

from __future__ import annotations

import math
from pathlib import Path

__all__ = ["NullTracker", "TRACKERS", "make_tracker", "scalars"]

TRACKERS = ("none", "tensorboard", "trackio")


def scalars(rec: dict) -> dict[str, float]:
    """The scalars of a metrics record under their tracker names: `<kind>/<key>`.

    Example:
        >>> scalars({"kind": "eval", "step": 3, "accuracy": 0.5, "example": "x",
        ...          "on_policy": True, "by_difficulty": {"easy": {"accuracy": 1.0}}})
        {'eval/accuracy': 0.5, 'eval/on_policy': 1.0, 'eval/by_difficulty/easy/accuracy': 1.0}
    """
    out: dict[str, float] = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}/{k}", v)
        elif isinstance(value, (bool, int, float)):
            out[prefix] = float(value)

    kind = rec.get("kind", "train")
    for key, value in rec.items():
        if key not in ("kind", "step"):
            walk(f"{kind}/{key}", value)
    return out


class NullTracker:
    """No tracker (`--report-to none`): `log` and `close` do nothing."""

    def log(self, rec: dict) -> None:
        return None

    def close(self) -> None:
        return None


class _TensorBoard(NullTracker):
    def __init__(self, out: Path, config: dict):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(out / "tensorboard"))
        text = "\n".join(f"    {k}: {v!r}" for k, v in sorted(config.items()))
        self.writer.add_text("config", text, 0)

    def log(self, rec: dict) -> None:
        for name, value in scalars(rec).items():
            if math.isfinite(value):
                self.writer.add_scalar(name, value, rec["step"])

    def close(self) -> None:
        self.writer.close()


class _Trackio(NullTracker):
    def __init__(self, out: Path, config: dict):
        import trackio

        self.trackio = trackio
        trackio.init(
            project="sdtheory",
            name=out.resolve().name,
            config=config,
            resume="allow",
            auto_log_cpu=False,
            auto_log_gpu=False,
        )
        self.open = True

    def log(self, rec: dict) -> None:
        values = {k: v for k, v in scalars(rec).items() if math.isfinite(v)}
        self.trackio.log(values, step=rec["step"])

    def close(self) -> None:
        if self.open:
            self.trackio.finish()
            self.open = False


_PACKAGE = {"tensorboard": ("tensorboard", _TensorBoard), "trackio": ("trackio", _Trackio)}


def make_tracker(kind: str, out, config: dict, *, main: bool = True):
    """The tracker named `kind` for the run directory `out` (`NullTracker` off the main process).

    Raises:
        ValueError: for an unknown `kind`, or when its package is not installed.
    """
    if kind not in TRACKERS:
        raise ValueError(f"report_to must be one of {TRACKERS}, got {kind!r}")
    if kind == "none" or not main:
        return NullTracker()
    import importlib.util

    package, cls = _PACKAGE[kind]
    if importlib.util.find_spec(package) is None:
        raise ValueError(
            f"report_to={kind!r} needs the {package} package: pip install 'sdtheory[track]'"
        )
    return cls(Path(out), config)
