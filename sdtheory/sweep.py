"""Run every sim at several seeds and compare the verdicts: a verdict must not hinge on the seed.

`sdtheory sweep --seeds 0 1 2 ... [--only NAME ...] [--jobs 2]` runs each sim once per seed (each
run in its own process, `--jobs` at a time), and writes to its output folder:

- `verdicts.csv`: one row per (sim, seed, claim) with the verdict (a crash is the verdict
  `crashed` of the claim `<sim>.run`);
- `stability.md`: the verdict of every claim at every seed, the claims whose verdict changes
  first.

Every `--seed` reaches every random source of a sim (teachers, data, initialisations), so two
seeds are two independent repetitions of the whole experiment.
"""

from __future__ import annotations

import ast
import concurrent.futures
import csv
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import simio

CRASHED = "crashed"


def verdict_map(checks_path: Path) -> dict[str, str]:
    """`{claim_id: verdict}` from a sim's `checks.json` (one result per claim)."""
    checks = json.loads(Path(checks_path).read_text())
    out: dict[str, str] = {}
    for c in checks:
        if c["claim_id"] in out:
            raise ValueError(f"claim {c['claim_id']!r} is checked twice in {checks_path}")
        out[c["claim_id"]] = c["verdict"]
    return out


def has_seed(name: str) -> bool:
    """Whether the sim has a `--seed` flag (a sim without randomness, like `krr_toy`, has none)."""
    tree = ast.parse((simio.sims_dir() / f"{name}.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Config":
            return any(
                isinstance(b, ast.AnnAssign) and getattr(b.target, "id", "") == "seed"
                for b in node.body
            )
    return False


def run_one(name: str, seed: int, out: Path, flags: Sequence[str] = ()) -> dict[str, str]:
    """Run `sims/<name>.py --seed SEED` in a fresh process; its verdict map (or a crash).

    A sim without randomness (no `seed` in its `Config`) runs unchanged at every seed.
    """
    out = Path(out)
    seed_flag = ["--seed", str(seed)] if has_seed(name) else []
    cmd = [sys.executable, "-m", "sdtheory.cli", "sim", name, *seed_flag, "--out", str(out)]
    proc = subprocess.run([*cmd, *flags], capture_output=True, text=True)
    (out.parent / f"{out.name}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0 or not (out / "checks.json").exists():
        return {f"{name}.run": CRASHED}
    return verdict_map(out / "checks.json")


def sweep(
    names: Sequence[str], seeds: Sequence[int], out: Path, jobs: int = 1
) -> list[dict[str, object]]:
    """Run every (sim, seed); write `verdicts.csv` and `stability.md`; return the rows."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [(n, s) for n in names for s in seeds]
    rows: list[dict[str, object]] = []
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(run_one, n, s, out / n / f"seed{s}"): (n, s) for n, s in tasks}
        for i, fut in enumerate(concurrent.futures.as_completed(futures), 1):
            n, s = futures[fut]
            vm = fut.result()
            rows += [{"sim": n, "seed": s, "claim": c, "verdict": v} for c, v in vm.items()]
            shown = ", ".join(f"{v}" for v in vm.values())
            print(f"[{i}/{len(tasks)}] {n} seed {s} ({time.perf_counter() - t0:.0f}s): {shown}")
    rows.sort(key=lambda r: (r["sim"], r["claim"], r["seed"]))
    with open(out / "verdicts.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["sim", "seed", "claim", "verdict"])
        w.writeheader()
        w.writerows(rows)
    (out / "stability.md").write_text(stability_markdown(rows, seeds), encoding="utf-8")
    return rows


def unstable(rows: Sequence[dict[str, object]]) -> dict[tuple[str, str], dict[int, str]]:
    """`{(sim, claim): {seed: verdict}}` for claims whose verdict is not the same at every seed.

    A claim missing at some seed (its sim crashed there) counts as changed.
    """
    seeds = sorted({int(r["seed"]) for r in rows})
    by: dict[tuple[str, str], dict[int, str]] = {}
    for r in rows:
        by.setdefault((str(r["sim"]), str(r["claim"])), {})[int(r["seed"])] = str(r["verdict"])
    return {
        k: {s: v.get(s, "missing") for s in seeds}
        for k, v in by.items()
        if len(set(v.values())) > 1 or len(v) < len(seeds)
    }


def stability_markdown(rows: Sequence[dict[str, object]], seeds: Sequence[int]) -> str:
    bad = unstable(rows)
    claims_ = sorted({(str(r["sim"]), str(r["claim"])) for r in rows})
    verdict = {(r["sim"], r["claim"], r["seed"]): r["verdict"] for r in rows}
    head = "| sim | claim | " + " | ".join(f"seed {s}" for s in seeds) + " |"
    lines = [
        "# Verdicts across seeds",
        "",
        f"{len(claims_)} claims x {len(seeds)} seeds; {len(bad)} change with the seed"
        + (": " + ", ".join(f"`{c}`" for _, c in sorted(bad)) if bad else "")
        + ".",
        "",
        head,
        "|---|---|" + "---|" * len(seeds),
    ]
    for sim, c in sorted(claims_, key=lambda k: (k not in bad, k)):
        cells = " | ".join(str(verdict.get((sim, c, s), "missing")) for s in seeds)
        lines.append(f"| {sim} | `{c}`{' (changes)' if (sim, c) in bad else ''} | {cells} |")
    return "\n".join(lines) + "\n"


def main(names: Sequence[str] | None, seeds: Sequence[int], out: Path, jobs: int) -> int:
    known = simio.sim_names()
    names = list(names) if names else known
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise SystemExit(f"--only names unknown sims {unknown}; known: {known}")
    rows = sweep(names, seeds, out, jobs)
    bad = unstable(rows)
    print(f"{out / 'stability.md'}: {len(bad)} claims change with the seed")
    for (sim, c), v in sorted(bad.items()):
        print(f"  {sim} {c}: {v}")
    return 1 if bad else 0
