"""Smoke tests for the kernel self-distillation sims: outputs exist and every claim holds."""

from __future__ import annotations

import json

import pytest

from sdtheory import simio


def _run(name, tmp_path, *flags):
    out = simio.load_sim(name).main(["--out", str(tmp_path), *flags])
    checks = json.loads((out / "checks.json").read_text())
    assert (out / "results.csv").exists()
    assert list(out.glob("*.png"))
    failed = [c for c in checks if c["verdict"] != "held"]
    assert not failed, failed
    return out, checks


@pytest.mark.paper("borup2021", "krr.ground-truth-dampens")
@pytest.mark.claim("krr.ground-truth-dampens")
def test_krr_toy(tmp_path):
    out, checks = _run("krr_toy", tmp_path)
    assert (out / "table.md").read_text().count("|") > 20
    assert {c["claim_id"] for c in checks} >= {
        "krr.closed-form-equals-refits",
        "krr.limit-amplified-ridge",
    }


def test_krr_alpha_steps(tmp_path):
    _run("krr_alpha_steps", tmp_path, "--n-alpha", "11", "--steps", "10")


def test_mobahi_rounds(tmp_path):
    _run("mobahi_rounds", tmp_path, "--instances", "20")


@pytest.mark.slow  # JAX compilation + GD fits: ~45 s on 2 busy cores at the sim defaults
def test_krr_network(tmp_path):
    pytest.importorskip("jax")
    _run("krr_network", tmp_path, "--widths", "8", "128", "--seeds", "2", "--steps", "2")
