"""Claims of the large-n kernel self-distillation paths (`sdtheory.theory.krr_scale`)."""

from __future__ import annotations

from .._registry import claim

_PAGE = "docs/theory/krr.md §6 (kernel self-distillation at scale)"

FEATURES_EXACT = claim(
    "krr.scale-features-exact",
    "For features Phi (n x d) the closed forms computed from the d x d Gram Phi^T Phi (primal "
    "weights W diag(g) W^T Phi^T y) equal those of the full kernel K = Phi Phi^T at every step, "
    "alpha (scalar or per step), the limit and new points, in O(n d^2 + d^3).",
    ("derived", _PAGE),
    "sdtheory.theory.krr_scale.LowRankSelfDistillation",
    paper="borup2021",
)
CERTIFICATE = claim(
    "krr.scale-certificate-bounds-error",
    "For a Nystrom approximation FF^T <= K, ||y_exact^(tau) - y_approx^(tau)||_2 <= "
    "sum_j |beta_tau,j| min(c_(tau-j) ||g_j||, sqrt(lam) kappa_(tau-j) sqrt(u_j^T E u_j) + "
    "c_(tau-j) ||delta_j||), with g_j = K u_j - y_approx^(j) the true residual of the dual "
    "vector u_j = (t_j - y_approx^(j))/lam, E = K - FF^T, c_i = i^i/(i+1)^(i+1) and "
    "kappa_i^2 = (2i+1)^(2i+1)/(2i+2)^(2i+2); for every step, alpha and the limit.",
    ("derived", _PAGE),
    "sdtheory.theory.krr_scale.NystromSelfDistillation.certificate_path",
    paper="borup2021",
)
CERTIFICATE_TIGHT = claim(
    "krr.scale-certificate-tight",
    "On RBF kernels the residual certificate is within 10x of the true distance to the exact "
    "predictor at every step and alpha of a 20 x 20 grid (an empirical statement about the "
    "bound's slack, not a theorem).",
    ("derived", _PAGE + "; measured by benchmarks/bench_krr_scale.py"),
    "sdtheory.theory.krr_scale.NystromSelfDistillation.certificate_path",
    paper="borup2021",
)
PCG_CERTIFIED = claim(
    "krr.scale-pcg-certified",
    "Conjugate gradients preconditioned with (FF^T + lam I)^(-1), FF^T <= K a Nystrom factor, "
    "reach the exact self-distillation predictor with matrix-free kernel products, and "
    "sum_j |beta_tau,j| c_(tau-j) ||g_j|| over the true residuals bounds the distance to it.",
    ("derived", _PAGE),
    "sdtheory.theory.krr_scale.pcg_self_distillation",
    paper="borup2021",
)
