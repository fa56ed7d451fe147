"""`sdtheory validate --fast`: every experiment runs, writes its run folder, and the report has
all five experiments with verdicts (whether the predictions hold is not asserted: the reduced
version is too small for that; the CPU-scale verdicts are in docs/lm/validate.md)."""

import html
import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("matplotlib")
pytest.importorskip("reasoning_gym")
pytest.importorskip("champ_dataset")

from sdtheory.lm import validate  # noqa: E402
from sdtheory.lm.validate import cli  # noqa: E402


def test_parser_and_bad_input():
    ns = cli.build_parser().parse_args(["--scale", "gpu", "--only", "krr", "taid", "--fast"])
    assert ns.scale == "gpu" and ns.only == ["krr", "taid"] and ns.fast
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--scale", "tpu"])
    with pytest.raises(ValueError, match="scale"):
        validate.run_validation("tpu", "/nonexistent")
    with pytest.raises(ValueError, match="only"):
        validate.run_validation("cpu", "/nonexistent", only=["nope"])
    with pytest.raises(ValueError, match="name"):
        validate.load_experiment("nope")


def test_every_experiment_has_configs_and_registered_claims():
    from sdtheory import claims

    for name in validate.EXPERIMENTS:
        mod = validate.load_experiment(name)
        assert set(mod.CONFIGS) == {"fast", "cpu", "gpu"}
        ours = [c for c in claims.REGISTRY.values() if c.id.startswith(f"validate.{name}.")]
        assert ours, name
        assert all(c.source.kind in ("paper", "code", "derived", "secondary") for c in ours)


def test_fast_validation_writes_the_report(tmp_path):
    rc = cli.main(["--scale", "cpu", "--fast", "--out", str(tmp_path)])
    assert rc == 0  # no experiment crashed (failed predictions do not change the exit code)
    md = (tmp_path / "report.md").read_text()
    page = (tmp_path / "report.html").read_text()
    assert "Scale: **cpu (reduced CI version, --fast)**" in md
    for name in validate.EXPERIMENTS:
        mod = validate.load_experiment(name)
        assert mod.TITLE in md and html.escape(mod.TITLE) in page
        run = tmp_path / name
        assert (run / "config.json").is_file() and (run / "metrics.json").is_file()
        assert (run / "checks.json").is_file()
        assert list(run.glob("*.png")), name
    results = json.loads((tmp_path / "results.json").read_text())
    by_exp = {
        name: [r for r in results if r["claim_id"].startswith(f"validate.{name}.")]
        for name in validate.EXPERIMENTS
    }
    for name, rs in by_exp.items():
        assert rs, f"no verdicts from {name}"
        assert not any(r["claim_id"].endswith(".run") for r in rs), f"{name} crashed"
        assert all(r["verdict"] in ("held", "failed", "inconclusive") for r in rs)
        assert all(r["scale"] == "lm-fast" for r in rs)
