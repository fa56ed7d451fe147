"""The GPU path on the CPU: `sdtheory validate --scale gpu` within a time budget, and `--smoke`.

Both run as the CLI does, in a subprocess (the budget's hard stop is a signal of the main
thread; the experiments' device and model settings are per process).
"""

import csv
import json
import os
import subprocess
import sys
import time

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("matplotlib")
pytest.importorskip("reasoning_gym")
pytest.importorskip("champ_dataset")

from sdtheory.lm import validate  # noqa: E402

VERDICTS = {"held", "failed", "inconclusive", "needs-scale"}


def _strict(text: str):
    """`json.loads` that refuses NaN and Infinity (not JSON)."""

    def bad(c):
        raise ValueError(f"{c} is not JSON")

    return json.loads(text, parse_constant=bad)


def _cli(*args, timeout):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "sdtheory.lm.validate.cli", *args]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    return r, time.monotonic() - t0


def test_budgeted_gpu_run_stops_in_time_and_its_files_are_complete(tmp_path):
    """The GPU sizes with the tiny model on the CPU, given 20 s: far too little for them, so the
    experiments stop at their shares; every file is complete and the report says what was
    measured and what needs a larger scale."""
    budget = 20.0
    r, wall = _cli(
        "--scale", "gpu", "--model", "tiny", "--device", "cpu", "--budget-s", str(budget),
        "--out", str(tmp_path), timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    timing = _strict((tmp_path / "timing.json").read_text())
    # the budget counts from the start of the command; past it: the report and the interpreter
    assert timing["budget_s"] == budget and timing["total_seconds"] <= budget + 3.0
    assert wall <= budget + 25.0, wall  # interpreter start-up and exit on a loaded 2-core CI
    # every file is complete: JSON parses strictly, JSON lines too, CSV rows have their columns
    for p in tmp_path.rglob("*.json"):
        _strict(p.read_text())
    for p in tmp_path.rglob("*.jsonl"):
        for line in p.read_text().splitlines():
            _strict(line)
    for p in tmp_path.rglob("*.csv"):
        rows = list(csv.reader(p.open()))
        assert rows and all(len(x) == len(rows[0]) for x in rows), p
    results = _strict((tmp_path / "results.json").read_text())
    assert {x["verdict"] for x in results} <= VERDICTS
    assert not any(x["claim_id"].endswith(".run") for x in results)  # nothing crashed
    # every claim of every experiment is reported, and what could not be decided says so
    for name in validate.EXPERIMENTS:
        ids = {c.id for c in validate.load_experiment(name).CLAIMS}
        assert ids <= {x["claim_id"] for x in results}, name
    later = [x for x in results if x["verdict"] == "needs-scale"]
    assert later and all(x["needs"] == "gpu" and x["details"] for x in later)
    budgets = timing["budgets"]
    assert any(b["stopped"] for b in budgets.values())  # 20 s cannot hold the GPU sizes
    for b in budgets.values():  # an item ends at its share (+ the hard stop's lag, its report)
        assert b["elapsed_s"] <= b["share_s"] + 3.0, b
    md = (tmp_path / "report.md").read_text()
    assert "need a larger scale" in md and "Time budget 20 s" in md
    assert "units measured:" in md
    # what was measured before the stops is on disk, unit by unit (how far each experiment got
    # in 20 s depends on the machine's load: under a heavy one, none reaches its first unit)
    for name, b in budgets.items():
        if b["units"]:
            first = (tmp_path / name / "budget.jsonl").read_text().splitlines()[0]
            assert "peak_memory_gib" in _strict(first), name


def test_smoke_on_the_cpu(tmp_path):
    """`sdtheory validate --smoke --device cpu`: every method 2 steps, the losses in fp32 and
    bf16, fused vs plain (Liger skipped without liger_kernel), every experiment's fast version."""
    r, _ = _cli("--smoke", "--device", "cpu", "--out", str(tmp_path), timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = _strict((tmp_path / "smoke.json").read_text())
    assert report["ok"] and report["precision"] == "fp32" and report["failed"] == []
    status = {c["name"]: c["status"] for c in report["checks"]}
    from sdtheory.lm.methods import method_names

    assert {f"method/{m}" for m in method_names()} <= set(status)  # read from the registry
    assert status["losses"] == status["seeds"] == status["experiments"] == "ok"
    try:
        import liger_kernel  # noqa: F401

        assert status["liger"] in ("ok", "skipped")
    except ImportError:
        assert status["liger"] == "skipped"
    assert (tmp_path / "experiments" / "report.md").is_file()


def test_each_experiment_has_one_size_knob_that_leaves_its_task_sets_alone(capsys):
    """`KNOB` names the one `Config` count an experiment's cost is linear in; setting it (CLI
    `--size NAME=N`) changes that field only, so a bundle's task sets still serve the run."""
    import dataclasses

    from sdtheory.lm import taskfile
    from sdtheory.lm.bundle._requests import REQUESTS
    from sdtheory.lm.validate import cli

    def sets(name, cfg):
        return [(taskfile.task_spec(t), n, s) for t, n, s in REQUESTS[name](cfg)]

    for name in validate.EXPERIMENTS:
        knob = validate.load_experiment(name).KNOB
        for scale in ("fast", "cpu", "gpu"):
            cfg = validate.experiment_config(name, scale)
            n = getattr(cfg, knob)
            assert isinstance(n, int) and n > 0, (name, knob)
            big = validate.experiment_config(name, scale, 3 * n + 1)
            assert getattr(big, knob) == 3 * n + 1
            assert dataclasses.replace(big, **{knob: n}) == cfg  # nothing else changed
            assert sets(name, big) == sets(name, cfg)
    with pytest.raises(ValueError, match=r"sizes\['opsd'\] \(its steps\)"):
        validate.experiment_config("opsd", "gpu", 0)
    with pytest.raises(ValueError, match="scale must be one of"):
        validate.experiment_config("opsd", "tpu")
    with pytest.raises(ValueError, match="sizes names experiments that do not run"):
        validate.run_validation("gpu", "unused", only=["krr"], sizes={"opsd": 3})
    assert cli.main(["--scale", "gpu", "--size", "opsd:3", "--out", "unused"]) == 2
    assert "--size must be NAME=N, got 'opsd:3'" in capsys.readouterr().err
    future = str(time.time() + 100)
    assert cli.main(["--scale", "gpu", "--budget-from", future, "--out", "unused"]) == 2
    assert "--budget-from must be a time in the last day" in capsys.readouterr().err


def test_krr_stopped_between_its_features_and_its_first_fit(tmp_path, monkeypatch):
    """A hard stop can land anywhere in the measuring block: krr stopped after its features but
    inside the linear head's fits reports every claim needs-scale, and a stop inside the block's
    fits leaves the head's checks decided and the block's claim needing scale."""
    import dataclasses

    from sdtheory.lm.validate import _common as C
    from sdtheory.lm.validate import krr
    from sdtheory.runner import Budget, OutOfTime

    def stop(*args, **kwargs):
        raise OutOfTime("interrupted inside the fits")

    prev = C.settings()
    C.configure(device="cpu", precision="fp32", model="tiny")
    try:
        with monkeypatch.context() as m:
            m.setattr(krr, "head_checks", stop)
            res = krr.run(krr.CONFIGS["fast"], tmp_path / "head", budget=Budget(600.0))
        assert [r.claim_id for r in res] == [c.id for c in krr.CLAIMS]
        assert all(r.verdict == "needs-scale" and "head was not fitted" in r.details for r in res)
        assert _strict((tmp_path / "head" / "config.json").read_text())
        with monkeypatch.context() as m:
            m.setattr(krr, "block_surfaces", stop)
            res = krr.run(krr.CONFIGS["fast"], tmp_path / "block", budget=Budget(600.0))
    finally:
        C.configure(**dataclasses.asdict(prev))
    block = [r for r in res if r.claim_id == krr.V.KRR_LAST_BLOCK.id]
    assert len(block) == 1 and block[0].verdict == "needs-scale"
    assert "did not finish" in block[0].details
    assert {r.claim_id for r in res} == {c.id for c in krr.CLAIMS}
    assert all(r.verdict != "needs-scale" for r in res if r is not block[0])  # head decided
