"""Hypothesis strategies: logits, log-probabilities (also near-degenerate), PSD kernels, spectra.

Kernels range from well-conditioned positive definite (`psd_kernels()`) to singular,
rank-deficient and ill-conditioned (`hard_psd_kernels()`: exact zero eigenvalues, condition
number of the range up to 1e12); ridge penalties go down to 1e-8 (`ridge_penalties()`).

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
def spectra(
    draw,
    n=None,
    condition: float | None = None,
    min_eig: float = 1e-3,
    zeros: int | None = 0,
    max_condition: float = 1e4,
):
    """Eigenvalues >= 0, sorted descending: `n - zeros` positive ones with max/min <= condition.

    `condition` is drawn log-uniformly from [1, `max_condition`] when None (up to 1e12 for the
    hard cases); `zeros` exact zero eigenvalues are appended (drawn in [0, n - 1] when None), so
    the spectrum of a singular, rank-deficient kernel.
    """
    n = draw(st.integers(1, 40)) if n is None else n
    if condition is None:
        log_c = draw(st.floats(0.0, float(np.log10(max_condition))))
        cond = float(10.0**log_c)
    else:
        cond = condition
    z = draw(st.integers(0, n - 1)) if zeros is None else min(zeros, n - 1)
    u = draw(hnp.arrays(np.float64, (n - z,), elements=st.floats(0.0, 1.0)))
    eig = min_eig * cond**u
    if u.size:  # pin the extremes so the condition number is the one drawn
        eig[0], eig[-1] = min_eig * cond, min_eig
    return np.sort(np.concatenate([eig, np.zeros(z)]))[::-1]


@st.composite
def psd_kernels(
    draw,
    n=None,
    condition: float | None = None,
    min_eig: float = 1e-3,
    zeros: int | None = 0,
    max_condition: float = 1e4,
):
    """A symmetric positive semi-definite n x n matrix with a controlled spectrum.

    By default positive definite with condition number <= 1e4. `zeros=None` also draws
    rank-deficient (singular) kernels; `max_condition=1e12` draws ill-conditioned ones. The
    eigenvectors come from a QR of a Gaussian matrix seeded by hypothesis, so examples shrink. A
    zero eigenvalue comes back from `eigh` as rounding noise of order n eps max|d|.
    """
    eig = draw(spectra(n, condition, min_eig, zeros, max_condition))
    n = eig.shape[0]
    seed = draw(st.integers(0, 2**32 - 1))
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    k = (q * eig) @ q.T
    return 0.5 * (k + k.T)


def hard_psd_kernels(n=None):
    """Singular and rank-deficient PSD kernels with condition numbers (of the range) to 1e12."""
    return psd_kernels(n=n, zeros=None, max_condition=1e12)


def ridge_penalties(lo: float = 1e-8, hi: float = 10.0):
    """Ridge penalties lambda drawn log-uniformly in [lo, hi] (down to 1e-8 by default)."""
    return st.floats(float(np.log10(lo)), float(np.log10(hi))).map(lambda e: float(10.0**e))


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
