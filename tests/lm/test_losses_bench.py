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
                "--threads",
                "1",
            ]
        )
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert out["status"] == "ok" and out["time_s"] > 0 and out["threads"] == 1
        losses[method] = out["loss"]
    # the three implementations compute the same generalised JSD (float32)
    assert losses["fused"] == pytest.approx(losses["plain"], rel=1e-5)
    assert losses["textbook"] == pytest.approx(losses["plain"], rel=1e-5)


def test_summary_medians_and_paired_ratios(bench):
    """Medians over interleaved rounds, ratios of medians, medians of per-round ratios."""

    def m(method, rnd, t, peak):
        return {
            "method": method,
            "T": 8,
            "H": 4,
            "V": 16,
            "status": "ok",
            "round": rnd,
            "time_s": t,
            "peak_gib": peak,
            "load_1min": 1.0,
        }

    results = [
        m("plain", 0, 2.0, 1.0),
        m("textbook", 0, 4.0, 4.0),
        m("fused", 0, 1.0, 0.5),
        m("plain", 1, 9.0, 1.0),
        m("textbook", 1, 10.0, 4.0),
        m("fused", 1, 3.0, 0.5),
        m("plain", 2, 3.0, 1.2),
        m("textbook", 2, 5.0, 4.0),
        m("fused", 2, 2.0, 0.5),
    ]
    skipped = {
        "method": "plain",
        "T": 8,
        "H": 4,
        "V": 32,
        "status": "skipped: too big",
        "predicted_peak_gib": 2.0,
    }
    fused_big = {**m("fused", 0, 1.0, 0.5), "V": 32}
    (row, big) = bench.summarize([*results, skipped, fused_big], [(8, 4, 16), (8, 4, 32)])
    assert row["plain_time_s"] == 3.0 and row["textbook_time_s"] == 5.0
    assert row["plain_over_textbook_time"] == 0.6
    assert row["plain_over_textbook_memory"] == 0.25
    # per round: 0.5, 0.9, 0.6 -> median 0.6; fused/plain: 0.5, 0.333, 0.667 -> 0.5
    assert row["plain_over_textbook_time_paired_median"] == 0.6
    assert row["fused_over_plain_time_paired_median"] == 0.5
    assert row["plain_times_s"] == [2.0, 9.0, 3.0]
    assert big["plain_status"].startswith("skipped")
    assert big["fused_over_plain_memory_vs_predicted"] == 0.25
