r"""Held-out accuracy metrics from $n$ samples per problem: pass@k, avg@k, difficulty levels.

* `pass_at_k(n, c, k)`: the unbiased estimator of pass@k of Chen et al. (2021),
  $1 - \binom{n-c}{k}/\binom{n}{k}$: the probability that $k$ of the $n$ samples, drawn without
  replacement, contain at least one of the $c$ correct ones. Computed exactly in integer
  arithmetic and rounded once, so it is stable for any $n$ (no cancellation, no overflow).
* `eval_summary(correct, n, ks)`: avg@n (the mean per-problem pass rate) with its 95 %
  percentile-bootstrap band over problems, and pass@k for each `k`, averaged over problems.
* `difficulty_level(meta)`: the level of a problem when its task has difficulty levels
  (reasoning-gym metadata), used for per-difficulty breakdowns.

numpy only (no torch): `sdtheory plot` and the trainer both use it.

References:
  Chen et al., "Evaluating Large Language Models Trained on Code" (2021), arXiv:2107.03374,
  the unbiased pass@k estimator and its numerically stable product form
  $1 - \prod_{i=n-c+1}^{n} (1 - k/i)$.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

__all__ = ["difficulty_level", "eval_summary", "pass_at_k", "pass_at_k_ks"]


def _int(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def pass_at_k(n: int, c: int, k: int) -> float:
    r"""Unbiased pass@k from $n$ samples of which $c$ are correct: $1-\binom{n-c}{k}/\binom{n}{k}$.

    The ratio of binomials is formed from exact integers (`math.comb`) and rounded to the nearest
    float once, so the result is the correctly rounded value of the estimator.

    Args:
      n: samples drawn for the problem ($n \ge 1$).
      c: correct samples among them ($0 \le c \le n$).
      k: the budget ($1 \le k \le n$).

    Returns:
      The estimate in $[0, 1]$: 0 when $c = 0$, 1 when $n - c < k$.

    Example:
      >>> pass_at_k(4, 1, 2)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
      0.5
      >>> pass_at_k(10, 3, 1) == 3 / 10  # pass@1 is the pass rate
      True
    """
    n = _int(n, "n", 1)
    c = _int(c, "c", 0)
    k = _int(k, "k", 1)
    if c > n:
        raise ValueError(f"c must be <= n ({n}), got {c}")
    if k > n:
        raise ValueError(f"k must be <= n ({n}), got {k}")
    if n - c < k:
        return 1.0
    return float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))


def pass_at_k_ks(n: int) -> list[int]:
    """The budgets logged for $n$ samples per problem: powers of two below $n$, then $n$.

    Example:
      >>> pass_at_k_ks(8), pass_at_k_ks(6), pass_at_k_ks(1)
      ([1, 2, 4, 8], [1, 2, 4, 6], [1])
    """
    n = _int(n, "n", 1)
    ks = [1 << i for i in range(n.bit_length()) if 1 << i < n]
    return [*ks, n]


def eval_summary(correct: Sequence[int], n: int, ks: Sequence[int] | None = None) -> dict:
    """avg@n with its band and pass@k per budget, over problems with `correct[i]` of `n` right.

    Args:
      correct: correct samples per problem (each in `[0, n]`).
      n: samples per problem.
      ks: budgets (default `pass_at_k_ks(n)`).

    Returns:
      `accuracy` (mean pass rate = avg@n), `accuracy_lo`/`accuracy_hi` (the 95 % percentile
      bootstrap band over problems, `sdtheory.claims.bootstrap_band`, seeded; inside [0, 1]
      unlike a t band; NaN for fewer than 2 problems) and `pass_at_<k>`.
    """
    from ..claims import bootstrap_band

    n = _int(n, "n", 1)
    c = [_int(x, "correct", 0) for x in correct]
    if any(x > n for x in c):
        raise ValueError(f"correct must lie in [0, n={n}], got {max(c)}")
    if not c:
        raise ValueError("correct must hold at least one problem, got none")
    band = bootstrap_band(np.asarray(c, dtype=float) / n, seed=0)
    out = {"accuracy": band.estimate, "accuracy_lo": band.lo, "accuracy_hi": band.hi}
    for k in pass_at_k_ks(n) if ks is None else ks:
        out[f"pass_at_{k}"] = float(np.mean([pass_at_k(n, x, k) for x in c]))
    return out


def difficulty_level(meta: dict) -> str | None:
    """A problem's difficulty level from its task metadata, or `None` when it has none.

    reasoning-gym records `meta["difficulty"]` either as a number (one level per problem,
    e.g. `gsm_symbolic`) or as the generator's ranges `{name: (lo, hi)}` with the problem's own
    value of each `name` beside it (`chain_sum`: `num_terms`, `num_digits`); the level is then
    those values, e.g. `"num_digits=2, num_terms=3"`.

    Example:
      >>> meta = {"num_terms": 3, "num_digits": 2, "difficulty": {"num_terms": (2, 4), "num_digits": (1, 2)}}
      >>> difficulty_level(meta), difficulty_level({"difficulty": 1.0}), difficulty_level({})
      ('num_digits=2, num_terms=3', '1.0', None)
    """
    d = meta.get("difficulty")
    if d is None:
        return None
    if isinstance(d, dict):
        parts = [f"{key}={meta[key]}" for key in sorted(d) if key in meta]
        return ", ".join(parts) or None
    return str(d)
