"""Every sim runs at its quick defaults, writes its table, figure and claim verdicts."""

import json

import pytest

from sdtheory import simio

SIMS = simio.sim_names()


@pytest.mark.parametrize("name", SIMS)
def test_sim_runs_and_its_claims_hold(name, tmp_path):
    mod = simio.load_sim(name)
    out = mod.main(["--out", str(tmp_path)])
    assert (out / "config.json").exists() and (out / "env.json").exists()
    assert list(out.glob("*.csv")), "a sim writes at least one CSV table"
    assert list(out.glob("*.png")), "a sim writes at least one figure"
    checks = json.loads((out / "checks.json").read_text())
    assert checks, "a sim checks at least one claim"
    failed = [c["claim_id"] for c in checks if c["verdict"] == "failed"]
    assert not failed, f"claims failed at the quick defaults: {failed}"


def test_sim_flags_come_from_config(tmp_path):
    mod = simio.load_sim("kl_estimators")
    out = mod.main(
        ["--out", str(tmp_path), "--pairs", "2", "--samples", "500", "--scales", "0.5", "1.0"]
    )
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["pairs"] == 2 and cfg["scales"] == [0.5, 1.0]
