"""Tolerances keyed by dtype and an `assert_close` that uses them.

Starting points from the style guide: float64 closed form vs closed form `rtol ~ 1e-12`;
float32 `rtol 5e-4, atol 1e-5` (Liger fp32); bf16 `rtol 5e-1, atol 5e-2` (Liger).
Override per call only with a comment that says why.
"""

from __future__ import annotations

import numpy as np

DEFAULT_TOLERANCE = {
    "float64": {"rtol": 1e-12, "atol": 1e-12},
    "float32": {"rtol": 5e-4, "atol": 1e-5},
    "bfloat16": {"rtol": 5e-1, "atol": 5e-2},
    "float16": {"rtol": 1e-2, "atol": 1e-3},
}


def tolerance(dtype) -> dict[str, float]:
    try:
        name = np.dtype(dtype).name
    except TypeError:  # torch dtypes, or names numpy does not know such as "bfloat16"
        name = str(dtype).replace("torch.", "")
    if name not in DEFAULT_TOLERANCE:
        raise ValueError(f"dtype must be one of {sorted(DEFAULT_TOLERANCE)}, got {dtype!r}")
    return dict(DEFAULT_TOLERANCE[name])


def assert_close(actual, desired, dtype="float64", *, rtol=None, atol=None, err_msg=""):
    """`np.testing.assert_allclose` with the tolerances of `dtype` unless given."""
    tol = tolerance(dtype)
    np.testing.assert_allclose(
        np.asarray(actual, dtype=np.float64),
        np.asarray(desired, dtype=np.float64),
        rtol=tol["rtol"] if rtol is None else rtol,
        atol=tol["atol"] if atol is None else atol,
        err_msg=err_msg,
    )
