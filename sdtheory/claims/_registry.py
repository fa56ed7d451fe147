"""Claims and their sources; the registry every sim, experiment and test refers to."""

from __future__ import annotations

import dataclasses
from typing import Literal

SourceKind = Literal["paper", "code", "derived", "secondary"]

_SOURCE_KINDS = ("paper", "code", "derived", "secondary")


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a claim comes from, said no more strongly than we can back it.

    - `paper`: words we actually hold from the paper (its abstract or another retrieved passage),
      quoted in `ref`. Never a section, theorem or table number that was not read.
    - `code`: a repository at a commit, with the path (`owner/repo@commit:path`).
    - `secondary`: a third-party account of the paper, or a recollection of it.
    - `derived`: ours; `ref` says where the derivation is written down.
    """

    kind: SourceKind
    ref: str

    def __post_init__(self):
        if self.kind not in _SOURCE_KINDS:
            raise ValueError(f"kind must be one of {_SOURCE_KINDS}, got {self.kind!r}")
        if not self.ref:
            raise ValueError("ref must name the quoted words, the code or the derivation")

    def __str__(self) -> str:
        return f"{self.kind}: {self.ref}"


@dataclasses.dataclass(frozen=True)
class Claim:
    """One checkable prediction.

    Attributes:
      id: dotted id, e.g. `krr.limit-amplified-ridge`; the same id at every scale.
      statement: the prediction in one or two sentences.
      source: where it comes from.
      module: the function or class that computes the prediction.
      paper: bib key of the paper page under `papers/`, if any.
    """

    id: str
    statement: str
    source: Source
    module: str
    paper: str | None = None


REGISTRY: dict[str, Claim] = {}


def register(c: Claim) -> Claim:
    """Add a claim to the registry; re-registering the same claim is a no-op."""
    old = REGISTRY.get(c.id)
    if old is not None and old != c:
        raise ValueError(f"claim id {c.id!r} is already registered with a different definition")
    REGISTRY[c.id] = c
    return c


def claim(
    id: str,
    statement: str,
    source: Source | tuple[str, str],
    module: str,
    paper: str | None = None,
) -> Claim:
    """Create and register a claim. `source` may be a `(kind, ref)` pair."""
    src = source if isinstance(source, Source) else Source(*source)
    return register(Claim(id=id, statement=statement, source=src, module=module, paper=paper))
