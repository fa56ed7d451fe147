"""What every part of `sdtheory.theory.meta` shares: operator kinds and the input checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

from ...core._checks import as_log_probs, broadcast_pair

Kind = Literal["arithmetic", "geometric"]
KINDS: tuple[str, ...] = ("arithmetic", "geometric")
AnchorFn = Callable[[np.ndarray, np.ndarray, float], np.ndarray]


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return kind


def log_probs(x, name: str) -> np.ndarray:
    """Log-probabilities on the last axis that must normalise (the core's check)."""
    return as_log_probs(x, name, validate=True)


def normalised_pair(log_p, log_q) -> list[np.ndarray]:
    lp = log_probs(log_p, "log_p")
    lq = log_probs(log_q, "log_q")
    return broadcast_pair(lp, lq, "log_p", "log_q")
