"""Shared plumbing for `sims/` scripts: flags from a dataclass, run directories, tables, figures.

A sim is a module in `sims/` with a frozen dataclass `Config`, a pure `run(cfg)`, a `plot(...)`
that returns matplotlib figures, a `check(...)` that returns `CheckResult`s, and
`main(argv) -> Path` that ties them together with the helpers below. `sdtheory reproduce` calls
`main(["--out", DIR])` and reads `checks.json` and `*.png` back from `DIR`.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import datetime as _dt
import hashlib
import importlib
import json
import math
import os
import platform
import subprocess
import sys
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

import numpy as np

from .claims import CheckResult

C = TypeVar("C")


def _parse_bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {s!r}")


def parser_from_dataclass(cls: type, prog: str | None = None, description: str | None = None):
    """An argparse parser with one `--kebab-case` flag per dataclass field (help from metadata)."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        typ = hints[f.name]
        flag = "--" + f.name.replace("_", "-")
        help_ = f.metadata.get("help", " ")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        origin = getattr(typ, "__origin__", None)
        if typ is bool:
            parser.add_argument(flag, type=_parse_bool, default=default, help=help_, metavar="BOOL")
        elif origin in (tuple, list) or typ in (tuple, list):
            args = getattr(typ, "__args__", (str,))
            elem = args[0] if args else str
            parser.add_argument(flag, type=elem, nargs="+", default=default, help=help_)
        elif isinstance(typ, types.UnionType) or origin is not None:
            inner = [a for a in typ.__args__ if a is not type(None)][0]
            parser.add_argument(flag, type=inner, default=default, help=help_)
        else:
            parser.add_argument(flag, type=typ, default=default, help=help_)
    return parser


def config_from_args(cls: type[C], ns: argparse.Namespace) -> C:
    kwargs = {}
    for f in dataclasses.fields(cls):
        v = getattr(ns, f.name)
        if isinstance(f.default, tuple) and isinstance(v, list):
            v = tuple(v)
        kwargs[f.name] = v
    return cls(**kwargs)


def config_hash(cfg: Any) -> str:
    blob = json.dumps(dataclasses.asdict(cfg), sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:8]


def default_results_root() -> Path:
    return Path(os.environ.get("SDTHEORY_RESULTS", "results"))


def parse(cls: type[C], argv: Sequence[str] | None, name: str, doc: str | None = None):
    """Parse `argv` into `cls` and create the run directory.

    Adds `--out DIR` (default `results/<name>/<UTC time>-<cfg hash>/`). Writes `config.json`,
    `argv.txt` and `env.json` there, prints the resolved config, and returns `(cfg, out)`.
    """
    parser = parser_from_dataclass(cls, prog=f"sims/{name}.py", description=doc)
    parser.add_argument("--out", type=Path, default=None, help="run directory")
    ns = parser.parse_args(list(argv) if argv is not None else None)
    out = ns.out
    del ns.out
    cfg = config_from_args(cls, ns)
    if out is None:
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        out = default_results_root() / name / f"{stamp}-{config_hash(cfg)}"
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_json(out / "config.json", dataclasses.asdict(cfg))
    (out / "argv.txt").write_text(" ".join(argv if argv is not None else sys.argv[1:]) + "\n")
    save_json(out / "env.json", environment())
    print(f"[{name}] {cfg}", flush=True)
    return cfg, out


def environment() -> dict[str, Any]:
    """git SHA, versions and machine, for `env.json`."""
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "time_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    for mod in ("scipy", "jax", "torch", "transformers"):
        m = sys.modules.get(mod)
        if m is not None:
            env[mod] = getattr(m, "__version__", "?")
    with contextlib.suppress(Exception):
        root = Path(__file__).resolve().parents[1]
        env["git_sha"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    return env


def _default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def finite_json(o: Any) -> Any:
    """`o` with numpy values as Python ones and non-finite floats as the strings 'nan', 'inf',
    '-inf' (the convention of `CheckResult.to_json`), so the file is strict JSON."""
    if isinstance(o, (np.ndarray, np.generic)):
        o = o.tolist()
    if isinstance(o, float):
        return o if math.isfinite(o) else str(o)
    if isinstance(o, dict):
        return {k: finite_json(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [finite_json(v) for v in o]
    return o


def save_json(path: Path, obj: Any) -> Path:
    """Write `obj` as strict JSON (non-finite floats as 'nan', 'inf', '-inf' strings)."""
    text = json.dumps(finite_json(obj), indent=2, default=_default, allow_nan=False)
    Path(path).write_text(text + "\n")
    return Path(path)


def save_table(path: Path, table: Mapping[str, Sequence] | Sequence[Mapping[str, Any]]) -> Path:
    """Write a CSV from columns (a dict of equal-length sequences) or from a list of row dicts."""
    if isinstance(table, Mapping):
        cols = list(table)
        n = {len(np.atleast_1d(table[c])) for c in cols}
        if len(n) > 1:
            raise ValueError(f"table columns have different lengths: {sorted(n)}")
        rows = [
            dict(zip(cols, vals, strict=True))
            for vals in zip(*(np.atleast_1d(table[c]) for c in cols), strict=True)
        ]
    else:
        rows = list(table)
        cols = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()})
    return Path(path)


def matplotlib():
    """Import matplotlib with the Agg backend (headless)."""
    import matplotlib as mpl

    mpl.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


@contextlib.contextmanager
def style():
    """One small style context for every figure of the package."""
    plt = matplotlib()
    with plt.rc_context(
        {
            "figure.dpi": 110,
            "font.size": 9,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "savefig.bbox": "tight",
        }
    ):
        yield plt


def save_figure(fig, path_stem: Path) -> Path:
    """Save `fig` as `<stem>.png` and close it; returns the PNG path."""
    plt = matplotlib()
    png = Path(path_stem).with_suffix(".png")
    fig.savefig(png)
    plt.close(fig)
    return png


def save_checks(out: Path, checks: Sequence[CheckResult]) -> Path:
    """Write `checks.json` and print one line per verdict."""
    for c in checks:
        print(f"  [{c.verdict:>12}] {c.claim_id}: predicted {c.predicted}, measured {c.measured}")
    return save_json(Path(out) / "checks.json", [c.to_json() for c in checks])


# ----------------------------------------------------------------------------- discovery


def sims_dir() -> Path:
    """Where the sims live: `$SDTHEORY_SIMS`, the checkout next to the package, or `./sims`."""
    env = os.environ.get("SDTHEORY_SIMS")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parents[1] / "sims"
    return here if here.is_dir() else Path.cwd() / "sims"


def sim_names() -> list[str]:
    d = sims_dir()
    if not d.is_dir():
        return []
    return sorted(p.stem for p in d.glob("*.py") if not p.stem.startswith("_"))


def load_sim(name: str) -> types.ModuleType:
    """Import `sims/<name>.py` as module `sims.<name>`."""
    d = sims_dir()
    if name not in sim_names():
        raise ValueError(f"name must be one of the sims in {d}: {sim_names()}, got {name!r}")
    root = str(d.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module(f"{d.name}.{name}")
