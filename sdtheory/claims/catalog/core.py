"""Claims about the sampled KL estimators k1, k2, k3 (`sdtheory.core`; sim `kl_estimators`)."""

from __future__ import annotations

from .._registry import claim

# The estimators and their names are from J. Schulman's 2020 blog post "Approximating KL
# Divergence"; we hold it only through third-party accounts, so the properties below are tagged
# by their one-line derivations, written in the module docstring of sdtheory/core/_estimators.py.
_EST = "sdtheory/core/_estimators.py module docstring"

K1 = claim(
    "core.k1-unbiased",
    "The sample mean of k1 = log q(x) - log p(x), x ~ q, is unbiased for KL(q||p).",
    ("derived", f"{_EST} (E_q[log q/p] is the definition of KL(q||p))"),
    "sdtheory.core.k1",
)
K3 = claim(
    "core.k3-unbiased",
    "The sample mean of k3 = (p/q - 1) - log(p/q), x ~ q, is unbiased for KL(q||p).",
    ("derived", f"{_EST} (E_q[p/q] = 1 when p << q)"),
    "sdtheory.core.k3",
)
K3_NONNEG = claim(
    "core.k3-nonnegative",
    "Every single-sample value of k3 is >= 0 (log r <= r - 1).",
    ("derived", f"{_EST} (log r <= r - 1)"),
    "sdtheory.core.k3",
)
K3_VAR = claim(
    "core.k3-lower-variance",
    "When p and q are close (logit perturbation 0.1), k3 has a smaller per-sample variance than "
    "k1 for every pair: the log variance ratio log Var(k3)/Var(k1) is below 0.",
    ("derived", f"{_EST}: k3 = k1 + (r - 1), a control variate with E_q[r - 1] = 0"),
    "sdtheory.core.k3",
)
K2 = claim(
    "core.k2-second-order",
    "E_q[k2] = KL(q||p) + O(KL^{3/2}): the relative bias of k2 is smaller for a pair perturbed by "
    "a small scale than for the same pair perturbed by a large scale.",
    ("derived", f"{_EST} (k2 = r^2/2 matches KL to second order in r)"),
    "sdtheory.core.k2",
)
