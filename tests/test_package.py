"""Package-level contracts: light import, claim registry, report writer, CLI."""

import json
import subprocess
import sys

import pytest

from sdtheory import claims, cli


def test_import_is_light():
    code = (
        "import sys, sdtheory, sdtheory.core, sdtheory.claims, sdtheory.simio, sdtheory.runner, "
        "sdtheory.theory; "
        "bad = [m for m in ('torch', 'jax', 'sympy', 'matplotlib') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_register_rejects_conflicting_redefinition():
    c = claims.claim("test.example", "x", ("derived", "here"), "m")
    assert claims.claim("test.example", "x", ("derived", "here"), "m") == c
    with pytest.raises(ValueError, match="already registered"):
        claims.claim("test.example", "y", ("derived", "here"), "m")
    del claims.REGISTRY["test.example"]


def test_source_kind_is_validated():
    with pytest.raises(ValueError, match="kind must be one of"):
        claims.Source("rumour", "x")


def test_check_helpers_verdicts():
    c = claims.Claim("t.c", "s", claims.Source("paper", "P §1"), "m")
    assert claims.check_close(c, 1.0, 1.05, atol=0.1).verdict == "held"
    assert claims.check_close(c, 1.0, 1.2, atol=0.1).verdict == "failed"
    assert claims.check_close(c, 1.0, float("nan"), atol=0.1).verdict == "failed"
    assert claims.check_close(c, 100.0, 104.0, rtol=0.05).verdict == "held"
    assert claims.check_bound(c, 1.0, 0.9).verdict == "held"
    assert claims.check_bound(c, 1.0, 1.1).verdict == "failed"
    assert claims.check_bound(c, 1.0, 1.1, direction=">=").verdict == "held"
    assert claims.check_true(c, False).verdict == "failed"
    r = claims.check_close(c, 1.0, 1.0, atol=0.0)
    assert r.source == "paper: P §1" and r.statement == "s"
    assert claims.CheckResult.from_json(json.loads(json.dumps(r.to_json()))) == r


def test_report_writer(tmp_path):
    c = claims.Claim("t.c", "statement", claims.Source("derived", "notes"), "m")
    fig = tmp_path / "f.png"
    fig.write_bytes(b"\x89PNG fake")
    res = [claims.check_close(c, 1.0, 3.0, atol=0.5), claims.check_true(c, True)]
    md, html = claims.write_report([("sec", res, [fig])], tmp_path, preamble="scale: test")
    text = md.read_text()
    assert "1 held, 1 failed" in text and "![f](f.png)" in text and "`t.c`" in text
    assert "data:image/png;base64," in html.read_text()
    assert len(json.loads((tmp_path / "results.json").read_text())) == 2


def test_reproduce_runs_sims_and_writes_report(tmp_path, capsys):
    rc = cli.main(["reproduce", "--out", str(tmp_path), "--only", "kl_estimators"])
    assert rc == 0
    report = (tmp_path / "report.md").read_text()
    assert "core.k1-unbiased" in report and "held" in report
    assert (tmp_path / "sims" / "kl_estimators" / "results.csv").exists()
    assert "data:image/png" in (tmp_path / "report.html").read_text()


def test_reproduce_rejects_unknown_sim(tmp_path):
    with pytest.raises(SystemExit, match="unknown sims"):
        cli.main(["reproduce", "--out", str(tmp_path), "--only", "nope"])


def test_list_shows_sims_and_claims(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "kl_estimators" in out and "core.k3-nonnegative" in out


def test_console_script_help():
    out = subprocess.run(
        [sys.executable, "-m", "sdtheory.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "reproduce" in out and "list" in out


def test_validate_and_train_are_handed_over_before_parsing(capsys):
    pytest.importorskip("torch")
    with pytest.raises(SystemExit) as exc:
        cli.main(["validate", "--help"])
    assert exc.value.code == 0
    assert "--scale" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--help"])
    assert exc.value.code == 0
    assert "--method" in capsys.readouterr().out
