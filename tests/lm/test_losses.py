"""Tests for `sdtheory.lm.losses`: the torch divergences against the numpy core, and their plumbing.

References: `sdtheory.core` in float64 (the contract), autograd of the plain version, exact
expectations by enumerating the vocabulary, and closed forms computed with mpmath.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sdtheory import core  # noqa: E402
from sdtheory.lm.losses import (  # noqa: E402
    DIVERGENCES,
    DivergenceSpec,
    distillation_loss,
    reduce_loss,
    sampled_token_loss,
    token_divergence,
)
from sdtheory.testing.asserts import assert_close, tolerance  # noqa: E402
from sdtheory.testing.strategies import logits as logits_strategy  # noqa: E402

SHAPE = (3, 47, 123)  # odd on every axis, as the issue asks

# (divergence, kwargs) pairs that cover every branch of every divergence.
CASES = [
    ("forward_kl", {}),
    ("reverse_kl", {}),
    ("tvd", {}),
    ("skew_kl", {"alpha": 0.1}),
    ("skew_kl", {"alpha": 0.0}),
    ("skew_kl", {"alpha": 1.0}),
    ("jsd", {"beta": 0.5}),
    ("jsd", {"beta": 0.1}),
    ("jsd", {"beta": 0.9}),
    ("jsd", {"beta": 0.0}),
    ("jsd", {"beta": 1.0}),
    ("jsd", {"beta": 0.3, "normalized": True}),
    ("jsd", {"beta": 0.0, "normalized": True}),
    ("jsd", {"beta": 1.0, "normalized": True}),
]
CASE_IDS = [f"{d}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for d, kw in CASES]


def _logits(shape=SHAPE, seed=0, scale=3.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    zs = scale * torch.randn(shape, generator=g, dtype=torch.float64)
    zt = scale * torch.randn(shape, generator=g, dtype=torch.float64)
    return zs.to(dtype), zt.to(dtype)


def _mask(shape=SHAPE[:-1], seed=1):
    """A (B, T) completion mask: a prompt of varying length, then tokens, then padding."""
    g = torch.Generator().manual_seed(seed)
    b, t = shape
    m = torch.zeros(shape, dtype=torch.bool)
    for i in range(b):
        start = int(torch.randint(0, t // 3 + 1, (1,), generator=g))
        stop = int(torch.randint(start + 1, t + 1, (1,), generator=g))
        m[i, start:stop] = True
    return m


def _core_value(ls, lt, divergence, beta=0.5, normalized=False, alpha=0.1):
    """The numpy reference, teacher in the first slot (`sdtheory.core` conventions)."""
    if divergence == "forward_kl":
        return core.kl(lt, ls)
    if divergence == "reverse_kl":
        return core.kl(ls, lt)
    if divergence == "tvd":
        return core.total_variation(lt, ls)
    if divergence == "skew_kl":
        return core.skew_kl(lt, ls, alpha)
    return core.generalized_jsd(lt, ls, beta, normalized=normalized)


def _core_support(zs, zt, support, k, temperature):
    ls = core.log_softmax(zs, temperature)
    lt = core.log_softmax(zt, temperature)
    if support == "full":
        return ls, lt
    if support == "teacher_topk":
        lt_k, idx = core.top_k(lt, k)
        return core.renormalize(core.gather(ls, idx)), lt_k
    idx = np.argsort(-ls, axis=-1, kind="stable")[..., :k]
    return core.with_tail_bucket(ls, idx), core.with_tail_bucket(lt, idx)


# ----------------------------------------------------------------------------- against the core


@pytest.mark.parametrize(("divergence", "kw"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize(
    ("support", "k"), [("full", None), ("teacher_topk", 9), ("student_topk_tail", 9)]
)
def test_float64_matches_core(divergence, kw, support, k):
    zs, zt = _logits()
    temperature = 0.7
    ours = token_divergence(
        zs, zt, divergence=divergence, temperature=temperature, support=support, k=k, **kw
    )
    ls, lt = _core_support(zs.numpy(), zt.numpy(), support, k, temperature)
    ref = _core_value(ls, lt, divergence, **kw)
    assert ours.shape == SHAPE[:-1] and ours.dtype == torch.float64
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-10, atol=1e-13)
    # and after masking/reducing: the masked token mean of the reference
    m = _mask()
    loss = reduce_loss(ours, m)
    np.testing.assert_allclose(float(loss), ref[m.numpy()].mean(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("divergence", "kw"), CASES[:8], ids=CASE_IDS[:8])
def test_low_precision_paired_tolerances(dtype, divergence, kw):
    zs, zt = _logits(dtype=dtype)
    ours = token_divergence(zs, zt, divergence=divergence, **kw)
    assert ours.dtype == torch.float32  # half inputs are computed in float32
    # Same (rounded) inputs in float64: only the float32 arithmetic differs.
    rounded = _core_value(
        core.log_softmax(zs.double().numpy()),
        core.log_softmax(zt.double().numpy()),
        divergence,
        **kw,
    )
    tol = tolerance("float32")
    # atol scaled by the size of the sums (123 terms of magnitude up to ~1 each): float32 policy.
    assert_close(ours.numpy(), rounded, rtol=tol["rtol"], atol=50 * tol["atol"])
    # Against the unrounded float64 logits: the input rounding of the dtype dominates.
    z64s, z64t = _logits()
    exact = _core_value(
        core.log_softmax(z64s.numpy()), core.log_softmax(z64t.numpy()), divergence, **kw
    )
    assert_close(
        ours.numpy(),
        exact,
        "float32" if dtype == torch.float32 else "bfloat16",
        atol=None if dtype == torch.bfloat16 else 50 * tol["atol"],
    )


def test_normalized_jsd_is_continuous_at_the_ends():
    """|JSD_b / (b(1-b)) - KL| = O(b): the error shrinks linearly towards both ends (slope 1)."""
    # unit-scale logits: t/s stays below ~e^6, so b = 1e-4 is already in the O(b) regime
    zs, zt = _logits((5, 31), scale=1.0)
    fkl = token_divergence(zs, zt, divergence="forward_kl")
    rkl = token_divergence(zs, zt, divergence="reverse_kl")
    betas = np.array([1e-4, 1e-5, 1e-6, 1e-7])
    for end, kl in ((0.0, fkl), (1.0, rkl)):
        errs = []
        for b in betas:
            beta = b if end == 0.0 else 1.0 - b
            v = token_divergence(zs, zt, divergence="jsd", beta=beta, normalized=True)
            errs.append(float((v - kl).abs().max()))
        slope = np.polyfit(np.log(betas), np.log(errs), 1)[0]
        assert 0.9 < slope < 1.1, (end, errs)
        assert errs[-1] < 1e-5 * float(kl.max())
    raw = token_divergence(zs, zt, divergence="jsd", beta=1e-6)
    torch.testing.assert_close(raw / (1e-6 * (1 - 1e-6)), fkl, rtol=1e-4, atol=0)


@given(z=logits_strategy(k=17, batch=(4,)), data=st.data())
def test_properties_nonnegative_and_supports_ordered(z, data):
    zt = torch.from_numpy(z)
    zs = torch.from_numpy(data.draw(logits_strategy(k=17, batch=(4,))))
    beta = data.draw(st.floats(0.0, 1.0))
    kw = {"divergence": "jsd", "beta": beta}
    full = token_divergence(zs, zt, **kw)
    tail = token_divergence(zs, zt, support="student_topk_tail", k=5, **kw)
    top = token_divergence(zs, zt, support="teacher_topk", k=5, **kw)
    eps = 1e-12
    assert (full >= -eps).all() and (top >= -eps).all() and (tail >= -eps).all()
    # data processing: a coarsening never increases an f-divergence
    assert (tail <= full + eps).all()
    # raw generalised JSD is at most the binary entropy of beta
    h = 0.0 if beta in (0.0, 1.0) else -beta * math.log(beta) - (1 - beta) * math.log1p(-beta)
    assert (full <= h + eps).all()


# ----------------------------------------------------------------------------- direction, limits


def test_direction_is_pinned_with_hard_coded_values():
    p_teacher = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)
    p_student = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    zt, zs = p_teacher.log(), p_student.log()
    # mpmath, 30 digits: sum 0.7 ln(0.7/0.2) + 0.2 ln(0.2/0.3) + 0.1 ln(0.1/0.5)
    forward = 0.63489726508171468313
    # mpmath, 30 digits: sum 0.2 ln(0.2/0.7) + 0.3 ln(0.3/0.2) + 0.5 ln(0.5/0.1)
    reverse = 0.67580589495042590276
    # mpmath, 30 digits: 0.5 KL(t||m) + 0.5 KL(s||m), m = (t + s)/2
    jsd_half = 0.1513581115717952593
    assert float(token_divergence(zs, zt, divergence="forward_kl")) == pytest.approx(forward, 1e-14)
    assert float(token_divergence(zs, zt, divergence="reverse_kl")) == pytest.approx(reverse, 1e-14)
    assert float(token_divergence(zs, zt, divergence="jsd", beta=0.0, normalized=True)) == (
        pytest.approx(forward, 1e-14)
    )
    assert float(token_divergence(zs, zt, divergence="jsd", beta=1.0, normalized=True)) == (
        pytest.approx(reverse, 1e-14)
    )
    assert float(token_divergence(zs, zt, divergence="jsd", beta=0.5)) == pytest.approx(
        jsd_half, 1e-14
    )
    # skew KL with alpha=0 is the forward KL; sampled estimators read (student, teacher)
    assert float(token_divergence(zs, zt, divergence="skew_kl", alpha=0.0)) == pytest.approx(
        forward, 1e-14
    )
    k1 = sampled_token_loss(p_student.log(), p_teacher.log(), estimator="k1")
    assert float((p_student * k1).sum()) == pytest.approx(reverse, 1e-14)  # E_s[k1] = KL(s||t)


@pytest.mark.parametrize(("divergence", "kw"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize(
    ("support", "k"), [("full", None), ("teacher_topk", 7), ("student_topk_tail", 7)]
)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_teacher_equal_student_gives_exact_zero(divergence, kw, support, k, dtype):
    zs, _ = _logits((2, 9, 50), dtype=dtype)
    zs.requires_grad_(True)
    loss = distillation_loss(
        zs,
        zs.detach().clone(),
        torch.ones(2, 9),
        divergence=divergence,
        support=support,
        k=k,
        temperature=1.3,
        **kw,
    )
    loss.backward()
    assert loss.item() == 0.0
    assert (zs.grad == 0).all()


@pytest.mark.parametrize("estimator", ["k2", "k3", "advantage"])
def test_sampled_teacher_equal_student_gives_exact_zero(estimator):
    zs, _ = _logits((2, 9, 50))
    zs.requires_grad_(True)
    tokens = torch.randint(0, 50, (2, 9), generator=torch.Generator().manual_seed(3))
    loss = distillation_loss(
        zs, zs.detach(), torch.ones(2, 9), sampled_tokens=tokens, estimator=estimator
    )
    loss.backward()
    assert loss.item() == 0.0 and (zs.grad == 0).all()


def test_k1_is_zero_but_its_gradient_is_not():
    """k1 vanishes at teacher = student; its per-sample gradient does not (only its mean)."""
    ls = torch.tensor([-0.5, -2.0], dtype=torch.float64, requires_grad=True)
    v = sampled_token_loss(ls, ls.detach(), estimator="k1")
    v.sum().backward()
    assert (v == 0).all() and (ls.grad == 1).all()


def _extreme_logits(rows=3, vocab=151_936, seed=5):
    """(1, rows, vocab) float64 logits over Qwen3's vocabulary with ±1e4 spikes and troughs in
    both, at different places."""
    g = torch.Generator().manual_seed(seed)
    zs = torch.randn(1, rows, vocab, generator=g, dtype=torch.float64)
    zt = torch.randn(1, rows, vocab, generator=g, dtype=torch.float64)
    zs[..., :5] = 1e4
    zt[..., 3:9] = -1e4
    zt[..., 100:103] = 1e4
    zs[..., 200] = -1e4
    return zs, zt


def test_extreme_logits_and_qwen_vocabulary():
    zs, zt = _extreme_logits()
    for divergence, kw in [
        ("forward_kl", {}),
        ("reverse_kl", {}),
        ("jsd", {"beta": 0.5}),
        ("jsd", {"beta": 0.2, "normalized": True}),
        ("skew_kl", {"alpha": 0.1}),
        ("tvd", {}),
    ]:
        ref = _core_value(
            core.log_softmax(zs.numpy()), core.log_softmax(zt.numpy()), divergence, **kw
        )
        for dtype in (torch.float64, torch.float32):
            s = zs.to(dtype).detach().requires_grad_(True)
            v = token_divergence(s, zt.to(dtype), divergence=divergence, **kw)
            v.sum().backward()
            assert torch.isfinite(v).all() and torch.isfinite(s.grad).all()
            rtol = 1e-10 if dtype == torch.float64 else 1e-4
            np.testing.assert_allclose(v.detach().double().numpy(), ref, rtol=rtol)


# ----------------------------------------------------------------------------- masks, reductions


@pytest.mark.parametrize("reduction", ["token_mean", "sequence_mean", "sum"])
def test_masked_positions_never_enter(reduction):
    zs, zt = _logits((3, 11, 20))
    m = _mask((3, 11))
    w = torch.rand(3, 11, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    zs.requires_grad_(True)
    base = distillation_loss(zs, zt, m, divergence="jsd", weights=w, reduction=reduction)
    (g_base,) = torch.autograd.grad(base, zs)
    zs2, zt2, w2 = zs.detach().clone(), zt.clone(), w.clone()
    zs2[~m] = 1e4 * torch.randn(int((~m).sum()), 20, dtype=torch.float64)
    zt2[~m] = float("nan")
    w2[~m] = float("inf")
    zs2.requires_grad_(True)
    other = distillation_loss(zs2, zt2, m, divergence="jsd", weights=w2, reduction=reduction)
    (g_other,) = torch.autograd.grad(other, zs2)
    assert other.item() == base.item()
    assert torch.equal(g_other, g_base)
    assert (g_base[~m] == 0).all()


def test_reductions_by_hand():
    d = torch.tensor([[1.0, 2.0, 4.0, 8.0], [16.0, 32.0, 64.0, 128.0]], dtype=torch.float64)
    m = torch.tensor([[0, 1, 1, 0], [1, 1, 1, 1]])
    wt = torch.tensor([[9.0, 0.5, 2.0, 9.0], [1.0, 1.0, 0.0, 1.0]], dtype=torch.float64)
    ws = torch.tensor([3.0, 0.5], dtype=torch.float64)
    # hand sums: selected values (2, 4) and (16, 32, 64, 128)
    assert reduce_loss(d, m).item() == pytest.approx((2 + 4 + 16 + 32 + 64 + 128) / 6)
    assert reduce_loss(d, m, reduction="sum").item() == pytest.approx(246)
    assert reduce_loss(d, m, reduction="sum", num_items=10).item() == pytest.approx(24.6)
    assert reduce_loss(d, m, reduction="sequence_mean").item() == pytest.approx((3 + 60) / 2)
    assert reduce_loss(d, m, reduction="sequence_mean", num_items=4).item() == pytest.approx(63 / 4)
    assert reduce_loss(d, m, weights=wt).item() == pytest.approx((1 + 8 + 16 + 32 + 128) / 6)
    assert reduce_loss(d, m, weights=ws, reduction="sequence_mean").item() == pytest.approx(
        (3 * 3 + 0.5 * 60) / 2
    )
    # empty mask: zero, and an all-masked sequence is not counted by sequence_mean
    assert reduce_loss(d, torch.zeros(2, 4)).item() == 0.0
    m2 = torch.tensor([[0, 0, 0, 0], [1, 1, 0, 0]])
    assert reduce_loss(d, m2, reduction="sequence_mean").item() == pytest.approx(24.0)


@pytest.mark.parametrize(
    ("reduction", "num_items"), [("sum", "tokens"), ("sequence_mean", "sequences")]
)
def test_gradient_accumulation_equivalence(reduction, num_items):
    """8 sequences x 1 step == 8 micro-batches of 1, with the global normaliser."""
    zs, zt = _logits((8, 13, 29), seed=7)
    m = _mask((8, 13), seed=8)
    w = torch.rand(8, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    n = int(m.sum()) if num_items == "tokens" else 8
    kw = {"divergence": "jsd", "beta": 0.3, "weights": w, "reduction": reduction, "num_items": n}
    big = zs.clone().requires_grad_(True)
    loss_big = distillation_loss(big, zt, m, **kw)
    loss_big.backward()
    small = zs.clone().requires_grad_(True)
    total = 0.0
    for i in range(8):
        kw["weights"] = w[i : i + 1]
        loss_i = distillation_loss(small[i : i + 1], zt[i : i + 1], m[i : i + 1], **kw)
        loss_i.backward()
        total += loss_i.item()
    assert total == pytest.approx(loss_big.item(), rel=1e-12)
    torch.testing.assert_close(small.grad, big.grad, rtol=1e-12, atol=1e-15)


def test_token_mean_over_micro_batches_is_not_the_big_batch_mean():
    """Why num_items exists: per-micro-batch token means weight short sequences up."""
    zs, zt = _logits((8, 13, 29), seed=7)
    m = _mask((8, 13), seed=8)
    big = distillation_loss(zs, zt, m).item()
    acc = sum(
        distillation_loss(zs[i : i + 1], zt[i : i + 1], m[i : i + 1]).item() for i in range(8)
    )
    assert abs(acc / 8 - big) > 1e-4 * big


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize(("divergence", "kw"), CASES, ids=CASE_IDS)
def test_closed_form_logit_gradient_matches_autograd(divergence, kw):
    zs, zt = _logits((6, 37), seed=4)
    spec = DivergenceSpec(divergence=divergence, temperature=0.8, **kw)
    value, grad = spec.value_and_logit_grad(zs, zt)
    z = zs.clone().requires_grad_(True)
    ref = token_divergence(z, zt, divergence=divergence, temperature=0.8, **kw)
    (ref_grad,) = torch.autograd.grad(ref.sum(), z)
    torch.testing.assert_close(value, ref.detach(), rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-10, atol=1e-14)


GRADCHECK = [(d, kw, "full") for d, kw in CASES if d != "tvd"] + [
    (d, kw, support)
    for support in ("teacher_topk", "student_topk_tail")
    for d, kw in [("reverse_kl", {}), ("jsd", {"beta": 0.3, "normalized": True})]
]


@pytest.mark.parametrize(("divergence", "kw", "support"), GRADCHECK)
def test_gradcheck_plain_autograd(divergence, kw, support):
    """Autograd of the plain version against finite differences (TVD has kinks: excluded)."""
    zs, zt = _logits((2, 7), seed=11)
    k = None if support == "full" else 3
    zs.requires_grad_(True)
    zt.requires_grad_(True)

    def f(a, b):
        return token_divergence(a, b, divergence=divergence, support=support, k=k, **kw)

    assert torch.autograd.gradcheck(f, (zs, zt), eps=1e-6, atol=1e-7, rtol=1e-5, fast_mode=True)


@pytest.mark.parametrize("estimator", ["k1", "k2", "k3", "advantage"])
def test_sampled_estimators_match_core_and_expected_gradients(estimator):
    """Values against sdtheory.core; E_{y~s} of the gradient by exact enumeration of y."""
    zs, zt = _logits((4, 10), seed=12)
    zs.requires_grad_(True)
    ls = torch.log_softmax(zs, -1)
    lt = torch.log_softmax(zt, -1)
    values = sampled_token_loss(ls, lt, estimator=estimator)  # every y at once: (4, 10)
    if estimator != "advantage":
        ref = getattr(core, estimator)(ls.detach().numpy(), lt.numpy())
        np.testing.assert_allclose(values.detach().numpy(), ref, rtol=1e-13, atol=1e-15)
    s = ls.detach().exp()
    (grad,) = torch.autograd.grad((s * values).sum(), zs)  # sum_y s(y) grad loss(y)
    z = zs.detach().clone().requires_grad_(True)
    if estimator == "k1":
        expected = torch.zeros_like(z)
    else:
        div = "forward_kl" if estimator == "k3" else "reverse_kl"
        (expected,) = torch.autograd.grad(token_divergence(z, zt, divergence=div).sum(), z)
    torch.testing.assert_close(grad, expected, rtol=1e-10, atol=1e-13)
    if estimator in ("k1", "k3"):  # unbiased: E_s[value] = KL(s||t)
        kl = token_divergence(zs.detach(), zt, divergence="reverse_kl")
        torch.testing.assert_close((s * values.detach()).sum(-1), kl, rtol=1e-12, atol=1e-14)


def test_distillation_loss_with_estimator_gathers_sampled_tokens():
    zs, zt = _logits((3, 5, 17), seed=13)
    tokens = torch.randint(0, 17, (3, 5), generator=torch.Generator().manual_seed(0))
    m = _mask((3, 5))
    loss = distillation_loss(zs, zt, m, sampled_tokens=tokens, estimator="k3", temperature=2.0)
    ls = torch.log_softmax(zs / 2, -1).gather(-1, tokens[..., None])[..., 0]
    lt = torch.log_softmax(zt / 2, -1).gather(-1, tokens[..., None])[..., 0]
    r = (lt - ls)[m]
    assert loss.item() == pytest.approx(float((torch.expm1(r) - r).mean()), rel=1e-13)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"divergence": "kl"}, "divergence"),
        ({"beta": 1.5}, "beta"),
        ({"beta": -0.1}, "beta"),
        ({"alpha": 2.0}, "alpha"),
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": float("inf")}, "temperature"),
        ({"support": "topk"}, "support"),
        ({"support": "teacher_topk"}, "k"),
        ({"support": "teacher_topk", "k": 0}, "k"),
        ({"support": "teacher_topk", "k": 21}, "k"),
        ({"support": "student_topk_tail", "k": 20}, "k"),
        ({"k": 3}, "k"),
        ({"normalized": "yes"}, "normalized"),
    ],
)
def test_bad_divergence_arguments_raise(kwargs, name):
    zs, zt = _logits((2, 20))
    with pytest.raises(ValueError, match=name):
        token_divergence(zs, zt, **kwargs)


def test_bad_tensors_raise():
    zs, zt = _logits((2, 3, 20))
    m = torch.ones(2, 3)
    with pytest.raises(ValueError, match="teacher_logits"):
        token_divergence(zs, zt[..., :-1])
    with pytest.raises(ValueError, match="student_logits"):
        token_divergence(zs.long(), zt)
    with pytest.raises(ValueError, match="mask"):
        distillation_loss(zs, zt, torch.ones(3, 2))
    with pytest.raises(ValueError, match="weights"):
        distillation_loss(zs, zt, m, weights=torch.ones(3))
    with pytest.raises(ValueError, match="reduction"):
        distillation_loss(zs, zt, m, reduction="mean")
    with pytest.raises(ValueError, match="num_items"):
        distillation_loss(zs, zt, m, num_items=5)  # token_mean takes no num_items
    with pytest.raises(ValueError, match="num_items"):
        distillation_loss(zs, zt, m, reduction="sum", num_items=0)
    with pytest.raises(ValueError, match="estimator"):
        distillation_loss(
            zs, zt, m, sampled_tokens=torch.zeros(2, 3, dtype=torch.long), estimator="k4"
        )
    with pytest.raises(ValueError, match="sampled_tokens"):
        distillation_loss(zs, zt, m, estimator="k3")
    with pytest.raises(ValueError, match="sampled_tokens"):
        distillation_loss(zs, zt, m, sampled_tokens=torch.full((2, 3), 20), estimator="k3")
    with pytest.raises(ValueError, match="sampled_tokens"):
        distillation_loss(zs, zt, m, sampled_tokens=torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="beta"):
        distillation_loss(
            zs, zt, m, sampled_tokens=torch.zeros(2, 3, dtype=torch.long), estimator="k3", beta=0.5
        )
    with pytest.raises(ValueError, match="teacher_logprobs"):
        sampled_token_loss(zs[..., 0], zt[..., :2, 0])


def test_divergences_constant_is_complete():
    assert set(DIVERGENCES) == {c[0] for c in CASES}


@pytest.mark.parametrize(
    "kw",
    [
        {"divergence": "jsd"},
        {"divergence": "reverse_kl", "support": "teacher_topk", "k": 4},
        {"divergence": "forward_kl", "support": "student_topk_tail", "k": 4},
        {"estimator": "k3", "sampled_tokens": torch.zeros(2, 5, dtype=torch.long)},
    ],
)
def test_empty_mask_gives_zero_and_a_graph(kw):
    zs, zt = _logits((2, 5, 9))
    zs.requires_grad_(True)
    loss = distillation_loss(zs, zt, torch.zeros(2, 5, dtype=torch.bool), **kw)
    loss.backward()
    assert loss.item() == 0.0 and (zs.grad == 0).all()


@pytest.mark.parametrize("beta", [1e-300, 1e-20, 1e-5, 1 - 1e-12])
def test_jsd_tiny_beta_matches_core_when_student_is_near_zero(beta):
    # Regression: log1p(w * expm1(-d)) rounded to log(0) when e^-d < eps and w ~ 0, giving inf.
    # Reference: sdtheory.core.generalized_jsd (logaddexp mixture) on the same inputs.
    zt = torch.zeros(2, 17, dtype=torch.float64)
    zs = zt.clone()
    zs[0, 0], zs[0, 1] = 15.0, -25.0
    zs[1, 3] = -60.0
    lt = core.log_softmax(zt.numpy())
    ls = core.log_softmax(zs.numpy())
    for normalized in (False, True):
        ours = token_divergence(zs, zt, divergence="jsd", beta=beta, normalized=normalized)
        ref = core.generalized_jsd(lt, ls, beta, normalized=normalized)
        assert torch.isfinite(ours).all()
        np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-9, atol=0)
