"""Sympy proofs of the identities behind the Nyström / PCG certificate (`krr_scale`)."""

from __future__ import annotations

import numpy as np
import pytest

sp = pytest.importorskip("sympy")

from sdtheory.symbolic import krr_scale as sks  # noqa: E402
from sdtheory.theory.krr_scale import certificate_constants  # noqa: E402


@pytest.mark.claim("krr.scale-certificate-bounds-error")
def test_residual_identity_for_generic_symmetric_kernels():
    assert sks.prove_residual_identity(dim=3)


@pytest.mark.claim("krr.scale-certificate-bounds-error")
def test_error_recursion_unrolls_to_the_certificate_sum():
    assert sks.prove_error_unrolling(max_tau=6)


@pytest.mark.claim("krr.scale-certificate-bounds-error")
def test_filter_norm_constants():
    assert sks.prove_certificate_constants()
    assert sks.prove_filter_substitution()
    assert sks.prove_sqrt_branch_scalar()


def test_numeric_constants_match_the_symbolic_suprema():
    c, kappa = certificate_constants(12)
    for i in range(1, 12):
        assert c[i] == pytest.approx(float(sp.Integer(i) ** i / sp.Integer(i + 1) ** (i + 1)))
        k2 = sp.Integer(2 * i + 1) ** (2 * i + 1) / sp.Integer(2 * i + 2) ** (2 * i + 2)
        assert kappa[i] ** 2 == pytest.approx(float(k2))
    assert c[0] == 1.0 and kappa[0] == pytest.approx(0.5)
    assert np.all(np.diff(c) < 0) and np.all(np.diff(kappa) < 0)


def test_a_wrong_identity_is_rejected():
    x = sp.symbols("x")
    with pytest.raises(AssertionError, match="residual"):
        sks._assert_zero(x**2 - x, "wrong")
