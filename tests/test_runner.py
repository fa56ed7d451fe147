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


# --- time budgets ------------------------------------------------------------------------------
class FakeClock:
    """A clock that moves only when told (seconds as a float)."""

    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_budget_check_stops_before_a_unit_that_would_not_fit(tmp_path):
    clock = FakeClock()
    b = runner.Budget(10.0, log=tmp_path / "b.jsonl", clock=clock, hard=False)
    done = []
    with b.measuring():
        for step in range(100):
            b.check("step", tokens=50)
            clock.t += 3.0  # each step takes 3 s: steps start at 0, 3, 6; a 4th would end at 12
            done.append(step)
    assert done == [0, 1, 2] and b.counts == {"step": 3}
    assert b.stopped.startswith("stopped before step 4 at 9.00 s of its 10.00 s share")
    recs = [json.loads(x) for x in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert [r["n"] for r in recs] == [1, 2, 3, 4] and recs[-1]["stop"] is True
    assert recs[1]["seconds"] == 3.0 and recs[1]["tokens_per_s"] == pytest.approx(50 / 3, abs=0.05)
    assert recs[0]["seconds"] is None and recs[2]["remaining"] == pytest.approx(4.0)
    # the run goes on after the block; an unlimited budget never stops
    u = runner.Budget()
    for _ in range(5):
        u.check()
    assert u.stopped is None and not u.limited and u.summary()["share_s"] is None
    with pytest.raises(ValueError, match="seconds"):
        runner.Budget(-1.0)


def test_budget_hard_stop_interrupts_a_long_unit():
    import time

    b = runner.Budget(0.2)
    t0 = time.monotonic()
    with b.measuring():
        time.sleep(5)  # one unit far longer than the share
    assert time.monotonic() - t0 < 2.0
    assert b.stopped.startswith("interrupted inside a unit")
    with b.measuring():  # a spent budget stops at the first check
        b.check()
    with pytest.raises(ValueError, match="nested"), b.measuring(), b.measuring():
        pass


def _budgeted(seconds_per_unit, units, clock, log):
    def run(run_dir, budget):
        log.append((run_dir.name, budget.seconds))
        n = 0
        with budget.measuring():
            for _ in range(units):
                budget.check("unit")
                clock.t += seconds_per_unit
                n += 1
        if n < units:
            return [budget.undecided(C, details=f"{n} of {units} units")]
        return [claims.check_true(C, True)]

    return run


def test_run_items_divides_the_budget_by_weight_and_carries_time_forward(tmp_path):
    clock, log = FakeClock(), []
    items = [
        runner.Item("a", _budgeted(1.0, 2, clock, log), budgeted=True, weight=1.0, claims=[C]),
        runner.Item("b", _budgeted(5.0, 10, clock, log), budgeted=True, weight=2.0, claims=[C]),
        runner.Item("c", _budgeted(1.0, 1, clock, log), budgeted=True, weight=1.0, claims=[C]),
        runner.Item("d", _budgeted(1.0, 1, clock, log), budgeted=True, weight=1.0, claims=[C]),
    ]
    runs = runner.run_items(
        items, tmp_path, budget_s=42.0, reserve_s=2.0, clock=clock, min_share_s=1.0
    )
    shares = dict(log)
    assert shares["a"] == pytest.approx(40.0 * 1 / 5)  # 40 s to give, weights 1, 2, 1, 1
    # a used 2 s of its 8: b gets 38 * 2/4 = 19 s; it stops after 3 units of 5 s (15 s)
    assert shares["b"] == pytest.approx(19.0)
    assert runs[1].budget["units"] == {"unit": 3} and runs[1].results[0].verdict == "needs-scale"
    assert "3 of 10 units" in runs[1].results[0].details
    assert shares["c"] == pytest.approx(23.0 / 2)  # b's 4 unspent seconds carried forward
    assert [r.results[0].verdict for r in runs] == ["held", "needs-scale", "held", "held"]
    # an item whose share is under min_share_s is not started: its claims need a larger scale
    clock2, log2 = FakeClock(), []
    late = runner.Item("z", _budgeted(1.0, 1, clock2, log2), budgeted=True, claims=[C], needs="gpu")
    (run,) = runner.run_items([late], tmp_path / "z", budget_s=2.5, reserve_s=2.0, clock=clock2)
    assert log2 == [] and run.results[0].verdict == "needs-scale" and run.results[0].needs == "gpu"
    assert "not started" in run.results[0].details
    md, _ = runner.write_report(runs, tmp_path, title="T")
    assert "units measured: 3 x unit" in md.read_text()


def test_run_items_keeps_back_the_time_items_take_after_measuring(tmp_path):
    """Deciding and figures come after an item's measuring block: the longest such time so far
    is kept back for every item still to run, so the last one's decision fits the budget too."""
    clock, log = FakeClock(), []

    def run(run_dir, budget):
        log.append(budget.seconds)
        with budget.measuring():
            clock.t += 1.0  # measuring
        clock.t += 4.0  # deciding, after the block
        return [claims.check_true(C, True)]

    items = [runner.Item(f"x{i}", run, budgeted=True, claims=[C]) for i in range(3)]
    runs = runner.run_items(items, tmp_path, budget_s=100.0, reserve_s=0.0, clock=clock)
    assert log[0] == pytest.approx(100.0 / 3)  # nothing known yet
    assert log[1] == pytest.approx((100.0 - 5.0 - 2 * 4.0) / 2)  # 4 s kept back for x1 and x2
    assert log[2] == pytest.approx(100.0 - 10.0 - 4.0)
    assert [r.budget["measured_s"] for r in runs] == [1.0, 1.0, 1.0]
    assert 10.0 + log[2] + 4.0 == pytest.approx(100.0)  # x2 spending all its share still fits


def test_out_of_time_escaping_an_item_gives_needs_scale_for_its_claims(tmp_path):
    clock = FakeClock()

    def run(run_dir, budget):
        budget.check()
        clock.t += 5.0
        budget.check()  # outside measuring(): the OutOfTime reaches the runner
        return [claims.check_true(C, True)]

    item = runner.Item("x", run, budgeted=True, claims=[C], needs="cpu-long")
    (r,) = runner.run_items([item], tmp_path, budget_s=10.0, reserve_s=6.0, clock=clock)
    assert not r.crashed and [x.verdict for x in r.results] == ["needs-scale"]
    assert "stopped by its time budget" in r.results[0].details
    with pytest.raises(ValueError, match="budget_s"):
        runner.run_items([item], tmp_path, budget_s=0.0)
    with pytest.raises(ValueError, match="weight"):
        runner.run_items([runner.Item("w", run, weight=0.0)], tmp_path)
