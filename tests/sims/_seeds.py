"""Shared by `test_seed_stability_*.py`: run a sim at a seed and compare with the pinned map."""

from __future__ import annotations

import json

from sdtheory import simio, sweep
from tests.sims.pinned import VERDICTS

SEEDS = (1, 2, 3, 4)  # seed 0 is the default: tests/sims/test_sims_smoke.py
# two halves of about equal run time, one per test file (pytest -n 2 --dist loadfile)
HALF_A = ("krr_network", "paced_snr", "taid_toys", "paced_two_stage")
HALF_B = tuple(n for n in simio.sim_names() if n not in HALF_A)


def check_seed(name: str, seed: int, tmp_path) -> None:
    if not sweep.has_seed(name):  # no randomness (krr_toy): one run covers every seed
        return
    out = simio.load_sim(name).main(["--out", str(tmp_path), "--seed", str(seed)])
    got = {c["claim_id"]: c["verdict"] for c in json.loads((out / "checks.json").read_text())}
    changed = {k: (VERDICTS[name].get(k), v) for k, v in got.items() if VERDICTS[name].get(k) != v}
    assert got.keys() == VERDICTS[name].keys() and not changed, (
        f"{name} at --seed {seed}: verdicts changed (pinned, now): {changed}"
    )
