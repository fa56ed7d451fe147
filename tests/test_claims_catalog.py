"""The claim catalog: light to import, complete, and no source tag says more than its source."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from sdtheory import claims, simio
from sdtheory.claims import Source, catalog

REGISTRY = catalog.declared()  # the catalog alone, whatever else was imported
CATALOG_IDS = set(REGISTRY)

QUOTE = re.compile(r"\"[^\"]{12,}\"|“[^”]{12,}”")
OUR_DOCS = re.compile(r"\S+\.md\s*§\s*[\d.\-–]+")  # our own documents' sections are fine
SECTION = re.compile(
    r"§|\b(?:Sec(?:tion)?s?|Thm|Theorem|Table|Tab|Eq(?:uation)?|Fig(?:ure)?|Lemma|"
    r"Prop(?:osition)?|Cor(?:ollary)?|App(?:endix)?|Alg(?:orithm)?)\.?\s*\(?[A-Z]?\d",
    re.IGNORECASE,
)
CODE = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{7,40}:\S+")


def ref_problems(source: Source) -> list[str]:
    """What is wrong with a source tag (empty when it says no more than its source)."""
    out = []
    if re.search(r"recall", source.ref, re.IGNORECASE):
        out.append("says 'recall': a recollection is `secondary`, never `paper`")
    if source.kind == "paper":
        if not QUOTE.search(source.ref):
            out.append("a `paper` ref must quote the words we hold (12+ characters in quotes)")
        outside = OUR_DOCS.sub("", QUOTE.sub("", source.ref))
        m = SECTION.search(outside)
        if m:
            out.append(f"a `paper` ref cites {m.group(0)!r} outside a quote (not read)")
    if source.kind == "code" and not CODE.match(source.ref):
        out.append("a `code` ref starts with owner/repo@commit:path")
    return out


@pytest.mark.parametrize(
    "ref, kind, ok",
    [
        ('arXiv:1 abstract: "we show that anchored recursion contracts"', "paper", True),
        ("Borup & Andersen 2021, Sec. 3; recursion of the notebook", "paper", False),
        ('abstract and Sec. 6: "TAID outperforms both baselines"', "paper", False),
        ('"TAID outperforms both baselines at every scale" (Sec. 6)', "paper", False),
        ('RECALL, a hypothesis: "self-distillation amplifies regularization"', "paper", False),
        ('v1 abstract, Theorem 6 (not retrieved): "worst-case loss is O(d^2)"', "paper", False),
        ('abstract: "loss is O(d^2)"; our definitions (docs/theory/paced.md §2)', "paper", True),
        ("arXiv:2601.13100, abstract", "paper", False),
        ("the paper's theorem, recalled, not checked", "secondary", False),
        ("a third-party reconstruction of Sec. 4", "secondary", True),
        ("SakanaAI/TAID@a062892:src/distil_losses/taid.py (update_t)", "code", True),
        ("SakanaAI/TAID a062892 src/distil_losses/taid.py", "code", False),
    ],
)
def test_the_ref_rules_reject_what_overstates(ref, kind, ok):
    assert (not ref_problems(Source(kind, ref))) == ok


@pytest.mark.parametrize("cid", sorted(CATALOG_IDS))
def test_no_source_tag_says_more_than_its_source(cid):
    assert ref_problems(REGISTRY[cid].source) == [], REGISTRY[cid].source


def test_catalog_imports_no_heavy_backend():
    code = (
        "import sys; from sdtheory.claims import catalog; n = len(catalog.load_all()); "
        "bad = [m for m in ('torch', 'jax', 'matplotlib', 'sympy') if m in sys.modules]; "
        "print(n, bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    n, bad = out.stdout.split(" ", 1)
    assert bad.strip() == "[]" and int(n) >= 85


def test_sims_declare_no_claim_of_their_own():
    """Every claim a sim checks is declared in the catalog (loading the sims adds none)."""
    before = set(claims.REGISTRY)
    for name in simio.sim_names():
        simio.load_sim(name)
    added = (
        set(claims.REGISTRY) - before - {c for c in claims.REGISTRY if c.startswith("validate.")}
    )
    assert not added, f"claims declared outside sdtheory.claims.catalog: {sorted(added)}"


def test_ids_are_dotted_and_papers_exist():
    from pathlib import Path

    papers = Path(__file__).resolve().parents[1] / "papers"
    for c in REGISTRY.values():
        assert re.fullmatch(r"[a-z]+\.[a-z0-9][a-z0-9-]*", c.id), c.id
        if c.paper is not None:
            assert (papers / c.paper / "README.md").exists(), (c.id, c.paper)


def _resolve(path: str):
    """Import the longest module prefix of a dotted path, then follow attributes."""
    import importlib

    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(path)


@pytest.mark.parametrize("cid", sorted(CATALOG_IDS))
def test_each_claims_module_names_the_code_that_computes_it(cid):
    module = REGISTRY[cid].module
    if module.startswith("sdtheory.lm") or module.startswith("sdtheory.nets"):
        pytest.importorskip("torch" if module.startswith("sdtheory.lm") else "jax")
    assert _resolve(module) is not None
