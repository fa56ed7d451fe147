"""Every sim runs at its quick defaults, writes its table and figure, and gives the pinned verdicts.

The full verdict map (held, failed, inconclusive, needs-scale per claim) is pinned in
`tests/sims/pinned.py`; `tests/sims/test_seed_stability_*.py` checks the same map at seeds 1-4.
"""

import json

import pytest

from sdtheory import claims, simio
from sdtheory.claims import catalog
from tests.sims.pinned import VERDICTS

SIMS = simio.sim_names()


def test_every_sim_is_pinned():
    assert set(VERDICTS) == set(SIMS)


@pytest.mark.parametrize("name", SIMS)
def test_sim_runs_and_gives_the_pinned_verdicts(name, tmp_path):
    mod = simio.load_sim(name)
    out = mod.main(["--out", str(tmp_path)])
    assert (out / "config.json").exists() and (out / "env.json").exists()
    assert list(out.glob("*.csv")), "a sim writes at least one CSV table"
    assert list(out.glob("*.png")), "a sim writes at least one figure"
    checks = json.loads((out / "checks.json").read_text())
    ids = [c["claim_id"] for c in checks]
    assert len(ids) == len(set(ids)), f"one result per claim, got {ids}"
    assert set(ids) <= set(catalog.declared()), "every checked claim is in the catalog"
    got = {c["claim_id"]: c["verdict"] for c in checks}
    assert got == VERDICTS[name], f"verdicts changed at the quick defaults: {got}"
    for c in checks:  # a counted statistical verdict always has a finite band
        r = claims.CheckResult.from_json(c)
        if r.counted and r.band is not None and r.verdict != "failed":
            assert all(isinstance(x, float) for x in r.band), (r.claim_id, r.band)


def test_sim_flags_come_from_config(tmp_path):
    mod = simio.load_sim("kl_estimators")
    out = mod.main(
        ["--out", str(tmp_path), "--pairs", "2", "--samples", "500", "--scales", "0.5", "1.0"]
    )
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["pairs"] == 2 and cfg["scales"] == [0.5, 1.0]
