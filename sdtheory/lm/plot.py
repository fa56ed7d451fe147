"""`sdtheory plot RUN_DIR [RUN_DIR ...]`: overlay training runs into PNGs and one HTML page.

    sdtheory plot runs/opsd runs/grpo --out runs/compare    # PNGs + index.html + series.json
    sdtheory plot runs/opsd --smooth 5                      # one run: runs/opsd/plots/

Reads each run's `metrics.jsonl` (and `config.json` for the run's batch size) and draws one
panel per logged quantity, all runs overlaid in the same colours (run i is matplotlib's `Ci`):

* first the standard panels: training reward, held-out accuracy (avg@k) with its 95 % band
  (`accuracy_lo`/`accuracy_hi`), loss, and throughput (a logged `*tokens_per_s*` quantity, else
  completion tokens per second of step time, derived from `completion_tokens`, the batch and
  `time_step`);
* then every other number a record carries, train and eval alike: pass@k, greedy accuracy, and
  each method's own quantities (TAID's `taid_t`, SDPO's `sdpo_frac_with_teacher`, PACED's
  weights, ...) without naming any method: a new method's metrics appear by themselves. A key
  `X` with `X_lo` and `X_hi` beside it is drawn with that band;
* a quantity logged as a list of numbers (a histogram per step, e.g. PACED's
  `paced_weight_hist`) is drawn as a heat map of steps x bins, one row of panels per run.

`index.html` is self-contained (the PNGs inlined as data URIs, the plotted series inlined as
JSON in `<script id="series" type="application/json">`, and a table of each run's last values);
`series.json` holds the same series. matplotlib only (`sims` extra); never imports torch.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Run", "load_run", "main", "plot_runs", "run_series"]

# quantities that are bookkeeping, not curves
_SKIP = {"processes", "k", "n"}
_STANDARD = ("train/reward", "eval/accuracy", "train/loss", "train/throughput")
_TITLES = {
    "train/reward": "training reward (mean over rollouts)",
    "eval/accuracy": "held-out accuracy avg@k (95% band over problems)",
    "train/loss": "loss",
    "train/throughput": "throughput (tokens / s)",
}


@dataclass
class Run:
    """One run directory: its label, config and records by kind."""

    path: Path
    label: str
    config: dict = field(default_factory=dict)
    records: dict[str, list[dict]] = field(default_factory=dict)


def load_run(path, label: str | None = None) -> Run:
    """Read `metrics.jsonl` (required) and `config.json` (optional) of a run directory."""
    path = Path(path)
    log = path / "metrics.jsonl"
    if not log.is_file():
        raise FileNotFoundError(f"run_dir: {path} has no metrics.jsonl")
    records: dict[str, list[dict]] = {}
    for i, line in enumerate(log.read_text().splitlines()):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"run_dir: {log} line {i + 1} is not JSON: {e}") from None
        records.setdefault(rec.get("kind", "train"), []).append(rec)
    cfg_path = path / "config.json"
    config = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
    return Run(path, label or path.resolve().name, config, records)


def _number(v) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    return None


def _is_hist(v) -> bool:
    return isinstance(v, list) and bool(v) and all(_number(x) is not None for x in v)


def _throughput(run: Run) -> dict | None:
    """Logged `*tokens_per_s*` of train records, else completion tokens / step time."""
    recs = run.records.get("train", [])
    logged = sorted({k for r in recs for k in r if "tokens_per_s" in k})
    if logged:
        key = logged[0]
        pts = [(r["step"], _number(r.get(key))) for r in recs if _number(r.get(key)) is not None]
        return {"key": key, "step": [s for s, _ in pts], "value": [v for _, v in pts]}
    rows = run.config.get("batch_problems", 0) * run.config.get("k", 0)
    pts = [
        (r["step"], r["completion_tokens"] * rows / r["time_step"])
        for r in recs
        if rows and r.get("time_step") and _number(r.get("completion_tokens")) is not None
    ]
    if not pts:
        return None
    return {"key": "derived", "step": [s for s, _ in pts], "value": [v for _, v in pts]}


def _flat(rec: dict) -> dict:
    """A record's quantities under their tracker names (`sdtheory.lm.tracking.scalars`:
    `train/loss`, `eval/by_difficulty/<level>/accuracy`), plus its histograms (lists)."""
    from .tracking import scalars

    kind = rec.get("kind", "train")
    out = {
        k: (v if math.isfinite(v) else None)  # NaN (e.g. a band of one problem): a gap
        for k, v in scalars(rec).items()
        if k.rsplit("/", 1)[1] not in _SKIP
    }
    out.update({f"{kind}/{k}": v for k, v in rec.items() if _is_hist(v)})
    return out


def run_series(runs: Sequence[Run]) -> dict[str, dict[str, dict]]:
    """`{quantity: {run label: {"step", "value"[, "lo", "hi"]}}}`, standard quantities first;
    histogram quantities carry `"matrix"` (steps x bins) instead of `"value"`."""
    flat = {
        run.label: [(r["step"], _flat(r)) for recs in run.records.values() for r in recs]
        for run in runs
    }
    names: dict[str, None] = dict.fromkeys(_STANDARD)
    for rows in flat.values():
        for _, f in rows:
            for name in f:
                names.setdefault(name)
    banded = {n[:-3] for n in names if n.endswith("_lo") and n[:-3] + "_hi" in names}
    out: dict[str, dict[str, dict]] = {}
    for name in names:
        if name[:-3] in banded and name[-3:] in ("_lo", "_hi"):
            continue
        for run in runs:
            if name == "train/throughput":
                s = _throughput(run)
                if s is not None:
                    out.setdefault(name, {})[run.label] = s
                continue
            pts = [(step, f[name]) for step, f in flat[run.label] if name in f]
            if not pts:
                continue
            s = {"step": [step for step, _ in pts]}
            if isinstance(pts[0][1], list):
                s["matrix"] = [[float(x) for x in v] for _, v in pts]
            else:
                s["value"] = [v for _, v in pts]
                if name in banded:
                    lo_hi = {step: f for step, f in flat[run.label] if name in f}
                    s["lo"] = [lo_hi[step].get(name + "_lo") for step in s["step"]]
                    s["hi"] = [lo_hi[step].get(name + "_hi") for step in s["step"]]
            out.setdefault(name, {})[run.label] = s
    return out


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or y.size < 2:
        return y
    w = min(window, y.size)
    c = np.cumsum(np.insert(np.nan_to_num(y), 0, 0.0))
    out = (c[w:] - c[:-w]) / w
    return np.concatenate([y[: w - 1], out])  # raw until a full window exists


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


def _figure(name: str, per_run: dict[str, dict], colors: dict[str, str], smooth: int):
    from ..simio import matplotlib

    plt = matplotlib()
    hist = any("matrix" in s for s in per_run.values())
    if hist:
        fig, axes = plt.subplots(
            len(per_run), 1, figsize=(6.4, 1.2 + 1.6 * len(per_run)), squeeze=False
        )
        for ax, (label, s) in zip(axes[:, 0], per_run.items(), strict=True):
            m = np.asarray(s["matrix"], dtype=float)
            ax.imshow(
                m.T,
                aspect="auto",
                origin="lower",
                cmap="viridis",
                interpolation="nearest",
                extent=(s["step"][0] - 0.5, s["step"][-1] + 0.5, -0.5, m.shape[1] - 0.5),
            )
            ax.set_ylabel("bin")
            ax.set_title(label, fontsize=8, color=colors[label])
            ax.grid(False)
        axes[-1, 0].set_xlabel("step")
    else:
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        for label, s in per_run.items():
            x = np.asarray(s["step"], dtype=float)
            y = np.asarray([np.nan if v is None else v for v in s["value"]], dtype=float)
            ax.plot(
                x,
                _smooth(y, smooth),
                color=colors[label],
                label=label,
                lw=1.5,
                marker="o" if x.size < 30 else None,
                ms=3,
            )
            if "lo" in s:
                lo = np.asarray([np.nan if v is None else v for v in s["lo"]], dtype=float)
                hi = np.asarray([np.nan if v is None else v for v in s["hi"]], dtype=float)
                ax.fill_between(x, lo, hi, color=colors[label], alpha=0.2, lw=0)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    key = name.split("/", 1)[1]
    suffix = f" ({per_run[next(iter(per_run))].get('key')})" if name == "train/throughput" else ""
    fig.suptitle(_TITLES.get(name, f"{name}") + suffix, fontsize=9)
    fig.tight_layout()
    return fig, key


def _last(s: dict):
    if "value" in s:
        vals = [v for v in s["value"] if v is not None and math.isfinite(v)]
        return vals[-1] if vals else None
    return None


def _html(runs, series, pngs: dict[str, Path]) -> str:
    rows = []
    for name, per_run in series.items():
        cells = []
        for run in runs:
            v = _last(per_run.get(run.label, {}))
            cells.append("" if v is None else f"{v:.4g}")
        rows.append(
            f"<tr><td>{html.escape(name)}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
        )
    head = "".join(f"<th>{html.escape(r.label)}</th>" for r in runs)
    figs = []
    for name, png in pngs.items():
        data = base64.b64encode(png.read_bytes()).decode()
        figs.append(
            f'<figure id="{html.escape(_slug(name))}"><img src="data:image/png;base64,{data}" '
            f'alt="{html.escape(name)}"><figcaption>{html.escape(name)}</figcaption></figure>'
        )
    blob = json.dumps(series).replace("</", "<\\/")
    dirs = "".join(f"<li>{html.escape(r.label)}: {html.escape(str(r.path))}</li>" for r in runs)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>sdtheory runs</title>
<style>body{{font-family:sans-serif;margin:1.5em}} figure{{display:inline-block;margin:0.5em}}
img{{max-width:620px}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;
padding:2px 8px;text-align:right}} td:first-child{{text-align:left}}</style></head><body>
<h1>Runs</h1><ul>{dirs}</ul>
<h2>Last values</h2><table><tr><th>quantity</th>{head}</tr>{"".join(rows)}</table>
<h2>Curves</h2>{"".join(figs)}
<script id="series" type="application/json">{blob}</script>
</body></html>
"""


def plot_runs(run_dirs: Sequence, out, *, smooth: int = 1) -> dict:
    """Write one PNG per quantity, `series.json` and `index.html` to `out`; returns
    `{"series": ..., "pngs": {quantity: path}, "html": path}`."""
    from ..simio import save_figure, style

    if not run_dirs:
        raise ValueError("run_dirs must name at least one run directory, got none")
    if smooth < 1:
        raise ValueError(f"smooth must be >= 1, got {smooth}")
    runs = [load_run(d) for d in run_dirs]
    labels = [r.label for r in runs]
    if len(set(labels)) < len(labels):  # same directory names: use the paths
        for r in runs:
            r.label = str(r.path)
    colors = {r.label: f"C{i % 10}" for i, r in enumerate(runs)}
    series = run_series(runs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pngs = {}
    with style():
        for name, per_run in series.items():
            fig, _ = _figure(name, per_run, colors, smooth)
            pngs[name] = save_figure(fig, out / _slug(name.replace("/", "-")))
    (out / "series.json").write_text(json.dumps(series, indent=1))
    page = out / "index.html"
    page.write_text(_html(runs, series, pngs))
    return {"series": series, "pngs": pngs, "html": page, "colors": colors}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="sdtheory plot",
        description="Overlay training runs (reward, held-out accuracy with its band, loss, "
        "throughput and every quantity a method logs) into PNGs and one HTML page.",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories to overlay")
    p.add_argument(
        "--out",
        default=None,
        help="output directory (default: RUN_DIR/plots for one run, ./plots for several)",
    )
    p.add_argument("--smooth", type=int, default=1, help="running-mean window (1 = raw values)")
    args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    out = args.out or (Path(args.run_dirs[0]) / "plots" if len(args.run_dirs) == 1 else "plots")
    try:
        res = plot_runs(args.run_dirs, out, smooth=args.smooth)
    except (ValueError, FileNotFoundError) as e:
        print(f"sdtheory plot: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(res['pngs'])} PNGs and {res['html']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
