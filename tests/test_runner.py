"""The shared runner of `sdtheory reproduce` and `sdtheory validate`: folders, crashes, report."""

import json

import pytest

from sdtheory import claims, runner

C = claims.Claim("t.runner", "the statement", claims.Source("derived", "here"), "m")


def _ok(run_dir):
    (run_dir / "fig.png").write_bytes(b"\x89PNG fake")
    return [claims.check_true(C, True), claims.needs_scale(C, "cpu-long", details="2 seeds")]


def _crash(run_dir):
    (run_dir / "partial.txt").write_text("started")
    raise RuntimeError("out of memory in step 3")


def test_items_run_in_their_folders_and_a_crash_becomes_one_failed_result(tmp_path, capsys):
    items = [
        runner.Item("a", _ok, folder="sims/a", title="Item A", about="first"),
        runner.Item("b", _crash, crash_id="v.b.run", crash_statement="b runs", scale="lm-fast"),
        runner.Item("c", lambda d: [claims.check_true(C, False)]),
    ]
    runs = runner.run_items(items, tmp_path)
    assert [r.name for r in runs] == ["a", "b", "c"]
    assert [r.crashed for r in runs] == [False, True, False]
    assert runs[0].run_dir == tmp_path / "sims" / "a" and runs[0].title == "Item A"
    assert runs[0].figures == [tmp_path / "sims" / "a" / "fig.png"]
    assert all(r.seconds >= 0.0 for r in runs)
    (crash,) = runs[1].results
    assert crash.claim_id == "v.b.run" and crash.verdict == "failed"
    assert crash.details == "RuntimeError: out of memory in step 3" == runs[1].error
    assert crash.statement == "b runs" and crash.scale == "lm-fast"
    assert (tmp_path / "b" / "partial.txt").is_file()  # the folder keeps what the item wrote
    assert runs[2].results[0].verdict == "failed" and not runs[2].crashed
    for r in runs:  # each item's results are saved in its folder
        saved = json.loads((r.run_dir / "checks.json").read_text())
        assert [x["claim_id"] for x in saved] == [x.claim_id for x in r.results]
    printed = capsys.readouterr()
    assert f"[1/3] a: first -> {tmp_path / 'sims' / 'a'}" in printed.out
    assert "[2/3] b ->" in printed.out and "[3/3] c ->" in printed.out
    assert "RuntimeError: out of memory in step 3" in printed.err  # the full traceback

    md, html = runner.write_report(runs, tmp_path, title="T", preamble="P")
    text = md.read_text()
    assert "1 held, 2 failed, 0 inconclusive" in text and "1 more need a larger scale" in text
    assert "## Item A (0 s, run folder `sims/a/`)" in text and "## b (0 s, run folder `b/`)" in text
    assert "`t.runner` (`--scale cpu-long`)" in text  # listed apart, not counted
    assert "![fig](sims/a/fig.png)" in text
    assert len(json.loads((tmp_path / "results.json").read_text())) == 4
    assert "data:image/png;base64," in html.read_text()


def test_default_crash_result_and_unique_names(tmp_path):
    (run,) = runner.run_items([runner.Item("x", _crash)], tmp_path)
    (r,) = run.results
    assert (r.claim_id, r.statement, r.scale) == ("x.run", "x runs", "sim")
    with pytest.raises(ValueError, match="item names must be unique"):
        runner.run_items([runner.Item("x", _ok), runner.Item("x", _ok)], tmp_path)
