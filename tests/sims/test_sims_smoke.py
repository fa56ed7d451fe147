"""Every sim runs at its quick defaults, writes its table, figure and claim verdicts."""

import json

import pytest

from sdtheory import simio

SIMS = simio.sim_names()

# Claims that are measured and honestly refuted at the quick defaults (seeded, so deterministic).
# Pinning them here means a verdict that flips, either way, is noticed and explained.
KNOWN_FAILED = {
    # The toy student's gradient SNR (sdtheory.nets.paced) is not a bell over the pass rate: it
    # shrinks at p -> 1 but not enough for the 2-SE criterion, and does not shrink at p -> 0; the
    # measured optimal weight is far from p(1-p). See papers/paced2026/README.md.
    "paced.snr-collapse-mastered",
    "paced.snr-collapse-unreachable",
    "paced.default-kernel-efficiency",
}


@pytest.mark.parametrize("name", SIMS)
def test_sim_runs_and_its_claims_hold(name, tmp_path):
    mod = simio.load_sim(name)
    out = mod.main(["--out", str(tmp_path)])
    assert (out / "config.json").exists() and (out / "env.json").exists()
    assert list(out.glob("*.csv")), "a sim writes at least one CSV table"
    assert list(out.glob("*.png")), "a sim writes at least one figure"
    checks = json.loads((out / "checks.json").read_text())
    assert checks, "a sim checks at least one claim"
    failed = {c["claim_id"] for c in checks if c["verdict"] == "failed"}
    ids = {c["claim_id"] for c in checks}
    assert failed == KNOWN_FAILED & ids, f"failed at the quick defaults: {sorted(failed)}"


def test_sim_flags_come_from_config(tmp_path):
    mod = simio.load_sim("kl_estimators")
    out = mod.main(
        ["--out", str(tmp_path), "--pairs", "2", "--samples", "500", "--scales", "0.5", "1.0"]
    )
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["pairs"] == 2 and cfg["scales"] == [0.5, 1.0]
