"""The verdict blocks of the README and the paper pages agree with the committed results."""

from __future__ import annotations

import json

from sdtheory import pages


def test_committed_pages_agree_with_the_committed_results():
    stale = pages.update(check=True)
    assert not stale, f"run `sdtheory pages`: stale verdict blocks in {[str(p) for p in stale]}"


def test_every_page_has_a_verdict_block_and_every_results_file_is_shown():
    root = pages.repo_root()
    for p in pages.pages(root):
        assert "<!-- verdicts:begin" in p.read_text(encoding="utf-8"), p
    snaps = pages.load_snapshots(root / "docs" / "results")
    assert {s["name"] for s in snaps} >= {"reproduce", "validate-cpu"}
    readme = (root / "README.md").read_text(encoding="utf-8")
    for s in snaps:
        assert f"**{s['name']}** (scale `{s['scale']}`" in readme


def _snap(name, scale, *results):
    return {"name": name, "scale": scale, "run": "test run", "results": list(results)}


def _r(cid, verdict, paper="p1", **kw):
    return {
        "claim_id": cid,
        "verdict": verdict,
        "predicted": "> 0",
        "measured": 1.0,
        "paper": paper,
        **kw,
    }


def test_failures_are_shown_with_their_scale_and_needs_scale_is_not_counted():
    snaps = [
        _snap("reproduce", "sim", _r("a.x", "held"), _r("a.y", "needs-scale", needs="--seeds 3")),
        _snap("validate-cpu", "cpu", _r("a.z", "failed", band=[0.5, 2.0])),
    ]
    page = pages.render_paper("p1", snaps)
    assert "| `a.z` | cpu | **failed** | > 0 | 1 [0.5, 2] | validate-cpu |" in page
    assert "needs a larger scale (`--seeds 3`)" in page
    readme = pages.render_readme(snaps)
    assert "1 checks, 1 held, 0 failed, 0 inconclusive; 1 more need a larger scale" in readme
    assert "Failed: `a.z`" in readme and "has not been run on a GPU" in readme
    gpu = pages.render_readme([*snaps, _snap("validate-gpu", "gpu", _r("a.z", "held"))])
    assert "has not been run on a GPU" not in gpu
    index = pages.render_index(snaps)
    assert "| p1 | validate-cpu (cpu) | 0 | 1 | 0 | 0 | `a.z` |" in index
    assert pages.render_paper("p2", snaps).startswith("No committed results")


def test_rewrite_touches_only_the_marked_blocks(tmp_path):
    (tmp_path / "docs" / "results").mkdir(parents=True)
    (tmp_path / "papers" / "p1").mkdir(parents=True)
    (tmp_path / "docs" / "results" / "reproduce.json").write_text(
        json.dumps(_snap("reproduce", "sim", _r("a.x", "failed")))
    )
    page = tmp_path / "papers" / "p1" / "README.md"
    page.write_text("intro\n<!-- verdicts:begin p1 -->\nold\n<!-- verdicts:end -->\nrest\n")
    (tmp_path / "README.md").write_text("no block here\n")
    assert pages.update(tmp_path, check=True) == [page]
    assert page.read_text().startswith("intro\n") and "old" in page.read_text()  # check: no write
    pages.update(tmp_path)
    text = page.read_text()
    assert "**failed**" in text and "old" not in text and text.endswith("rest\n")
    assert pages.update(tmp_path, check=True) == []
