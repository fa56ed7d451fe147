"""Argument checks shared by the numpy core. Every error names the argument and the bad value."""

from __future__ import annotations

import numbers

import numpy as np

NORMALISATION_ATOL = 1e-6
LOG_PROB_ROUNDING = 1e-12


def as_float_array(x, name: str) -> np.ndarray:
    """`x` as a float64 array; NaN is rejected, +-inf is allowed (log 0 = -inf)."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        raise ValueError(f"{name} must have at least one axis (the outcome axis), got a scalar")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    return arr


def as_log_probs(x, name: str, validate: bool = False) -> np.ndarray:
    """Log-probabilities on the last axis; with `validate`, each row must normalise."""
    arr = as_float_array(x, name)
    if (arr > LOG_PROB_ROUNDING).any():  # log_mix/logaddexp of rows near 0 can round to +1e-16
        raise ValueError(f"{name} must be log-probabilities (<= 0), got a maximum of {arr.max()}")
    if validate:
        # numpy's logaddexp reduction: ample for a 1e-6 check, without scipy's per-call cost
        total = np.logaddexp.reduce(arr, axis=-1)
        if not np.all(np.abs(total) <= NORMALISATION_ATOL):
            worst = float(np.max(np.abs(total)))
            raise ValueError(
                f"{name} does not normalise: |logsumexp| reaches {worst:.3g} "
                f"(tolerance {NORMALISATION_ATOL})"
            )
    return arr


def broadcast_pair(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str):
    try:
        return np.broadcast_arrays(a, b)
    except ValueError:
        raise ValueError(
            f"{name_a} with shape {a.shape} and {name_b} with shape {b.shape} do not broadcast"
        ) from None


def check_unit_interval(value, name: str) -> float:
    v = float(value)
    if not (0.0 <= v <= 1.0):
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    return v


def check_positive(value, name: str) -> float:
    v = float(value)
    if not (v > 0.0) or not np.isfinite(v):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def check_positive_int(value, name: str, *, minimum: int = 1) -> int:
    """`value` as an `int` that is at least `minimum` (default 1: a positive integer).

    Integer-valued numbers are accepted as they are (`3`, `np.int64(3)`, `3.0`); nothing is
    rounded, so `2.5`, `True`, NaN, inf and non-numbers are rejected. `minimum=0` admits counts
    that may be zero (generations, steps).
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    if ok:
        try:
            as_int = int(value)
        except (OverflowError, ValueError):  # inf, nan
            ok = False
        else:
            ok = as_int == value and as_int >= minimum
    if not ok:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return as_int
