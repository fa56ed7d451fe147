"""One claim index: paper pages, test markers and the registry name the same ids."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from sdtheory.claims import catalog

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = catalog.declared()  # the catalog alone, whatever else was imported
ID = re.compile(r"[a-z]+\.[a-z0-9][a-z0-9-]*")


def page_ids(text: str) -> list[str]:
    """Ids in the first cell of the page's table rows (`| `id` | ...`)."""
    out = []
    for line in text.splitlines():
        m = re.match(r"\|\s*`([^`]+)`\s*\|", line)
        if m and ID.fullmatch(m.group(1)):
            out.append(m.group(1))
    return out


def split_row(row: str) -> list[str]:
    r"""Cells of a markdown table row; `\|` (an escaped pipe, as in math) does not split."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip()[1:-1])]


def page_sources(text: str) -> dict[str, str]:
    """Id -> the source cell of its row, for tables whose header has a `source` column."""
    out, col = {}, None
    for line in text.splitlines():
        cells = split_row(line) if line.startswith("|") else []
        if cells and cells[0] == "id":
            col = cells.index("source") if "source" in cells else None
            continue
        if not cells:
            col = None
            continue
        m = re.fullmatch(r"`([^`]+)`", cells[0])
        if m and col is not None and col < len(cells):
            out[m.group(1)] = cells[col]
    return out


def row_labels(text: str) -> list[str]:
    """First cells that look like a private row label (B1, M4, D10, A2, S1)."""
    return [m.group(1) for m in re.finditer(r"^\|\s*([A-Z]\d{1,2})\s*\|", text, re.MULTILINE)]


def markers() -> list[tuple[str, str, tuple]]:
    """(file, marker name, args) for every `pytest.mark.paper/claim(...)` in the tests."""
    out = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            if (
                isinstance(f, ast.Attribute)
                and f.attr in ("paper", "claim")
                and isinstance(f.value, ast.Attribute)
                and f.value.attr == "mark"
            ):
                args = tuple(a.value for a in node.args if isinstance(a, ast.Constant))
                out.append((str(path.relative_to(ROOT)), f.attr, args))
    return out


PAGES = {
    p.parent.name: p.read_text(encoding="utf-8") for p in (ROOT / "papers").glob("*/README.md")
}


@pytest.mark.parametrize("key", sorted(PAGES))
def test_every_id_on_a_page_is_registered_and_belongs_to_it(key):
    ids = page_ids(PAGES[key])
    unknown = [i for i in ids if i not in REGISTRY]
    assert not unknown, f"papers/{key}/README.md lists unregistered ids {unknown}"
    assert not row_labels(PAGES[key]), f"papers/{key}: row labels instead of claim ids"


@pytest.mark.parametrize("key", sorted(PAGES))
def test_a_page_states_each_claims_registered_source_kind(key):
    """The source cell of a page row starts with the registry's kind (a page cannot upgrade it)."""
    wrong = {
        cid: cell
        for cid, cell in page_sources(PAGES[key]).items()
        if cid in REGISTRY and cell.split(" ")[0].strip("(,;:") != REGISTRY[cid].source.kind
    }
    assert not wrong, f"papers/{key}: source cells disagree with the registry: {wrong}"


@pytest.mark.parametrize("cid", sorted(c.id for c in REGISTRY.values() if c.paper))
def test_every_registered_claim_is_on_its_paper_page(cid):
    key = REGISTRY[cid].paper
    assert cid in page_ids(PAGES[key]), f"{cid} is missing from papers/{key}/README.md"


def test_every_test_marker_names_a_registered_claim():
    found = markers()
    assert len(found) > 50  # the scan sees the markers
    bad = []
    for path, name, args in found:
        if name == "claim":
            if len(args) != 1 or args[0] not in REGISTRY:
                bad.append((path, name, args))
        elif len(args) != 2 or args[1] not in REGISTRY or REGISTRY[args[1]].paper != args[0]:
            bad.append((path, name, args))
    assert not bad, f"markers naming unregistered claims (or the wrong paper): {bad}"


def test_the_scanners_find_what_they_should():
    page = "| id | claim |\n|---|---|\n| `krr.jax-refits` | x |\n| B1 | y |\n"
    assert page_ids(page) == ["krr.jax-refits"] and row_labels(page) == ["B1"]
