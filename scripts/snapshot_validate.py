"""Copy the readable part of a `sdtheory validate` run into the docs (small files only).

    python scripts/snapshot_validate.py RUN_DIR docs/lm/validate-cpu-long

Copies `report.md`, `results.json`, `timing.json`, every experiment's `checks.json` and figures
(PNG re-encoded with a 256-colour palette, which keeps plots readable at a third of the size),
and each experiment's `config.json` and `metrics.json` when under 200 kB. Links in `report.md`
keep working because the layout is the same. The large files (`units.jsonl`, `report.html`
with inlined figures) stay in the run folder. The committed-results file the paper pages' verdict
blocks are generated from is written by `sdtheory pages --snapshot RUN_DIR --name
validate-cpu-long --scale cpu-long --run TEXT`.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

SMALL = 200_000


def palette_png(src: Path, dest: Path) -> None:
    from PIL import Image

    img = Image.open(src).convert("RGB")
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(dest, optimize=True)


def snapshot(run: Path, dest: Path) -> list[Path]:
    run, dest = Path(run), Path(dest)
    if not (run / "report.md").is_file():
        raise ValueError(f"run must be a validate report folder with report.md, got {run}")
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ("report.md", "results.json", "timing.json"):
        if (run / name).is_file():
            shutil.copy2(run / name, dest / name)
            written.append(dest / name)
    for sub in sorted(p for p in run.iterdir() if p.is_dir()):
        (dest / sub.name).mkdir(exist_ok=True)
        for f in sorted(sub.iterdir()):
            target = dest / sub.name / f.name
            if f.suffix == ".png":
                palette_png(f, target)
            elif (
                f.name in ("checks.json", "config.json", "metrics.json")
                and f.stat().st_size < SMALL
            ):
                shutil.copy2(f, target)
            else:
                continue
            written.append(target)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    files = snapshot(Path(sys.argv[1]), Path(sys.argv[2]))
    total = sum(f.stat().st_size for f in files)
    print(f"{len(files)} files, {total / 1e6:.2f} MB -> {sys.argv[2]}")
