"""The torch backend of `krr_scale` on CPU: float64 equals numpy; float32 within its stated bound."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sdtheory.lm.krr_scale import TorchKernel, features_gram  # noqa: E402
from sdtheory.theory.krr import KernelSelfDistillation  # noqa: E402
from sdtheory.theory.krr_scale import (  # noqa: E402
    RBF,
    BlockKernel,
    Laplace,
    NystromSelfDistillation,
    nystrom_factor,
    pcg_self_distillation,
)


def _data(n=120, p=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 2, (n, p))
    return x, np.sin(2 * x[:, 0]) + 0.1 * rng.standard_normal(n), rng


@pytest.mark.parametrize("kern", [RBF(1.3), Laplace(0.8)])
@pytest.mark.parametrize("tile", [49, 2**24])
def test_float64_products_equal_numpy(kern, tile):
    x, _, rng = _data()
    op = TorchKernel(kern, x, device="cpu", dtype=torch.float64, tile=tile)
    ref = BlockKernel(kern, x)
    v = rng.standard_normal((120, 3))
    np.testing.assert_allclose(op.matmat(v), ref.matmat(v), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op.matmat(v[:, 1]), ref.matmat(v[:, 1]), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op.columns([0, 7]), ref.columns([0, 7]), atol=1e-13)
    xn = rng.uniform(-1, 2, (4, 3))
    np.testing.assert_allclose(op.cross(xn, [1, 2]), ref.cross(xn, [1, 2]), atol=1e-13)
    np.testing.assert_array_equal(op.diag(), ref.diag())


@pytest.mark.parametrize("kern", [RBF(1.3), Laplace(0.8)])
@pytest.mark.parametrize("tile", [49, 2**24])
def test_float32_products_within_the_stated_bound(kern, tile):
    x, _, rng = _data(n=300)
    op = TorchKernel(kern, x, device="cpu", dtype=torch.float32, tile=tile)
    k = kern(x, x)
    v = rng.standard_normal((300, 2))
    err = np.abs(op.matmat(v) - k @ v)
    bound = op.float32_error * (k @ np.abs(v))
    assert np.all(err <= bound)
    # the bound is a worst case; the error itself is float32 rounding, far above float64's
    assert err.max() > 1e-9 * np.abs(k @ v).max()


def test_nystrom_certificate_and_pcg_run_on_the_torch_operator():
    x, y, _ = _data(n=200)
    kern = RBF(2.0)
    fac = nystrom_factor(kern, 120, rng=0, x=x)
    ref = NystromSelfDistillation(kern, y, 1e-2, x=x, factor=fac)
    op = TorchKernel(kern, x, device="cpu", dtype=torch.float64)
    ny = NystromSelfDistillation(op, y, 1e-2, factor=fac)
    np.testing.assert_allclose(ny.certificate_path(8, 0.3), ref.certificate_path(8, 0.3), rtol=1e-9)
    xn = np.random.default_rng(3).uniform(-1, 2, (5, 3))
    np.testing.assert_allclose(ny.predict(4, 0.3, x_eval=xn), ref.predict(4, 0.3, x_eval=xn))
    exact = KernelSelfDistillation(kern(x, x), y, 1e-2)
    res = pcg_self_distillation(op, y, 1e-2, 5, 0.3, preconditioner=ny, tol=1e-12)
    np.testing.assert_allclose(res.predictions, exact.predict_path(5, 0.3), atol=1e-9)
    lim = pcg_self_distillation(op, y, 1e-2, math.inf, 0.5, preconditioner=ny, tol=1e-12)
    np.testing.assert_allclose(lim.predictions[0], exact.predict(math.inf, 0.5), atol=1e-9)
    # a Nyström factor built on the torch operator is a valid approximation too
    own = NystromSelfDistillation(op, y, 1e-2, 30, rng=0)
    err = np.linalg.norm(own.predict_path(6, 0.2) - exact.predict_path(6, 0.2), axis=1)
    assert np.all(err <= own.certificate_path(6, 0.2) + 1e-9)


def test_features_gram_matches_numpy_in_both_precisions():
    rng = np.random.default_rng(1)
    phi = rng.standard_normal((1000, 7))
    want = phi.T @ phi
    g64 = features_gram(phi, device="cpu", dtype=torch.float64, chunk=300)
    np.testing.assert_allclose(g64, want, rtol=1e-12, atol=1e-10)
    g32 = features_gram(phi, device="cpu", dtype=torch.float32, chunk=300)
    u = 2.0**-24
    assert np.all(np.abs(g32 - want) <= (300 + 2) * u * (np.abs(phi).T @ np.abs(phi)))
    gt = features_gram(torch.as_tensor(phi), dtype=torch.float64, chunk=300)  # a tensor as input
    np.testing.assert_allclose(gt, want, rtol=1e-12, atol=1e-10)
    y = rng.standard_normal(1000)
    sd = KernelSelfDistillation.from_features(phi, y, 0.5, gram=g64)
    np.testing.assert_allclose(
        sd.predict(3, 0.4), KernelSelfDistillation.from_features(phi, y, 0.5).predict(3, 0.4)
    )


def test_validation():
    x, _, _ = _data(n=10)
    with pytest.raises(ValueError, match="kernel"):
        TorchKernel(lambda a, b: a @ b.T, x)
    with pytest.raises(ValueError, match="dtype"):
        TorchKernel(RBF(1.0), x, dtype=torch.float16)
    with pytest.raises(ValueError, match="x_eval"):
        TorchKernel(RBF(1.0), x, device="cpu").cross(np.ones((2, 5)))
    with pytest.raises(ValueError, match="phi"):
        features_gram(np.ones(3), device="cpu")
