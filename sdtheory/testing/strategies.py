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


@st.composite
def adversarial_spectra(draw, n=None, max_condition: float = 1e12):
    """Non-negative eigenvalues, descending, for the hard cases of kernel solvers.

    A random scale in [1e-3, 1e3], a condition number (largest over smallest positive) up to
    `max_condition`, optionally clustered (repeated) values, and 0 to n - 1 exact zeros
    (singular, rank-deficient matrices). At least one eigenvalue is positive.
    """
    n = draw(st.integers(1, 40)) if n is None else n
    scale = 10.0 ** draw(st.floats(-3.0, 3.0))
    log_cond = draw(st.floats(0.0, float(np.log10(max_condition))))
    u = draw(hnp.arrays(np.float64, (n,), elements=st.floats(0.0, 1.0)))
    if draw(st.booleans()):  # clusters: a few distinct levels
        u = np.round(u * draw(st.integers(1, 3))) / 3.0
    eig = np.sort(scale * 10.0 ** (-log_cond * u))[::-1]
    zeros = draw(st.integers(0, n - 1))
    eig[n - zeros :] = 0.0
    return eig


@st.composite
def adversarial_psd_kernels(draw, n=None, max_condition: float = 1e12):
    """A symmetric PSD n x n matrix with an `adversarial_spectra` spectrum (exact zeros,
    clusters, condition numbers up to `max_condition`) and Gaussian-QR eigenvectors."""
    eig = draw(adversarial_spectra(n=n, max_condition=max_condition))
    seed = draw(st.integers(0, 2**32 - 1))
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((eig.shape[0],) * 2))
    k = (q * eig) @ q.T
    return 0.5 * (k + k.T)


@st.composite
def feature_matrices(draw, n=None, d=None, max_condition: float = 1e6):
    """Features Phi (n x d) whose Gram Phi Phi^T has an `adversarial_spectra` spectrum.

    The singular values are the square roots of the eigenvalues (so `max_condition` applies to
    the singular values and its square to the Gram); d may exceed n, and zero singular values
    make Phi rank-deficient.
    """
    n = draw(st.integers(1, 40)) if n is None else n
    d = draw(st.integers(1, 40)) if d is None else d
    r = min(n, d)
    s = np.sqrt(draw(adversarial_spectra(n=r, max_condition=max_condition**2)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.standard_normal((n, r)))
    v, _ = np.linalg.qr(rng.standard_normal((d, r)))
    return (u * s) @ v.T
