"""JAX checks: refits by linear solves and gradient-descent networks against the closed form."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

jax = pytest.importorskip("jax")

from sdtheory.nets.krr import (  # noqa: E402
    apply_two_layer,
    distill_network,
    empirical_kernel,
    init_two_layer,
    iterative_refits,
)
from sdtheory.testing.strategies import psd_kernels  # noqa: E402
from sdtheory.theory.krr import KernelSelfDistillation  # noqa: E402

X = np.linspace(0.0, 1.0, 9)[:, None]
Y = np.sin(2 * np.pi * X[:, 0]) + 0.3 * np.cos(7 * X[:, 0])


@pytest.mark.claim("krr.jax-refits")
@settings(max_examples=10)  # two kernel sizes only: every new shape costs an XLA compilation
@given(
    st.sampled_from([3, 40]).flatmap(lambda n: psd_kernels(n=n)),
    st.floats(0.0, 1.0),
    st.integers(1, 30),
    st.floats(1e-2, 5.0),
    st.integers(0, 2**32 - 1),
)
def test_jax_refits_equal_closed_form(kernel, alpha, steps, lam, seed):
    y = np.random.default_rng(seed).standard_normal(kernel.shape[0])
    ref = np.asarray(iterative_refits(kernel, y, lam, steps, alpha))
    sd = KernelSelfDistillation(kernel, y, lam)
    assert ref.dtype == np.float64
    np.testing.assert_allclose(
        ref, sd.predict_path(steps, alpha), rtol=0, atol=1e-10 * np.max(np.abs(y))
    )


def test_padding_does_not_change_the_network_or_its_kernel():
    key = jax.random.PRNGKey(3)
    small = init_two_layer(key, 1, 8)
    padded = init_two_layer(key, 1, 8, pad_to=32)
    # same live units: copy them into the padded arrays
    live = {k: padded[k].at[:8].set(small[k]) for k in ("w", "b", "v")}
    padded = {**padded, **live}
    np.testing.assert_allclose(apply_two_layer(padded, X), apply_two_layer(small, X), atol=1e-14)
    kern = jax.jit(empirical_kernel)
    np.testing.assert_allclose(kern(padded, X, X), kern(small, X, X), atol=1e-13)


@pytest.mark.claim("krr.random-features-exact")
@pytest.mark.paper("borup2021", "krr.random-features-exact")
def test_random_features_gd_matches_closed_form():
    r = distill_network(jax.random.PRNGKey(0), X, Y, 0.2, 4, 0.3, 64, iters=3000, train="readout")
    assert r["grad_norm"].max() < 1e-10
    np.testing.assert_allclose(r["train"], r["train_theory"], atol=1e-10)
    np.testing.assert_allclose(r["eval"], r["train_theory"], atol=1e-10)


@pytest.mark.slow  # ~20 s on 2 busy cores (two compilations of a 3000-step GD loop)
@pytest.mark.claim("krr.network-deviation-shrinks")
@pytest.mark.paper("borup2021", "krr.network-deviation-shrinks")
def test_two_layer_deviation_shrinks_with_width():
    devs = []
    for width in (8, 512):
        r = distill_network(
            jax.random.PRNGKey(1), X, Y, 0.2, 3, 0.25, width, iters=3000, pad_to=512
        )
        assert r["grad_norm"].max() < 1e-8  # GD converged: the gap is not optimisation error
        devs.append(float(np.max(np.abs(r["train"] - r["train_theory"]))))
    # lazy-training scale: 64x the width should cut the deviation by about 8x; demand > 3x
    assert devs[1] < devs[0] / 3, devs


def test_bad_arguments():
    with pytest.raises(ValueError, match="train"):
        distill_network(jax.random.PRNGKey(0), X, Y, 0.2, 2, 0.3, 8, train="middle")
    with pytest.raises(ValueError, match="pad_to"):
        init_two_layer(jax.random.PRNGKey(0), 1, 8, pad_to=4)
    with pytest.raises(ValueError, match="alpha"):
        iterative_refits(np.eye(3), np.ones(3), 0.1, 3, [0.5])
