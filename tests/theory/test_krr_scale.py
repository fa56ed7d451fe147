"""Tests for `sdtheory.theory.krr_scale`: low-rank closed forms, Nyström certificate, PCG.

References are independent of the code under test: `KernelSelfDistillation` on the full n x n
Gram matrix (one `eigh`) and `iterative_refits` (a fresh linear solve per step).

Rounding floor. The exact reference has eigenvalue errors of about $n\\epsilon\\|K\\|$, and a
step-τ filter has slope at most τ/λ in the eigenvalue. The computed predictions therefore
carry up to about $\\tau n\\epsilon(1+\\|K\\|/\\lambda)\\|y\\|$ of rounding. `_floor` is 64 times
that. A certificate bounds the exact-arithmetic distance, so the tests compare
`error <= certificate + floor`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdtheory.testing.strategies import adversarial_psd_kernels, feature_matrices
from sdtheory.theory.krr import KernelSelfDistillation, iterative_refits
from sdtheory.theory.krr_scale import (
    RBF,
    BlockKernel,
    DenseKernel,
    Laplace,
    LowRankSelfDistillation,
    NystromSelfDistillation,
    certificate_constants,
    nystrom_factor,
    pcg_self_distillation,
)

EPS = np.finfo(np.float64).eps


def _floor(k_norm, lam, steps, n, y, extra=1.0):
    return 64 * steps * n * EPS * (1 + k_norm / lam) * float(np.linalg.norm(y)) * extra


def _alpha_arg(draw_seq, steps, seed):
    """A constant alpha or a per-step sequence alpha_2..alpha_steps."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, steps - 1) if draw_seq else float(rng.uniform(0, 1))


# ============================================================================ exact features


@pytest.mark.claim("krr.scale-features-exact")
@given(
    feature_matrices(max_condition=1e4),
    st.floats(-2.0, 1.0),
    st.integers(1, 30),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_from_features_equals_the_full_closed_form_and_refits(phi, log_lam, steps, seq, seed):
    n = phi.shape[0]
    k = phi @ phi.T
    k_norm = float(np.linalg.norm(k, 2))
    lam = 10.0**log_lam * max(k_norm, 1e-3)
    rng = np.random.default_rng(seed)
    y = rng.standard_normal(n)
    alpha = _alpha_arg(seq, steps, seed)
    low = KernelSelfDistillation.from_features(phi, y, lam)
    assert isinstance(low, LowRankSelfDistillation)
    full = KernelSelfDistillation(k, y, lam)
    floor = _floor(k_norm, lam, steps, n, y)
    ref = iterative_refits(k, y, lam, steps, alpha)
    np.testing.assert_allclose(low.predict_path(steps, alpha), ref, atol=floor, rtol=0)
    np.testing.assert_allclose(low.predict(steps, alpha), full.predict(steps, alpha), atol=floor)
    # new points: features, and the kernel to the training points
    pe = rng.standard_normal((5, phi.shape[1]))
    ke = pe @ phi.T
    scale = float(np.max(np.abs(ke).sum(1))) / lam + 1.0
    want = full.predict_path(steps, alpha, ke)
    np.testing.assert_allclose(
        low.predict_path(steps, alpha, phi_eval=pe), want, atol=floor * scale
    )
    np.testing.assert_allclose(low.predict_path(steps, alpha, ke), want, atol=floor * scale)
    np.testing.assert_allclose(low.predict(steps, alpha, ke), want[-1], atol=floor * scale)
    if not seq:
        np.testing.assert_allclose(
            low.predict(math.inf, alpha), full.predict(math.inf, alpha), atol=floor
        )
    # the primal weights give the predictions
    np.testing.assert_allclose(phi @ low.weights(steps, alpha), low.predict(steps, alpha))


@pytest.mark.claim("krr.scale-features-exact")
def test_from_features_shrinkage_rate_multi_output_and_optimal_alpha():
    rng = np.random.default_rng(0)
    phi = rng.standard_normal((60, 8))
    y = rng.standard_normal((60, 3))
    low = KernelSelfDistillation.from_features(phi, y, 0.4)
    full = KernelSelfDistillation(phi @ phi.T, y, 0.4)
    # the d eigenvalues of Phi^T Phi are the top d of K; the rest of K's are zero
    np.testing.assert_allclose(low.eigenvalues, full.eigenvalues[:8], rtol=1e-12)
    np.testing.assert_allclose(full.eigenvalues[8:], 0.0, atol=1e-12)
    np.testing.assert_allclose(low.shrinkage(5, 0.3), full.shrinkage(5, 0.3)[:8], rtol=1e-11)
    assert low.convergence_rate(0.3) == pytest.approx(full.convergence_rate(0.3), rel=1e-12)
    assert low.n == 60 and low.rank == 8
    np.testing.assert_allclose(low.predict_path(4, 0.3), full.predict_path(4, 0.3), atol=1e-12)
    pe = rng.standard_normal((5, 8))
    np.testing.assert_allclose(
        low.predict_path(4, 0.3, phi_eval=pe), full.predict_path(4, 0.3, pe @ phi.T), atol=1e-12
    )
    assert low.weights_path(4, 0.3).shape == (4, 8, 3)
    one = KernelSelfDistillation.from_features(phi, y[:, 0], 0.4)
    t = rng.standard_normal(60)
    np.testing.assert_allclose(
        one.optimal_alpha(t, 5),
        KernelSelfDistillation(phi @ phi.T, y[:, 0], 0.4).optimal_alpha(t, 5),
    )
    te = rng.standard_normal(5)
    want = KernelSelfDistillation(phi @ phi.T, y[:, 0], 0.4).optimal_alpha(te, 5, pe @ phi.T)
    # alpha_2 is about -623 here: later steps carry (1 - alpha_2) ~ 600x the rounding
    np.testing.assert_allclose(one.optimal_alpha(te, 5, phi_eval=pe), want, rtol=1e-7)
    np.testing.assert_allclose(one.optimal_alpha(te, 5, pe @ phi.T), want, rtol=1e-7)


def test_from_features_accepts_a_precomputed_gram_and_rejects_bad_input():
    rng = np.random.default_rng(1)
    phi = rng.standard_normal((30, 4))
    y = rng.standard_normal(30)
    a = LowRankSelfDistillation(phi, y, 0.5)
    b = LowRankSelfDistillation(phi, y, 0.5, gram=phi.T @ phi)
    np.testing.assert_array_equal(a.predict(3, 0.2), b.predict(3, 0.2))
    with pytest.raises(ValueError, match="phi"):
        LowRankSelfDistillation(np.ones(3), np.ones(3), 1.0)
    with pytest.raises(ValueError, match="phi"):
        LowRankSelfDistillation(np.full((3, 2), np.nan), np.ones(3), 1.0)
    with pytest.raises(ValueError, match="y must"):
        LowRankSelfDistillation(phi, np.ones(4), 1.0)
    with pytest.raises(ValueError, match="lam"):
        LowRankSelfDistillation(phi, y, 0.0)
    with pytest.raises(ValueError, match="gram"):
        LowRankSelfDistillation(phi, y, 1.0, gram=np.eye(3))
    with pytest.raises(ValueError, match="phi_eval"):
        a.predict(2, 0.5, phi_eval=np.ones((2, 5)))
    with pytest.raises(ValueError, match="not both"):
        a.predict(2, 0.5, np.ones((2, 30)), phi_eval=np.ones((2, 4)))
    with pytest.raises(ValueError, match="step"):
        a.predict(0, 0.5)
    with pytest.raises(ValueError, match="alpha"):
        a.predict(math.inf, 1.5)


# ============================================================================ kernel operators


@pytest.mark.parametrize("kern", [RBF(1.5), Laplace(0.7)])
@pytest.mark.parametrize("tile", [1, 7, 64, 2**21])
def test_block_kernel_products_equal_the_dense_matrix(kern, tile):
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 3, (23, 3))
    k = kern(x, x)
    op = BlockKernel(kern, x, tile=tile)
    v = rng.standard_normal((23, 4))
    np.testing.assert_allclose(op.matmat(v), k @ v, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op.matmat(v[:, 0]), k @ v[:, 0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op.columns([3, 5]), k[:, [3, 5]], atol=1e-13)
    np.testing.assert_allclose(op.diag(), np.diag(k))
    xn = rng.uniform(-1, 3, (4, 3))
    np.testing.assert_allclose(op.cross(xn), kern(xn, x), atol=1e-13)
    dense = DenseKernel(k)
    np.testing.assert_allclose(dense.matmat(v), k @ v)


def test_kernels_match_their_formulas_and_validate():
    a, b = np.array([[0.0, 1.0]]), np.array([[2.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(RBF(0.5)(a, b), [[np.exp(-2.0), np.exp(-0.5)]])
    np.testing.assert_allclose(Laplace(0.5)(a, b), [[np.exp(-1.0), np.exp(-0.5)]])
    with pytest.raises(ValueError, match="gamma"):
        RBF(0.0)
    with pytest.raises(ValueError, match="symmetric"):
        DenseKernel(np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="kernel"):
        BlockKernel(lambda a, b: a @ b.T, np.ones((3, 2)))
    with pytest.raises(ValueError, match="v must"):
        DenseKernel(np.eye(3)).matmat(np.ones(4))


# ============================================================================ Nyström factor


@given(adversarial_psd_kernels(max_condition=1e12), st.integers(1, 45), st.integers(0, 2**32 - 1))
def test_rpcholesky_factor_is_a_nystrom_approximation_below_the_kernel(k, rank, seed):
    n = k.shape[0]
    fac = nystrom_factor(k, rank, rng=seed, block=3)
    f, piv = fac.factor, fac.pivots
    assert f.shape[1] == piv.shape[0] <= min(rank, n)
    assert len(set(piv.tolist())) == piv.shape[0]
    np.testing.assert_array_equal(np.triu(f[piv], 1), 0.0)  # lower triangular at the pivots
    resid = k - f @ f.T
    knorm = float(np.max(np.abs(k)))
    # E = K - F F^T is PSD (to the factor's rounding allowance) and vanishes on the pivots
    assert float(np.linalg.eigvalsh(resid)[0]) >= -fac.rounding
    assert float(np.max(np.abs(resid[piv]), initial=0.0)) <= 64 * n * EPS * knorm
    np.testing.assert_allclose(
        fac.residual_diag, np.maximum(np.diag(resid), 0), atol=64 * EPS * knorm
    )


def test_rpcholesky_stops_at_the_numerical_rank_and_uniform_sampling():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 4))
    k = x @ x.T  # rank 4
    fac = nystrom_factor(k, 20, rng=0)
    assert fac.factor.shape[1] == 4
    np.testing.assert_allclose(fac.factor @ fac.factor.T, k, atol=1e-11)
    uni = nystrom_factor(k, 3, rng=0, method="uniform")
    assert uni.factor.shape[1] == 3
    with pytest.raises(ValueError, match="rank"):
        nystrom_factor(k, 0, rng=0)
    with pytest.raises(ValueError, match="method"):
        nystrom_factor(k, 2, rng=0, method="greedy")
    with pytest.raises(ValueError, match="PSD"):
        nystrom_factor(np.diag([1.0, -1.0]), 1, rng=0)


# ============================================================================ certificate


@pytest.mark.claim("krr.scale-certificate-bounds-error")
@given(
    adversarial_psd_kernels(max_condition=1e12),
    st.floats(-8.0, 1.0),
    st.integers(1, 40),
    st.integers(1, 20),
    st.booleans(),
    st.sampled_from(["residual", "trace"]),
    st.integers(0, 2**32 - 1),
)
def test_certificate_bounds_the_error_on_adversarial_spectra(
    k, log_lam, rank, steps, seq, kind, seed
):
    n = k.shape[0]
    k_norm = float(np.linalg.eigvalsh(k)[-1])
    lam = 10.0**log_lam * k_norm
    rng = np.random.default_rng(seed)
    y = rng.standard_normal(n)
    alpha = _alpha_arg(seq, steps, seed)
    ny = NystromSelfDistillation(k, y, lam, rank, rng=seed, block=4)
    ex = KernelSelfDistillation(k, y, lam)
    err = np.linalg.norm(ny.predict_path(steps, alpha) - ex.predict_path(steps, alpha), axis=1)
    cert = ny.certificate_path(steps, alpha, kind=kind)
    floor = _floor(k_norm, lam, steps, n, y)
    assert np.all(err <= cert * (1 + 1e-9) + floor), (err, cert, floor)
    assert ny.certificate(steps, alpha, kind=kind) == pytest.approx(cert[-1], rel=1e-12, abs=0)
    if not seq:
        e_inf = np.linalg.norm(ny.predict(math.inf, alpha) - ex.predict(math.inf, alpha))
        c_inf = ny.certificate(math.inf, alpha, kind=kind)
        assert e_inf <= c_inf * (1 + 1e-9) + _floor(k_norm, lam * alpha + 1e-300, 1, n, y)


@pytest.mark.claim("krr.scale-certificate-bounds-error")
@given(
    adversarial_psd_kernels(max_condition=1e8),
    st.floats(-4.0, 0.0),
    st.integers(1, 30),
    st.integers(1, 8),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_certificate_at_new_points_bounds_the_error(k_aug, log_lam, rank, steps, limit, seed):
    m = min(4, k_aug.shape[0] - 1)
    if m < 1:
        return
    n = k_aug.shape[0] - m
    k, ke, kxx = k_aug[:n, :n], k_aug[n:, :n], np.diag(k_aug)[n:].copy()
    k_norm = float(np.linalg.eigvalsh(k)[-1])
    if k_norm <= 0:
        return
    lam = 10.0**log_lam * k_norm
    y = np.random.default_rng(seed).standard_normal(n)
    step, alpha = (math.inf, 0.4) if limit else (steps, 0.3)
    ny = NystromSelfDistillation(k, y, lam, rank, rng=seed)
    ex = KernelSelfDistillation(k, y, lam)
    err = np.abs(ny.predict(step, alpha, ke) - ex.predict(step, alpha, ke))
    cert = ny.certificate(step, alpha, kernel_eval=ke, eval_diag=kxx)
    floor = _floor(k_norm, lam, steps, n, y, extra=float(np.abs(ke).sum(1).max()) / lam + 1)
    assert np.all(err <= cert * (1 + 1e-9) + floor)


def _rbf_problem(n=500, p=3, gamma=3.0, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, p))
    y = np.sin(3 * x[:, 0]) + 0.1 * rng.standard_normal(n)
    return x, y


@pytest.mark.claim("krr.scale-certificate-tight")
@pytest.mark.parametrize("rank", [30, 80, 200])
@pytest.mark.parametrize("lam", [1e-1, 1e-3])
def test_residual_certificate_is_within_10x_of_the_error(rank, lam):
    # RBF kernel, n = 500 (the n = 8,000 figure is in benchmarks/bench_krr_scale.py)
    x, y = _rbf_problem()
    kern = RBF(3.0)
    ny = NystromSelfDistillation(kern, y, lam, rank, rng=1, x=x)
    ex = KernelSelfDistillation(kern(x, x), y, lam)
    for alpha in (0.0, 0.3, 1.0):
        err = np.linalg.norm(ny.predict_path(20, alpha) - ex.predict_path(20, alpha), axis=1)
        cert = ny.certificate_path(20, alpha)
        assert np.all(err > 1e-9 * np.linalg.norm(y))  # a real error, far above rounding
        ratio = cert / err
        assert np.all(ratio >= 1.0) and np.all(ratio <= 10.0), ratio
        trace = ny.certificate_path(20, alpha, kind="trace")
        assert np.all(trace >= cert * (1 - 1e-12))  # the trace bound only relaxes ||Eu||, u'Eu


def test_certificate_is_rounding_level_when_the_rank_is_full():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((40, 3))
    k = x @ x.T + np.outer(x[:, 0] ** 2, x[:, 0] ** 2)  # rank 4
    y = rng.standard_normal(40)
    ny = NystromSelfDistillation(k, y, 0.1, 10, rng=0)
    assert ny.rank == 4 and ny.trace_residual <= 1e-10
    ex = KernelSelfDistillation(k, y, 0.1)
    np.testing.assert_allclose(ny.predict_path(10, 0.3), ex.predict_path(10, 0.3), atol=1e-10)
    assert np.all(ny.certificate_path(10, 0.3) <= 1e-9)


def test_certificate_multi_output_per_step_alpha_and_new_inputs():
    x, y1 = _rbf_problem(n=200)
    y = np.stack([y1, np.cos(2 * x[:, 1])], axis=1)
    kern = RBF(3.0)
    ny = NystromSelfDistillation(kern, y, 1e-2, 40, rng=2, x=x)
    ex = KernelSelfDistillation(kern(x, x), y, 1e-2)
    al = np.array([0.2, 0.9, 0.5, 0.0])
    err = np.linalg.norm(ny.predict_path(5, al) - ex.predict_path(5, al), axis=1)
    cert = ny.certificate_path(5, al)
    assert cert.shape == (5, 2) and np.all(err <= cert)
    xn = np.random.default_rng(5).uniform(size=(6, 3))
    kn = kern(xn, x)
    np.testing.assert_allclose(ny.predict(5, al, x_eval=xn), ny.predict(5, al, kn), atol=1e-12)
    e_new = np.abs(ny.predict(5, al, x_eval=xn) - ex.predict(5, al, kn))
    c_new = ny.certificate(5, al, x_eval=xn)
    assert c_new.shape == (6, 2) and np.all(e_new <= c_new)
    np.testing.assert_allclose(ny.certificate(5, al, kernel_eval=kn, eval_diag=np.ones(6)), c_new)
    # Nyström features reproduce the training predictions at the training inputs
    np.testing.assert_allclose(ny.predict(3, 0.3, x_eval=x), ny.predict(3, 0.3), atol=1e-9)
    assert ny.certificate(math.inf, 0.0) == pytest.approx([0.0, 0.0])


def test_certificate_constants():
    c, kappa = certificate_constants(6)
    xs = np.linspace(0, 1, 200001)
    for i in range(6):
        assert c[i] == pytest.approx(np.max(xs**i * (1 - xs)), rel=1e-8)
        assert kappa[i] == pytest.approx(np.max(xs ** (i + 0.5) * np.sqrt(1 - xs)), rel=1e-8)


def test_nystrom_validation():
    x, y = _rbf_problem(n=30)
    ny = NystromSelfDistillation(RBF(1.0), y, 0.1, 5, rng=0, x=x)
    with pytest.raises(ValueError, match="kind"):
        ny.certificate_path(3, 0.3, kind="exact")
    with pytest.raises(ValueError, match="finite"):
        ny.certificate_path(math.inf, 0.3)
    with pytest.raises(ValueError, match="eval_diag"):
        ny.certificate(2, 0.3, kernel_eval=np.ones((2, 30)))
    with pytest.raises(ValueError, match="exactly one"):
        ny.features()
    with pytest.raises(ValueError, match="rank and rng"):
        NystromSelfDistillation(RBF(1.0), y, 0.1, x=x)
    with pytest.raises(ValueError, match="x must"):
        NystromSelfDistillation(RBF(1.0), y, 0.1, 5, rng=0)
    dense = NystromSelfDistillation(RBF(1.0)(x, x), y, 0.1, 5, rng=0)
    with pytest.raises(ValueError, match="kernel function"):
        dense.features(x_eval=x[:2])


# ============================================================================ PCG


@pytest.mark.claim("krr.scale-pcg-certified")
@given(
    adversarial_psd_kernels(max_condition=1e10),
    st.floats(-6.0, 0.0),
    st.integers(1, 10),
    st.integers(1, 6),
    st.integers(0, 2**32 - 1),
)
def test_pcg_bound_holds_and_cg_converges(k, log_lam, rank, steps, seed):
    n = k.shape[0]
    k_norm = float(np.linalg.eigvalsh(k)[-1])
    lam = 10.0**log_lam * k_norm
    y = np.random.default_rng(seed).standard_normal(n)
    res = pcg_self_distillation(k, y, lam, steps, 0.3, rank=rank, rng=seed, tol=1e-12)
    ex = KernelSelfDistillation(k, y, lam).predict_path(steps, 0.3)
    err = np.linalg.norm(res.predictions - ex, axis=1)
    floor = _floor(k_norm, lam, steps, n, y)
    assert np.all(err <= res.bound * (1 + 1e-9) + floor)
    assert np.all(res.bound <= 1e-6 * np.linalg.norm(y) + floor)  # converged to the tolerance


def test_pcg_matrix_free_limit_new_points_and_few_iterations():
    x, y = _rbf_problem(n=300)
    kern = RBF(3.0)
    op = BlockKernel(kern, x, tile=4096)
    ny = NystromSelfDistillation(op, y, 1e-3, 100, rng=0)
    ex = KernelSelfDistillation(kern(x, x), y, 1e-3)
    res = pcg_self_distillation(op, y, 1e-3, 6, 0.25, preconditioner=ny, tol=1e-12)
    assert res.iterations.max() <= 40  # preconditioned spectrum in [1, 1 + ||E|| / lam]
    np.testing.assert_allclose(res.predictions, ex.predict_path(6, 0.25), atol=1e-9)
    xn = np.random.default_rng(1).uniform(size=(5, 3))
    kn = kern(xn, x)
    err_new = np.abs(kn @ res.duals[-1] - ex.predict(6, 0.25, kn))
    assert np.all(err_new <= res.bound_at(np.ones(5)) + 1e-9)
    lim = pcg_self_distillation(op, y, 1e-3, math.inf, 0.5, preconditioner=ny, tol=1e-12)
    np.testing.assert_allclose(lim.predictions[0], ex.predict(math.inf, 0.5), atol=1e-9)
    zero = pcg_self_distillation(op, y, 1e-3, math.inf, 0.0, preconditioner=ny)
    np.testing.assert_array_equal(zero.predictions, 0.0)
    with pytest.raises(ValueError, match="rng"):
        pcg_self_distillation(op, y, 1e-3, 2, 0.3)


def test_predict_grid_equals_predict_path_per_alpha():
    rng = np.random.default_rng(6)
    phi = rng.standard_normal((80, 6))
    y = rng.standard_normal(80)
    low = KernelSelfDistillation.from_features(phi, y, 0.3)
    alphas = [0.0, 0.25, 1.0, 1.7]
    grid = low.predict_grid(alphas, 7)
    assert grid.shape == (4, 7, 80)
    for i, al in enumerate(alphas):
        np.testing.assert_allclose(grid[i], low.predict_path(7, al), atol=1e-12)
    pe = rng.standard_normal((3, 6))
    np.testing.assert_allclose(
        low.predict_grid(alphas, 7, phi_eval=pe)[2], low.predict_path(7, 1.0, phi_eval=pe)
    )
    multi = KernelSelfDistillation.from_features(phi, np.stack([y, -2 * y], 1), 0.3)
    np.testing.assert_allclose(multi.predict_grid(alphas, 7)[..., 1], -2 * grid, atol=1e-11)
    x, yy = _rbf_problem(n=100)
    ny = NystromSelfDistillation(RBF(2.0), yy, 1e-2, 20, rng=0, x=x)
    xn = rng.uniform(size=(4, 3))
    np.testing.assert_allclose(
        ny.predict_grid([0.5], 3, x_eval=xn)[0], ny.predict_path(3, 0.5, x_eval=xn)
    )
    with pytest.raises(ValueError, match="alphas"):
        low.predict_grid([[0.1]], 3)


@pytest.mark.parametrize("alpha", [1.7, 3.0, -0.5])
def test_constant_alpha_outside_the_unit_interval_matches_refits(alpha):
    # the closed sum's geometric factor q = (1 - alpha) a is negative for alpha > 1; it used
    # to go through log(q) and return NaN (the class promises any finite alpha for finite steps)
    rng = np.random.default_rng(7)
    phi = rng.standard_normal((30, 5))
    y = rng.standard_normal(30)
    k = phi @ phi.T
    ref = iterative_refits(k, y, 0.8, 6, alpha)
    scale = float(np.abs(ref).max())
    np.testing.assert_allclose(
        KernelSelfDistillation(k, y, 0.8).predict_path(6, alpha), ref, atol=1e-10 * scale
    )
    low = KernelSelfDistillation.from_features(phi, y, 0.8)
    np.testing.assert_allclose(low.predict_path(6, alpha), ref, atol=1e-10 * scale)
    np.testing.assert_allclose(low.predict_grid([alpha], 6)[0], ref, atol=1e-10 * scale)
