"""Sympy derivations that prove the closed forms used in `sdtheory.theory` (the `sym` extra).

Imported by tests and docs, never by `sdtheory.core` or `sdtheory.theory`.
"""
