"""Hypothesis strategies: logits, log-probabilities (also near-degenerate), PSD kernels, spectra.

Importing this module needs `hypothesis` (the `test` extra).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..core import log_softmax


def finite_floats(lo: float = -30.0, hi: float = 30.0):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@st.composite
def batch_shapes(draw, max_dims: int = 2, max_side: int = 4):
    return draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=1, max_side=max_side))


@st.composite
def logits(draw, k=None, batch=None, lo: float = -30.0, hi: float = 30.0):
    """Finite logits of shape `batch + (k,)`; `k` in [2, 32] and a small batch unless given."""
    k = draw(st.integers(2, 32)) if k is None else k
    batch = draw(batch_shapes()) if batch is None else batch
    return draw(hnp.arrays(np.float64, tuple(batch) + (k,), elements=finite_floats(lo, hi)))


@st.composite
def log_probs(draw, k=None, batch=None, degenerate: bool | None = None):
    """Normalised log-probabilities; `degenerate` (drawn if None) makes a few entries dominate.

    Near-degenerate rows come from logits with a spread of up to 700 nats, so that some
    probabilities underflow towards 1e-300 while the row still normalises.
    """
    z = draw(logits(k=k, batch=batch))
    degenerate = draw(st.booleans()) if degenerate is None else degenerate
    if degenerate:
        scale = draw(st.floats(5.0, 25.0))
        z = z * scale
    return log_softmax(z)


@st.composite
def log_prob_pairs(draw, k=None, degenerate: bool | None = None):
    """Two log-probability arrays of the same shape."""
    k = draw(st.integers(2, 32)) if k is None else k
    batch = draw(batch_shapes())
    return (
        draw(log_probs(k=k, batch=batch, degenerate=degenerate)),
        draw(log_probs(k=k, batch=batch, degenerate=degenerate)),
    )


@st.composite
def spectra(draw, n=None, condition: float | None = None, min_eig: float = 1e-3):
    """Positive eigenvalues, sorted descending, with max/min <= `condition` (drawn if None)."""
    n = draw(st.integers(1, 40)) if n is None else n
    cond = draw(st.floats(1.0, 1e4)) if condition is None else condition
    u = draw(hnp.arrays(np.float64, (n,), elements=st.floats(0.0, 1.0)))
    eig = min_eig * cond**u
    return np.sort(eig)[::-1]


@st.composite
def psd_kernels(draw, n=None, condition: float | None = None, min_eig: float = 1e-3):
    """A symmetric positive-definite n x n matrix with a controlled spectrum.

    The eigenvectors come from a QR of a Gaussian matrix seeded by hypothesis, so examples shrink.
    """
    eig = draw(spectra(n=n, condition=condition, min_eig=min_eig))
    n = eig.shape[0]
    seed = draw(st.integers(0, 2**32 - 1))
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    k = (q * eig) @ q.T
    return 0.5 * (k + k.T)
