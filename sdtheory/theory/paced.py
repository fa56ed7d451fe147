r"""PACED: Beta-kernel problem weights, gradient signal-to-noise, and robustness (numpy, float64).

PACED (Xu et al., arXiv:2603.11178, [paced2026]) weights each training problem by
$w(p) = p^{\alpha}(1-p)^{\beta}$ of the student's pass rate $p$, estimated from $K$ student
rollouts. Its abstract states that the cross-problem gradient SNR collapses at both pass-rate
extremes, that the Beta kernel is the leading-order optimal weight family, and that it is
minimax-robust: the efficiency loss under multiplicative misspecification $\delta$ is $O(\delta^2)$
(Theorem 6, not retrieved). The formulas here are **our derivation** (`docs/theory/paced.md`):

* SNR model: problem $i$ contributes $g_i = s_i u + \xi_i$ with $\operatorname{tr}\mathrm{Cov}\,
  \xi_i = v_i$. The weighted aggregate $G = \sum_i w_i g_i$ has
  $\mathrm{SNR}(w) = (\sum_i w_i s_i)^2 / \sum_i w_i^2 v_i \le \sum_i s_i^2/v_i$
  (Cauchy–Schwarz) with equality iff $w \propto s/v$.
* Efficiency $\eta(w) = \mathrm{SNR}(w)/\mathrm{SNR}(w^\star) \in [0, 1]$; for
  $w = w^\star(1+\varepsilon)$ with $|\varepsilon_i| \le \delta \le 1$,
  $\eta \ge 1-\delta^2$ (Kantorovich), attained by a two-point $\varepsilon \in \{\pm\delta\}$.
* Pointwise: the expected one-step progress $\Delta(w) = \eta_{lr} w s^2 - \tfrac{L\eta_{lr}^2}{2}
  w^2 (s^2+v)$ satisfies $\Delta(w^\star(1+\varepsilon)) = (1-\varepsilon^2)\Delta^\star$.
* Finite $K$: $\mathbb E[\hat p(1-\hat p)] = (1-1/K)\,p(1-p)$; $\tfrac{K}{K-1}\hat p(1-\hat p)$ is
  unbiased; the weight is exactly 0 with probability $p^K + (1-p)^K$ (for $\alpha, \beta > 0$).

Example:
  >>> import numpy as np
  >>> s, v = np.array([0.1, 0.5, 0.2]), np.array([1.0, 2.0, 0.5])
  >>> bool(np.isclose(snr_efficiency(optimal_weights(s, v), s, v), 1.0))
  True
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

__all__ = [
    "BetaFit",
    "adversarial_misspecification",
    "beta_kernel_weight",
    "expected_beta_weight",
    "expected_plugin_variance",
    "fit_beta_kernel",
    "gradient_snr",
    "implied_delta",
    "misspecification_bound",
    "optimal_weights",
    "plugin_variance",
    "pass_rate",
    "pointwise_optimal_weight",
    "pointwise_progress",
    "snr",
    "snr_efficiency",
    "snr_model",
    "two_point_construction",
    "unbiased_variance",
    "zero_weight_probability",
]


# ----------------------------------------------------------------------------- checks


def _array(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    return arr


def _probability(p, name: str = "p") -> np.ndarray:
    arr = _array(p, name)
    if ((arr < 0) | (arr > 1)).any():
        raise ValueError(f"{name} must lie in [0, 1], got values in [{arr.min()}, {arr.max()}]")
    return arr


def _exponent(x, name: str) -> float:
    v = float(x)
    if not (np.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {x!r}")
    return v


def _trials(trials, name: str = "trials", minimum: int = 1) -> np.ndarray:
    k = np.asarray(trials)
    if not (np.issubdtype(k.dtype, np.integer) or np.all(np.mod(_array(k, name), 1) == 0)):
        raise ValueError(f"{name} must be integers, got {trials!r}")
    k = k.astype(np.int64)
    if (k < minimum).any():
        raise ValueError(f"{name} must be >= {minimum}, got a minimum of {k.min()}")
    return k


def _signal_variance(signal, variance):
    s = _array(signal, "signal")
    v = _array(variance, "variance")
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"signal must be a non-empty 1-D array, got shape {s.shape}")
    if v.shape != s.shape:
        raise ValueError(f"variance must have the shape of signal {s.shape}, got {v.shape}")
    if not (np.isfinite(v).all() and (v > 0).all()):
        raise ValueError(f"variance must be finite and > 0, got a minimum of {v.min()}")
    if not np.isfinite(s).all() or (s < 0).any():
        raise ValueError(f"signal must be finite and >= 0, got a minimum of {s.min()}")
    if not (s > 0).any():
        raise ValueError("signal must have at least one entry > 0 (otherwise every SNR is 0)")
    return s, v


# ----------------------------------------------------------------------------- weights


def beta_kernel_weight(p, alpha: float = 1.0, beta: float = 1.0) -> np.ndarray:
    r"""The Beta-kernel weight $w(p) = p^{\alpha}(1-p)^{\beta}$ of a pass rate $p$.

    The PACED weight [paced2026, abstract].

    With $\alpha, \beta > 0$ the weight is exactly 0 at $p \in \{0, 1\}$; an exponent of 0 uses
    $0^0 = 1$. PACED v3 fixes $\alpha = \beta = 1$. The weight is not normalised: divide by the
    sum over a batch to use it as a distribution over problems.

    Args:
      p: pass rates in $[0, 1]$ (any shape).
      alpha: exponent of $p$ (controls the collapse at $p \to 0$), $\ge 0$.
      beta: exponent of $1-p$ (controls the collapse at $p \to 1$), $\ge 0$.

    Returns:
      Weights with the shape of `p`.

    Example:
      >>> import numpy as np
      >>> w = beta_kernel_weight(np.array([0.0, 0.25, 1.0]), 2.0, 1.0)
      >>> w.tolist() == [0.0, 0.25**2 * 0.75, 0.0]
      True
    """
    x = _probability(p)
    a = _exponent(alpha, "alpha")
    b = _exponent(beta, "beta")
    with np.errstate(divide="ignore"):
        left = np.where(x == 0, 1.0 if a == 0 else 0.0, np.power(np.where(x == 0, 1.0, x), a))
        right = np.where(
            x == 1, 1.0 if b == 0 else 0.0, np.power(np.where(x == 1, 0.5, 1.0 - x), b)
        )
    return left * right


def pass_rate(successes, trials) -> np.ndarray:
    r"""The empirical pass rate $\hat p = S/K$ from $S$ successes in $K$ rollouts.

    PACED estimates $p$ from student rollouts only [paced2026, abstract]. $\hat p$ is unbiased
    for $p$, but plug-ins of it are not: see `expected_plugin_variance` and `unbiased_variance`.

    Args:
      successes: integer counts $0 \le S \le K$.
      trials: integer rollouts per problem $K \ge 1$ (broadcasts against `successes`).

    Returns:
      $\hat p$ as float64.

    Example:
      >>> pass_rate([0, 3, 8], 8).tolist()
      [0.0, 0.375, 1.0]
    """
    k = _trials(trials)
    s = np.asarray(successes)
    if not (np.issubdtype(s.dtype, np.integer) or np.all(np.mod(_array(s, "successes"), 1) == 0)):
        raise ValueError(f"successes must be integers, got {successes!r}")
    s = s.astype(np.int64)
    if (s < 0).any() or (s > k).any():
        raise ValueError(
            f"successes must lie in [0, trials], got {successes!r} with trials {trials!r}"
        )
    return s / k


def plugin_variance(p_hat) -> np.ndarray:
    r"""The plug-in Bernoulli variance $\hat p(1-\hat p)$ (= the default PACED weight)."""
    x = _probability(p_hat, "p_hat")
    return x * (1.0 - x)


def expected_plugin_variance(p, trials) -> np.ndarray:
    r"""$\mathbb E[\hat p(1-\hat p)] = (1 - 1/K)\,p(1-p)$ for $\hat p = S/K$.

    Here $S \sim \mathrm{Bin}(K, p)$.

    Derived (`sdtheory.symbolic.paced.derive_plugin_expectation`): the plug-in underestimates
    $p(1-p)$ by the factor $1-1/K$; at $K=1$ it is identically 0.

    Example:
      >>> bool(np.isclose(expected_plugin_variance(0.5, 4), 0.75 * 0.25))
      True
    """
    x = _probability(p)
    k = _trials(trials)
    return (1.0 - 1.0 / k) * x * (1.0 - x)


def unbiased_variance(p_hat, trials) -> np.ndarray:
    r"""The unbiased estimate $\tfrac{K}{K-1}\hat p(1-\hat p)$ of $p(1-p)$, for $K \ge 2$.

    For $\alpha = \beta = 1$ this is the PACED weight times a constant, so after normalising over
    a batch with a common $K$ the correction changes nothing: the finite-$K$ bias of the default
    weight is a uniform scale. It matters when $K$ differs between problems, and for the
    unnormalised weight.

    Example:
      >>> bool(np.isclose(unbiased_variance(0.25, 4), 4 / 3 * 0.25 * 0.75))
      True
    """
    x = _probability(p_hat, "p_hat")
    k = _trials(trials, minimum=2)
    return k / (k - 1.0) * x * (1.0 - x)


def zero_weight_probability(p, trials) -> np.ndarray:
    r"""$\Pr[\hat p \in \{0, 1\}] = (1-p)^K + p^K$: the chance a problem gets weight exactly 0.

    For $\alpha, \beta > 0$ such a problem contributes nothing to the update. At small $K$ this
    discards many problems that carry signal: at $K=4$ a problem with $p = 0.1$ is dropped with
    probability $0.9^4 + 0.1^4 \approx 0.66$.

    Example:
      >>> bool(np.isclose(zero_weight_probability(0.1, 4), 0.9**4 + 0.1**4))
      True
    """
    x = _probability(p)
    k = _trials(trials)
    return np.power(1.0 - x, k) + np.power(x, k)


def expected_beta_weight(p, trials, alpha: float = 1.0, beta: float = 1.0) -> np.ndarray:
    r"""$\mathbb E_{S\sim\mathrm{Bin}(K,p)}[w(S/K)]$: the mean Beta weight from $K$ rollouts.

    Computed as an exact binomial sum.

    For $\alpha=\beta=1$ this equals $(1-1/K)\,p(1-p)$; for other exponents the finite-$K$ bias is
    not a constant factor and changes the shape of the effective kernel.

    Args:
      p: true pass rates in $[0, 1]$ (any shape).
      trials: rollouts per problem $K \ge 1$ (an integer).
      alpha, beta: kernel exponents.
    """
    x = _probability(p)
    k = int(_trials(trials).reshape(-1)[0]) if np.ndim(trials) == 0 else None
    if k is None:
        raise ValueError(f"trials must be a single integer, got {trials!r}")
    from scipy.stats import binom

    grid = beta_kernel_weight(np.arange(k + 1) / k, alpha, beta)
    pmf = binom.pmf(np.arange(k + 1), k, x[..., None])
    return np.sum(pmf * grid, axis=-1)


# ----------------------------------------------------------------------------- SNR model


def snr_model(p, a0: float = 1.0, a1: float = 1.0, b0: float = 0.0, b1: float = 0.0):
    r"""A boundary-collapse SNR model: $s(p) = p^{a_0}(1-p)^{a_1}$, $v(p) = p^{b_0}(1-p)^{b_1}$.

    Derived (`docs/theory/paced.md` §2). The optimal weight is $s/v = p^{a_0-b_0}(1-p)^{a_1-b_1}$,
    a Beta kernel with $\alpha = a_0 - b_0$, $\beta = a_1 - b_1$; the per-problem SNR is
    $s^2/v = p^{2a_0-b_0}(1-p)^{2a_1-b_1}$, which vanishes at both ends when $2a_0 > b_0$ and
    $2a_1 > b_1$. The defaults are the binary-outcome instance (signal $\propto$ the reward-score
    covariance $p(1-p)$, constant noise), whose optimum is the v3 default $p(1-p)$.

    Args:
      p: pass rates in $(0, 1)$ (the variance must stay positive).
      a0, a1: boundary exponents of the signal at $p \to 0$ and $p \to 1$.
      b0, b1: boundary exponents of the noise.

    Returns:
      `(signal, variance)` arrays with the shape of `p`.
    """
    x = _probability(p)
    if ((x == 0) | (x == 1)).any() and (b0 > 0 or b1 > 0):
        raise ValueError("p must lie strictly inside (0, 1) when b0 or b1 > 0 (variance 0)")
    s = beta_kernel_weight(x, a0, a1)
    v = beta_kernel_weight(x, b0, b1)
    return s, v


def snr(weights, signal, variance) -> float:
    r"""$\mathrm{SNR}(w) = (\sum_i w_i s_i)^2 / \sum_i w_i^2 v_i$ of the aggregate $\sum_i w_i g_i$.

    Raises `ValueError` when every weight is 0.
    """
    s, v = _signal_variance(signal, variance)
    w = _array(weights, "weights")
    if w.shape != s.shape:
        raise ValueError(f"weights must have the shape of signal {s.shape}, got {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("weights must be finite")
    den = float(np.sum(w * w * v))
    if den == 0.0:
        raise ValueError("weights must not all be 0 (the aggregate gradient would be 0)")
    return float(np.sum(w * s)) ** 2 / den


def optimal_weights(signal, variance) -> np.ndarray:
    r"""The SNR-optimal weights $w^\star_i \propto s_i / v_i$, normalised to sum to 1.

    Derived by Cauchy–Schwarz (`sdtheory.symbolic.paced.derive_optimal_weights`): with
    $a_i = s_i/\sqrt{v_i}$ and $b_i = w_i\sqrt{v_i}$, $(\sum a_i b_i)^2 \le \sum a_i^2 \sum b_i^2$,
    so $\mathrm{SNR}(w) \le \sum_i s_i^2/v_i$ with equality iff $b \propto a$.

    Args:
      signal: $s_i \ge 0$, the projection of problem $i$'s mean gradient on the useful direction.
      variance: $v_i > 0$, the trace of the covariance of problem $i$'s gradient.

    Returns:
      $w^\star$, non-negative and summing to 1.

    Example:
      >>> w = optimal_weights([1.0, 2.0], [1.0, 4.0])
      >>> bool(np.allclose(w, [2 / 3, 1 / 3]))
      True
    """
    s, v = _signal_variance(signal, variance)
    w = s / v
    return w / w.sum()


def snr_efficiency(weights, signal, variance) -> float:
    r"""SNR efficiency $\eta(w) = \mathrm{SNR}(w) / \max_{w'} \mathrm{SNR}(w') \in [0, 1]$.

    The maximum is $\sum_i s_i^2/v_i$.

    Scale-invariant in `weights`; equals 1 exactly at $w \propto s/v$.

    Example:
      >>> bool(np.isclose(snr_efficiency([1.0, 1.0], [1.0, 1.0], [1.0, 1.0]), 1.0))
      True
    """
    s, v = _signal_variance(signal, variance)
    best = float(np.sum(s * s / v))
    # not clipped: rounding can put the optimum at 1 + O(eps), and a value above that is a bug
    return snr(weights, s, v) / best


def misspecification_bound(delta):
    r"""The efficiency floor $1 - \delta^2$ under misspecification $|\varepsilon_i| \le \delta$.

    Derived (`docs/theory/paced.md` §3): with $w_i = w^\star_i(1+\varepsilon_i)$ and
    $X = 1+\varepsilon \in [1-\delta, 1+\delta]$ under the distribution $a_i \propto s_i^2/v_i$,
    $\eta = (\mathbb E X)^2/\mathbb E X^2 \ge 4mM/(m+M)^2 = 1-\delta^2$ (Kantorovich,
    $m = 1-\delta$, $M = 1+\delta$). The same floor holds pointwise for one SGD step
    (`pointwise_progress`).
    The paper's abstract states an $O(\delta^2)$ loss (Theorem 6); its constants were not retrieved.

    Args:
      delta: misspecification level in $[0, 1]$ (scalar or array).

    Example:
      >>> bool(np.isclose(misspecification_bound(0.3), 0.91))
      True
    """
    d = _array(delta, "delta")
    if ((d < 0) | (d > 1)).any():
        raise ValueError(f"delta must lie in [0, 1], got {delta!r}")
    out = 1.0 - d * d
    return float(out) if out.ndim == 0 else out


def two_point_construction(delta: float):
    r"""A two-problem instance whose misspecified weights attain $\eta = 1-\delta^2$ exactly.

    The SNR mass $a_i = s_i^2/v_i$ is $\tfrac{1-\delta}{2}$ on a problem whose weight is inflated
    by $1+\delta$ and $\tfrac{1+\delta}{2}$ on one deflated by $1-\delta$
    (so $\mathbb E_a\varepsilon = -\delta^2$): the extreme point of the Kantorovich inequality.

    Returns:
      `(signal, variance, weights, epsilon)` with `weights = optimal * (1 + epsilon)`.

    Example:
      >>> s, v, w, eps = two_point_construction(0.4)
      >>> bool(np.isclose(snr_efficiency(w, s, v), 1 - 0.4**2))
      True
    """
    d = float(delta)
    if not (0.0 <= d < 1.0):
        raise ValueError(f"delta must lie in [0, 1), got {delta!r}")
    a = np.array([(1.0 - d) / 2.0, (1.0 + d) / 2.0])
    variance = np.ones(2)
    signal = np.sqrt(a)
    eps = np.array([d, -d])
    weights = optimal_weights(signal, variance) * (1.0 + eps)
    return signal, variance, weights, eps


def adversarial_misspecification(signal, variance, delta: float, exhaustive_max: int = 14):
    r"""The $\varepsilon \in [-\delta, \delta]^n$ that minimises $\eta(w^\star(1+\varepsilon))$.

    $\eta$ is minimised at a vertex $\varepsilon \in \{\pm\delta\}^n$ (in each coordinate its only
    interior critical point is a maximum), and at a vertex it depends only on the SNR mass $q$ of
    the $+\delta$ set: $\eta = (1+\delta t)^2/(1+2\delta t+\delta^2)$ with $t = 2q-1$, minimised at
    $q = (1-\delta)/2$. Up to `exhaustive_max` problems every vertex is tried; beyond, the best of
    a sorted greedy fill towards $q = (1-\delta)/2$ is returned (a local optimum).

    Returns:
      `(epsilon, efficiency)`.
    """
    s, v = _signal_variance(signal, variance)
    d = float(delta)
    if not (0.0 <= d <= 1.0):
        raise ValueError(f"delta must lie in [0, 1], got {delta!r}")
    a = s * s / v
    a = a / a.sum()
    n = a.size

    def eta(q):
        t = 2.0 * q - 1.0
        return (1.0 + d * t) ** 2 / (1.0 + 2.0 * d * t + d * d)

    if n <= exhaustive_max:
        masks = np.array(list(itertools.product((0.0, 1.0), repeat=n)))
        q = masks @ a
        best = int(np.argmin(eta(q)))
        eps = d * (2.0 * masks[best] - 1.0)
    else:
        target = (1.0 - d) / 2.0
        order = np.argsort(-a)
        chosen = np.zeros(n)
        mass = 0.0
        for i in order:
            if mass + a[i] <= target or abs(mass + a[i] - target) < abs(mass - target):
                chosen[i] = 1.0
                mass += a[i]
        eps = d * (2.0 * chosen - 1.0)
    w = optimal_weights(s, v) * (1.0 + eps)
    if not np.any(w):
        return eps, 0.0
    return eps, snr_efficiency(w, s, v)


# ----------------------------------------------------------------------------- pointwise


def pointwise_progress(weight, signal, variance, lr: float = 1.0, smoothness: float = 1.0):
    r"""Expected one-step progress $\Delta(w) = \eta\,w\,s^2 - \tfrac{L\eta^2}{2} w^2 (s^2+v)$.

    Derived (`docs/theory/paced.md` §3): one SGD step of size $\eta w$ on an $L$-smooth loss whose
    true gradient is $s\,u$, with stochastic gradient $g = s u + \xi$,
    $\operatorname{tr}\mathrm{Cov}\,\xi = v$.
    """
    w = _array(weight, "weight")
    s = _array(signal, "signal")
    v = _array(variance, "variance")
    lr_ = float(lr)
    L = float(smoothness)
    if not (lr_ > 0 and L > 0):
        raise ValueError(f"lr and smoothness must be > 0, got lr={lr!r}, smoothness={smoothness!r}")
    return lr_ * w * s * s - 0.5 * L * lr_ * lr_ * w * w * (s * s + v)


def pointwise_optimal_weight(signal, variance, lr: float = 1.0, smoothness: float = 1.0):
    r"""The maximiser $w^\star = \arg\max_w \Delta(w) = s^2 / (L\eta(s^2+v))$.

    Then $\Delta(w^\star(1+\varepsilon)) = (1-\varepsilon^2)\Delta^\star$.
    """
    s = _array(signal, "signal")
    v = _array(variance, "variance")
    if (s * s + v <= 0).any():
        raise ValueError("signal**2 + variance must be > 0")
    return s * s / (float(smoothness) * float(lr) * (s * s + v))


# ----------------------------------------------------------------------------- Beta fit


@dataclasses.dataclass(frozen=True)
class BetaFit:
    r"""A Beta kernel $c\,p^{\alpha}(1-p)^{\beta}$ fitted to weights, and its misspecification.

    Attributes:
      alpha, beta: fitted exponents.
      scale: $c$ that minimises the worst multiplicative error against the target weights.
      delta: $\max_i |c\,k(p_i)/w_i - 1|$, the implied misspecification; the Beta kernel then
        reaches SNR efficiency $\ge 1-\delta^2$ of the target weights.
      method: `"lsq"`, `"boundary"` or `"minimax"`.
    """

    alpha: float
    beta: float
    scale: float
    delta: float
    method: str

    def __call__(self, p) -> np.ndarray:
        """The fitted kernel at `p`; fitted exponents may be negative, so $p$ must lie in (0, 1)."""
        x = _probability(p)
        if ((x <= 0) | (x >= 1)).any() and (self.alpha < 0 or self.beta < 0):
            raise ValueError("p must lie strictly inside (0, 1) for a negative fitted exponent")
        with np.errstate(divide="ignore"):
            return self.scale * np.exp(self.alpha * np.log(x) + self.beta * np.log1p(-x))


def implied_delta(p, weights, alpha: float, beta: float) -> tuple[float, float]:
    r"""Best scale $c$ and misspecification $\delta$ of $c\,p^\alpha(1-p)^\beta$ against `weights`.

    With $h_i = w_i / (p_i^\alpha(1-p_i)^\beta) \in [h_{\min}, h_{\max}]$ the best $c$ gives
    $\delta = \frac{h_{\max}-h_{\min}}{h_{\max}+h_{\min}}
    = \tanh\big(\tfrac12\log\frac{h_{\max}}{h_{\min}}\big)$.

    Returns:
      `(scale, delta)`.
    """
    x, w = _fit_inputs(p, weights)
    r = np.log(w) - alpha * np.log(x) - beta * np.log1p(-x)
    lo, hi = float(r.min()), float(r.max())
    # c k / w = c / h ranges over [c/h_max, c/h_min]; c = 2/(1/h_min + 1/h_max) centres it at 1.
    scale = 2.0 / (np.exp(-lo) + np.exp(-hi))
    return float(scale), float(np.tanh(0.5 * (hi - lo)))


def _fit_inputs(p, weights):
    x = _probability(p)
    w = _array(weights, "weights")
    if x.ndim != 1 or x.shape != w.shape or x.size < 3:
        raise ValueError(
            f"p and weights must be 1-D of equal length >= 3, got {x.shape}, {w.shape}"
        )
    if ((x <= 0) | (x >= 1)).any():
        raise ValueError("p must lie strictly inside (0, 1) for a fit (log p, log(1-p) are used)")
    if not (np.isfinite(w).all() and (w > 0).all()):
        raise ValueError("weights must be finite and > 0 for a fit (drop zero-weight problems)")
    return x, w


def fit_beta_kernel(p, weights, method: str = "lsq", tail: float = 0.15) -> BetaFit:
    r"""Fit $c\,p^{\alpha}(1-p)^{\beta}$ to positive weights $w_i$ at pass rates $p_i \in (0,1)$.

    Methods (all fit $\log w = \log c + \alpha\log p + \beta\log(1-p) + r$):

    * `"lsq"`: least squares on every point.
    * `"boundary"`: least squares on the points with $p \le$ `tail` or $p \ge 1-$`tail` only,
      with a separate intercept per side, so the exponents are the boundary behaviour of $w$
      (the leading-order term) and a smooth positive factor $h(p)$ only enters through its
      variation inside each tail.
    * `"minimax"`: minimises the range of $r$ (a linear program), i.e. the implied $\delta$, so
      the efficiency guarantee $1-\delta^2$ is as strong as a Beta kernel allows.

    Exact Beta-kernel targets are recovered by every method.

    Returns:
      A `BetaFit` with `delta` from `implied_delta`.

    Example:
      >>> p = np.linspace(0.05, 0.95, 19)
      >>> f = fit_beta_kernel(p, 3.0 * p**1.5 * (1 - p) ** 0.5)
      >>> bool(np.allclose([f.alpha, f.beta, f.delta], [1.5, 0.5, 0.0], atol=1e-9))
      True
    """
    x, w = _fit_inputs(p, weights)
    y = np.log(w)
    lp, lq = np.log(x), np.log1p(-x)
    if method == "lsq":
        design = np.column_stack([np.ones_like(x), lp, lq])
        coef = np.linalg.lstsq(design, y, rcond=None)[0]
        alpha, beta = float(coef[1]), float(coef[2])
    elif method == "boundary":
        t = float(tail)
        if not (0 < t < 0.5):
            raise ValueError(f"tail must lie in (0, 0.5), got {tail!r}")
        left, right = x <= t, x >= 1 - t
        if left.sum() < 2 or right.sum() < 2:
            raise ValueError(
                f"tail={t} leaves {left.sum()} points at the left and {right.sum()} at the right; "
                "need at least 2 on each side"
            )
        m = left | right
        design = np.column_stack([left[m], right[m], lp[m], lq[m]]).astype(np.float64)
        coef = np.linalg.lstsq(design, y[m], rcond=None)[0]
        alpha, beta = float(coef[2]), float(coef[3])
    elif method == "minimax":
        from scipy.optimize import linprog

        # variables (alpha, beta, lo, hi): minimise hi - lo s.t. lo <= y - a lp - b lq <= hi.
        n = x.size
        ones = np.ones(n)
        a_ub = np.vstack(
            [
                np.column_stack([-lp, -lq, np.zeros(n), -ones]),  # y - a lp - b lq <= hi
                np.column_stack([lp, lq, ones, np.zeros(n)]),  # lo <= y - a lp - b lq
            ]
        )
        b_ub = np.concatenate([-y, y])
        res = linprog(
            c=[0.0, 0.0, -1.0, 1.0],
            A_ub=a_ub,
            b_ub=b_ub,
            bounds=[(None, None)] * 4,
            method="highs",
        )
        if not res.success:  # pragma: no cover - the LP is always feasible and bounded
            raise RuntimeError(f"minimax Beta fit failed: {res.message}")
        alpha, beta = float(res.x[0]), float(res.x[1])
    else:
        raise ValueError(f"method must be 'lsq', 'boundary' or 'minimax', got {method!r}")
    scale, delta = implied_delta(x, w, alpha, beta)
    return BetaFit(alpha=alpha, beta=beta, scale=scale, delta=delta, method=method)


# ----------------------------------------------------------------------------- measurement


def gradient_snr(grads, debias: bool = True) -> float:
    r"""Cross-problem gradient SNR $\|\mathbb E g\|^2 / \operatorname{tr}\mathrm{Cov}\,g$.

    One gradient $g_i$ per row.

    The SNR definition of PACED v3 (secondary source: "ratio of the squared norm of the expected
    gradient to the trace of the gradient covariance"). With $n$ rows, $\|\bar g\|^2$ overestimates
    $\|\mathbb E g\|^2$ by $\operatorname{tr}\mathrm{Cov}/n$, so the plain ratio never falls below
    about $1/n$; `debias=True` subtracts $\operatorname{tr}\widehat{\mathrm{Cov}}/n$ (unbiased
    numerator; the result may be slightly negative when the true SNR is near 0).

    Args:
      grads: (n, d) array, one gradient per problem, $n \ge 2$.
      debias: subtract the finite-$n$ bias of the numerator.
    """
    g = _array(grads, "grads")
    if g.ndim != 2 or g.shape[0] < 2:
        raise ValueError(f"grads must be (n, d) with n >= 2, got shape {g.shape}")
    n = g.shape[0]
    mean = g.mean(axis=0)
    tr = float(np.sum((g - mean) ** 2) / (n - 1))
    if tr == 0.0:
        raise ValueError("grads have zero covariance: the SNR is undefined")
    num = float(mean @ mean) - (tr / n if debias else 0.0)
    return num / tr
