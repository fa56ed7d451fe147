"""Smoke test of `benchmarks/bench_losses.py`: the worker runs every method at a tiny size."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_losses.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_losses", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_worker_runs_each_method_and_losses_agree(bench, capsys):
    losses = {}
    for method in ("plain", "textbook", "fused"):
        bench.main(
            [
                "--worker",
                "--method",
                method,
                "--T",
                "9",
                "--H",
                "4",
                "--V",
                "23",
                "--device",
                "cpu",
                "--reps",
                "1",
                "--chunk-size",
                "4",
            ]
        )
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert out["status"] == "ok" and out["time_s"] > 0
        losses[method] = out["loss"]
    # the three implementations compute the same generalised JSD (float32)
    assert losses["fused"] == pytest.approx(losses["plain"], rel=1e-5)
    assert losses["textbook"] == pytest.approx(losses["plain"], rel=1e-5)
