"""`sdtheory plot` on two runs writes the PNGs and one self-contained HTML page whose series are
the runs' logged values; `--report-to tensorboard|trackio` logs every scalar under the same name
as `sdtheory.lm.tracking.scalars` gives it (and as the plot uses)."""

import base64
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")
pytest.importorskip("reasoning_gym")
pytest.importorskip("matplotlib")

from sdtheory import cli  # noqa: E402
from sdtheory.lm.tracking import scalars  # noqa: E402
from sdtheory.lm.trainers import TrainConfig, Trainer  # noqa: E402
from tests.lm._tiny import tiny  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FAST = tiny(n_eval=6, k=2, max_new_tokens=8, eval_k=2, eval_every=1, steps=3, lr=1e-2)


def _records(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    a, b = root / "paced", root / "opsd"
    Trainer(TrainConfig(method="paced", out=str(a), report_to="tensorboard", **FAST)).train()
    Trainer(TrainConfig(method="opsd", out=str(b), seed=1, **FAST)).train()
    return a, b


def _colour_pixels(img: np.ndarray, colour: str) -> int:
    from matplotlib.colors import to_rgb

    rgb = np.asarray(to_rgb(colour))
    return int((np.abs(img[..., :3] - rgb).max(-1) < 0.02).sum())


def test_plot_two_runs_writes_pngs_and_html(two_runs, tmp_path):
    import matplotlib.image as mpimg

    a, b = two_runs
    out = tmp_path / "plots"
    assert cli.main(["plot", str(a), str(b), "--out", str(out)]) == 0
    for name in ("train-reward", "eval-accuracy", "train-loss", "train-throughput"):
        img = mpimg.imread(out / f"{name}.png")
        assert img.shape[0] > 200 and img.shape[1] > 300
        assert _colour_pixels(img, "C0") > 20 and _colour_pixels(img, "C1") > 20, name
    # method-specific quantities appear without the plot naming a method
    assert (out / "train-paced_weight_mean.png").is_file()
    assert (out / "train-paced_weight_hist.png").is_file()
    assert (out / "eval-pass_at_2.png").is_file() and (out / "eval-greedy_accuracy.png").is_file()

    page = (out / "index.html").read_text()
    assert "<script src" not in page and "<link" not in page  # self-contained
    for png in out.glob("*.png"):  # every PNG inlined byte for byte
        assert base64.b64encode(png.read_bytes()).decode() in page
    blob = re.search(r'<script id="series" type="application/json">(.*?)</script>', page, re.S)
    series = json.loads(blob.group(1).replace("<\\/", "</"))
    assert series == json.loads((out / "series.json").read_text())
    assert list(series)[:4] == ["train/reward", "eval/accuracy", "train/loss", "train/throughput"]

    for run in (a, b):
        recs = _records(run)
        train = [r for r in recs if r["kind"] == "train"]
        evals = [r for r in recs if r["kind"] == "eval"]
        s = series["train/reward"][run.name]
        assert s["step"] == [1, 2, 3] and s["value"] == [r["reward"] for r in train]
        assert series["train/loss"][run.name]["value"] == [r["loss"] for r in train]
        acc = series["eval/accuracy"][run.name]
        assert acc["step"] == [0, 1, 2, 3] and acc["value"] == [r["accuracy"] for r in evals]
        assert acc["lo"] == [r["accuracy_lo"] for r in evals]
        assert all(
            lo <= v <= hi for lo, v, hi in zip(acc["lo"], acc["value"], acc["hi"], strict=True)
        )
        thr = series["train/throughput"][run.name]  # the trainer logs it (prompt + completion)
        assert thr["key"] == "tokens_per_s"
        assert thr["value"] == pytest.approx([r["tokens_per_s"] for r in train])
        assert all(r["tokens_per_s"] > r["completion_tokens"] * 4 / r["time_step"] for r in train)
    hist = series["train/paced_weight_hist"]["paced"]["matrix"]
    assert len(hist) == 3 and all(sum(row) == 2 for row in hist)  # 2 problems per step
    assert "opsd" not in series["train/paced_weight_hist"]


def test_tensorboard_has_every_scalar_under_its_name(two_runs):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    a, _ = two_runs
    acc = EventAccumulator(str(a / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    want: dict[str, dict[int, float]] = {}
    for rec in _records(a):
        for name, v in scalars(rec).items():
            if math.isfinite(v):
                want.setdefault(name, {})[rec["step"]] = v
    assert set(acc.Tags()["scalars"]) == set(want)
    assert {"train/loss", "eval/accuracy", "eval/pass_at_2", "train/paced_weight_mean"} <= set(want)
    for name, by_step in want.items():
        got = {e.step: e.value for e in acc.Scalars(name)}
        assert got == pytest.approx(by_step, rel=1e-6), name


def test_trackio_has_every_scalar_under_its_name(tmp_path):
    pytest.importorskip("trackio")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TRACKIO_DIR": str(tmp_path / "trackio"),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }
    run = tmp_path / "tracked"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in {**FAST, "steps": 2}.items()]
    cmd = [sys.executable, "-m", "sdtheory.lm.train_cli", "opsd", *flags, "--out", str(run)]
    res = subprocess.run(
        [*cmd, "--report-to", "trackio"], env=env, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr[-2000:]
    read = (
        "import json; from trackio.sqlite_storage import SQLiteStorage as S; "
        "print(json.dumps(S.get_logs('sdtheory', 'tracked')))"
    )
    res = subprocess.run(
        [sys.executable, "-c", read], env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr[-2000:]
    logged = json.loads(res.stdout.strip().splitlines()[-1])
    got: dict[str, dict[int, float]] = {}
    for row in logged:
        for k, v in row.items():
            if k not in ("timestamp", "step"):
                got.setdefault(k, {})[row["step"]] = v
    want: dict[str, dict[int, float]] = {}
    for rec in _records(run):
        for name, v in scalars(rec).items():
            if math.isfinite(v):
                want.setdefault(name, {})[rec["step"]] = v
    assert set(got) == set(want) and "train/loss" in got and "eval/accuracy" in got
    for name in want:
        assert got[name] == pytest.approx(want[name], rel=1e-6), name


def test_plot_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["plot", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sdtheory plot: error:") and "metrics.jsonl" in err


def test_plot_never_imports_torch():
    code = (
        "import sys; import sdtheory.lm.plot, sdtheory.lm.tracking, sdtheory.lm.metrics; "
        "assert 'torch' not in sys.modules"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
