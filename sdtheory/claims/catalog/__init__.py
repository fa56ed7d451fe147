"""Every registered claim, declared in light modules (no torch, JAX, sympy or matplotlib).

One module per setting or method family (`krr.py`, `meta.py`, `paced.py`, `taid.py`, `core.py`,
`methods.py`, …). Sims, validate experiments and tests import the `Claim` objects from here; a
claim keeps one id at every scale, and the scale where it was checked is recorded on the
`CheckResult`. `load_all()` imports every module of this package, so the registry is complete.
"""

from __future__ import annotations

import importlib
import pkgutil


def load_all() -> dict:
    """Import every catalog module and return the registry (which may also hold claims that
    are still declared elsewhere, e.g. by `sdtheory.lm.validate` once imported)."""
    from .._registry import REGISTRY

    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")
    return REGISTRY


def declared() -> dict:
    """`{id: Claim}` for exactly the claims declared in the catalog modules."""
    from .._registry import Claim

    load_all()
    out = {}
    for mod in pkgutil.iter_modules(__path__):
        for v in vars(importlib.import_module(f"{__name__}.{mod.name}")).values():
            if isinstance(v, Claim):
                out[v.id] = v
    return dict(sorted(out.items()))
