"""The meta sims run end to end at reduced sizes and every claim they check holds."""

from __future__ import annotations

import json

import pytest

from sdtheory import simio

CASES = {
    "meta_contraction": [
        "--vocab",
        "40",
        "--pairs",
        "2",
        "--lams",
        "0.3",
        "0.5",
        "--generations",
        "80",
    ],
    "meta_finite_sample": [
        "--vocab",
        "20",
        "--n-samples",
        "50",
        "--generations",
        "40",
        "--replicates",
        "100",
        "--lams",
        "0.0",
        "0.2",
    ],
    "meta_multi_teacher": ["--vocab", "30", "--generations", "40"],
    "meta_capacity": [
        "--vocab",
        "25",
        "--lams",
        "0.3",
        "0.5",
        "--targets",
        "1",
        "--generations",
        "10",
    ],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_sim_runs_and_claims_hold(name, tmp_path):
    out = simio.load_sim(name).main(["--out", str(tmp_path), *CASES[name]])
    assert (out / "results.csv").stat().st_size > 0
    assert list(out.glob("*.png"))
    checks = json.loads((out / "checks.json").read_text())
    assert checks, "the sim must check at least one claim"
    bad = [(c["claim_id"], c["verdict"], c["measured"]) for c in checks if c["verdict"] != "held"]
    assert not bad, bad
