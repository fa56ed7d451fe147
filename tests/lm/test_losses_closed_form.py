"""The plain path's closed-form autograd function against independent references.

`distillation_loss` and `token_divergence` evaluate full-support divergences with the closed forms
of `sdtheory.lm.losses._closed_form` inside a custom `torch.autograd.Function`. References:
autograd of `DivergenceSpec.from_log_probs` (the generalised term-by-term formula, which the top-k
supports and a teacher that needs a gradient still use), finite differences
(`torch.autograd.gradcheck`), mpmath at 50 digits, and TRL's `generalized_jsd_loss` restated from
its published formula.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sdtheory.lm.losses import (  # noqa: E402
    DivergenceSpec,
    distillation_loss,
    reduce_loss,
    token_divergence,
)
from sdtheory.testing.asserts import tolerance  # noqa: E402
from tests.lm.test_losses import SHAPE, _extreme_logits, _logits, _mask  # noqa: E402

BETAS = (0.0, 1e-12, 0.3, 0.5, 1.0)
CASES = (
    [("forward_kl", {}), ("reverse_kl", {}), ("tvd", {})]
    + [("jsd", {"beta": b, "normalized": n}) for b in BETAS for n in (False, True)]
    + [("jsd", {"beta": b}) for b in (0.1, 0.9, 1 - 1e-12)]  # the general mixture branch
    + [("skew_kl", {"alpha": a}) for a in (*BETAS, 0.9)]
)
IDS = [f"{d}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for d, kw in CASES]
TAU = 0.7


def _reference_loss(zs, zt, mask, *, weights=None, reduction="token_mean", **kw):
    """Autograd of the reference formula: log_probs + from_log_probs, then `reduce_loss`."""
    spec = DivergenceSpec(**kw)
    ls, lt = spec.log_probs(zs, zt)
    return reduce_loss(spec.from_log_probs(ls, lt), mask, weights=weights, reduction=reduction)


def _loss_and_grads(fn, zs, zt, mask, weights, **kw):
    a = zs.clone().requires_grad_(True)
    w = weights.clone().requires_grad_(True)
    loss = fn(a, zt, mask, weights=w, **kw)
    ga, gw = torch.autograd.grad(loss, (a, w))
    return loss.detach(), ga, gw


def _values_fn(zt, divergence, kw):
    """Per-token values as a function of the student logits (teacher fixed, temperature TAU)."""

    def f(z):
        return token_divergence(z, zt, divergence=divergence, temperature=TAU, **kw)

    return f


def _uses_closed_form(values) -> bool:
    """Whether the graph of `values` starts with the closed-form autograd function."""
    fn = values.grad_fn
    while fn is not None and "View" in fn.name():
        fn = fn.next_functions[0][0]
    return fn is not None and "FullVocabDivergence" in fn.name()


def _close(x, ref, rtol=1e-10):
    """Elementwise `rtol`, plus `rtol` times the largest reference entry as the absolute floor."""
    torch.testing.assert_close(x, ref, rtol=rtol, atol=rtol * float(ref.abs().max()))


# ----------------------------------------------------------------------------- float64 equality


def test_the_closed_form_function_is_the_path_under_test():
    zs, zt = _logits((2, 5, 11))
    zs.requires_grad_(True)
    assert _uses_closed_form(token_divergence(zs, zt, divergence="jsd"))
    for kw in ({"support": "teacher_topk", "k": 3}, {"support": "student_topk_tail", "k": 3}):
        # top-k supports: autograd of the reference formula
        assert not _uses_closed_form(token_divergence(zs, zt, divergence="jsd", **kw))
    teacher = zt.clone().requires_grad_(True)  # a teacher that needs a gradient: the reference
    assert not _uses_closed_form(token_divergence(zs, teacher, divergence="jsd"))


@pytest.mark.parametrize(("divergence", "kw"), CASES, ids=IDS)
@pytest.mark.parametrize("reduction", ["token_mean", "sequence_mean", "sum"])
def test_plain_equals_autograd_of_the_reference_float64(divergence, kw, reduction):
    zs, zt = _logits()
    m = _mask()
    w = 0.5 + torch.rand(SHAPE[0], generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    args = {"divergence": divergence, "temperature": TAU, "reduction": reduction, **kw}
    ours = _loss_and_grads(distillation_loss, zs, zt, m, w, **args)
    ref = _loss_and_grads(_reference_loss, zs, zt, m, w, **args)
    for x, y in zip(ours, ref, strict=True):
        _close(x, y)
    assert (ours[1][~m] == 0).all()  # prompt and padding positions get exactly nothing


@pytest.mark.parametrize(("divergence", "kw"), [c for c in CASES if c[0] != "tvd"])
def test_gradcheck_of_the_closed_form_function(divergence, kw):
    """Finite differences of the per-token values (the full Jacobian); TVD has kinks: excluded."""
    zs, zt = _logits((2, 3, 7), seed=11)
    zs.requires_grad_(True)
    f = _values_fn(zt, divergence, kw)
    assert _uses_closed_form(f(zs))
    assert torch.autograd.gradcheck(f, (zs,), eps=1e-6, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize(
    ("beta", "normalized"),
    [(b, n) for b in (1e-300, 1e-12, 0.3, 1 - 1e-12) for n in (False, True)],
)
def test_jsd_value_and_gradient_match_mpmath(beta, normalized):
    """50-digit value and numerical derivative (mpmath.diff) of the generalised JSD.

    Includes a student spike and near-zero entries, where the mixture offsets need their far
    branches and where autograd of the reference formula loses relative accuracy at tiny beta.
    """
    mp = pytest.importorskip("mpmath")
    zs, zt = _logits((2, 9), seed=7, scale=1.0)
    zs[0, 0], zs[0, 1], zs[1, 3] = 15.0, -25.0, -60.0
    mp.mp.dps = 50
    b = mp.mpf(beta)

    def jsd(z_s, z_t):
        def probs(z):
            e = [mp.exp(mp.mpf(x) / TAU) for x in z]
            tot = mp.fsum(e)
            return [x / tot for x in e]

        s, t = probs(z_s), probs(z_t)
        m = [b * ti + (1 - b) * si for si, ti in zip(s, t, strict=True)]
        terms = [
            b * ti * mp.log(ti / mi) + (1 - b) * si * mp.log(si / mi)
            for si, ti, mi in zip(s, t, m, strict=True)
        ]
        value = mp.fsum(terms)
        return value / (b * (1 - b)) if normalized else value

    value_ref, grad_ref = [], []
    for row in range(2):
        z_s, z_t = [mp.mpf(float(x)) for x in zs[row]], [float(x) for x in zt[row]]
        value_ref.append(float(jsd(z_s, z_t)))

        def partial(j, z_s=z_s, z_t=z_t):
            return lambda value: jsd([*z_s[:j], value, *z_s[j + 1 :]], z_t)

        grad_ref.append([float(mp.diff(partial(j), z_s[j])) for j in range(9)])
    z = zs.clone().requires_grad_(True)
    ours = token_divergence(
        z, zt, divergence="jsd", beta=beta, normalized=normalized, temperature=TAU
    )
    (grad,) = torch.autograd.grad(ours.sum(), z)
    _close(ours.detach(), torch.tensor(value_ref, dtype=torch.float64), rtol=1e-9)
    _close(grad, torch.tensor(grad_ref, dtype=torch.float64), rtol=1e-9)


# ----------------------------------------------------------------------------- independent reference


def _trl_generalized_jsd(student_logits, teacher_logits, labels, beta, temperature, reduction):
    """TRL `GKDTrainer.generalized_jsd_loss`, restated from its formula.

    Source: `huggingface/trl@f2cd57710ae345ea6428ae95363267fcf38a3dc8:trl/experimental/gkd/
    gkd_trainer.py`. Elementwise over the vocabulary: beta = 0 gives t (log t - log s) (forward
    KL), beta = 1 gives s (log s - log t) (reverse KL), otherwise
    beta t (log t - log m) + (1 - beta) s (log s - log m) with log m = logsumexp of
    (log s + log(1 - beta), log t + log(beta)). Positions with label -100 are dropped;
    "batchmean" divides the sum by the number of kept positions (by the batch size without
    labels), "sum" sums, "mean" averages over positions *and* vocabulary entries.
    """
    ls = torch.log_softmax(student_logits / temperature, dim=-1)
    lt = torch.log_softmax(teacher_logits / temperature, dim=-1)
    if beta == 0:
        jsd = lt.exp() * (lt - ls)
    elif beta == 1:
        jsd = ls.exp() * (ls - lt)
    else:
        lw = torch.tensor([math.log1p(-beta), math.log(beta)], dtype=ls.dtype)
        lm = torch.logsumexp(torch.stack([ls + lw[0], lt + lw[1]]), dim=0)
        jsd = beta * lt.exp() * (lt - lm) + (1 - beta) * ls.exp() * (ls - lm)
    if labels is not None:
        keep = labels != -100
        jsd = jsd[keep]
    if reduction == "batchmean":
        return jsd.sum() / (keep.sum() if labels is not None else jsd.size(0))
    if reduction == "sum":
        return jsd.sum()
    return jsd.mean()


@pytest.mark.parametrize("beta", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize(
    ("trl_reduction", "with_labels"),
    [("batchmean", True), ("batchmean", False), ("sum", True), ("mean", True)],
)
def test_matches_trl_generalized_jsd_formula(beta, trl_reduction, with_labels):
    zs, zt = _logits()
    m = _mask() if with_labels else torch.ones(SHAPE[:-1], dtype=torch.bool)
    labels = torch.where(m, 7, -100) if with_labels else None
    # TRL's ends are the un-scaled KLs: our normalised JSD there, our raw JSD inside (0, 1)
    kw = {"divergence": "jsd", "beta": beta, "normalized": beta in (0.0, 1.0), "temperature": TAU}
    if trl_reduction == "batchmean" and not with_labels:
        kw.update(reduction="sum", num_items=SHAPE[0])  # sum / B
    elif trl_reduction == "sum":
        kw.update(reduction="sum")
    factor = 1.0 / SHAPE[-1] if trl_reduction == "mean" else 1.0  # TRL's mean divides by V too
    a = zs.clone().requires_grad_(True)
    ours = distillation_loss(a, zt, m, **kw) * factor
    (g_ours,) = torch.autograd.grad(ours, a)
    b = zs.clone().requires_grad_(True)
    ref = _trl_generalized_jsd(b, zt, labels, beta, TAU, trl_reduction)
    (g_ref,) = torch.autograd.grad(ref, b)
    _close(ours.detach(), ref.detach())
    _close(g_ours, g_ref)


# ----------------------------------------------------------------------------- low precision


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("divergence", "kw"), CASES, ids=IDS)
def test_low_precision_paired_with_float64_on_the_same_inputs(dtype, divergence, kw):
    """Inputs rounded to the dtype, then the same inputs in float64: only the arithmetic differs.

    Both dtypes are computed in float32 (the float32 `rtol` of `sdtheory.testing.asserts`, with
    the gradient's absolute floor relative to its largest entry); a bfloat16 gradient is
    additionally rounded to 8 significant bits.
    """
    zs, zt = _logits(dtype=dtype)
    m = _mask()
    w = torch.ones(SHAPE[0], dtype=dtype)
    args = {"divergence": divergence, "temperature": TAU, **kw}
    loss, grad, _ = _loss_and_grads(distillation_loss, zs, zt, m, w, **args)
    assert loss.dtype == torch.float32 and grad.dtype == dtype
    ref_loss, ref_grad, _ = _loss_and_grads(
        _reference_loss, zs.double(), zt.double(), m, w.double(), **args
    )
    tol = tolerance("float32")
    scale = float(ref_grad.abs().max())
    torch.testing.assert_close(loss.double(), ref_loss, rtol=tol["rtol"], atol=0.0)
    rtol = tol["rtol"] if dtype == torch.float32 else 2.0**-7  # bf16 keeps 8 significant bits
    torch.testing.assert_close(grad.double(), ref_grad, rtol=rtol, atol=rtol * scale)


# ----------------------------------------------------------------------------- guarantees kept


@pytest.mark.parametrize(("divergence", "kw"), CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_teacher_equal_student_gives_exact_zero(divergence, kw, dtype):
    zs, _ = _logits((2, 9, 50), dtype=dtype)
    zs.requires_grad_(True)
    loss = distillation_loss(
        zs, zs.detach().clone(), torch.ones(2, 9), divergence=divergence, temperature=1.3, **kw
    )
    loss.backward()
    assert loss.item() == 0.0
    assert (zs.grad == 0).all()


@pytest.mark.parametrize(
    ("divergence", "kw"),
    [c for c in CASES if c[0] != "tvd"],
    ids=[i for i, c in zip(IDS, CASES, strict=True) if c[0] != "tvd"],
)
def test_near_equal_distributions_keep_relative_accuracy(divergence, kw):
    """A student within 1e-7 (float64) or 1e-4 (float32) of its teacher: divergences near 1e-15 or
    1e-9, which the rounding offsets of the two log-normalisers must not swamp.

    float64: the reference formula (generalised terms) is accurate to ~1e-8 here, and so must we
    be. float32: no worse than the reference formula evaluated in float32 (median relative error
    against float64), and never negative by more than rounding.
    """
    g = torch.Generator().manual_seed(8)
    zs = 3 * torch.randn(400, 200, generator=g, dtype=torch.float64)
    spec = DivergenceSpec(divergence, **kw)
    for eps, dtype in ((1e-7, torch.float64), (1e-4, torch.float32)):
        zt = zs + eps * torch.randn(zs.shape, generator=g, dtype=torch.float64)
        ref = spec.from_log_probs(*spec.log_probs(zs, zt))
        if float(ref.abs().max()) == 0.0:  # the raw JSD and the skew KL at alpha = 1 vanish
            continue
        ours = token_divergence(zs.to(dtype), zt.to(dtype), divergence=divergence, **kw).double()
        if dtype == torch.float64:
            torch.testing.assert_close(ours, ref, rtol=1e-6, atol=0.0)
        else:
            ref32 = spec.from_log_probs(*spec.log_probs(zs.float(), zt.float())).double()
            err, err_ref = ((ours - ref) / ref).abs(), ((ref32 - ref) / ref).abs()
            assert float(err.median()) <= 2 * float(err_ref.median()), (
                err.median(),
                err_ref.median(),
            )
            assert float(ours.min()) >= -1e-6 * float(ref.max())


def test_normalized_jsd_gradient_is_continuous_at_the_ends():
    """|grad JSD_b / (b(1-b)) - grad KL| = O(b) at both ends (log-log slope 1)."""
    zs, zt = _logits((5, 31), scale=1.0)

    def grad(**kw):
        z = zs.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(token_divergence(z, zt, **kw).sum(), z)
        return g

    betas = np.array([1e-4, 1e-5, 1e-6, 1e-7])
    for end, kl in ((0.0, "forward_kl"), (1.0, "reverse_kl")):
        ref = grad(divergence=kl)
        errs = []
        for b in betas:
            beta = b if end == 0.0 else 1.0 - b
            g = grad(divergence="jsd", beta=beta, normalized=True)
            errs.append(float((g - ref).abs().max()))
        slope = np.polyfit(np.log(betas), np.log(errs), 1)[0]
        assert 0.9 < slope < 1.1, (end, errs)


def test_extreme_logits_qwen_vocabulary_every_divergence():
    """Logits of +-1e4 over 151,936 tokens: finite, and equal to autograd of the reference."""
    zs, zt = _extreme_logits(rows=2)
    m = torch.ones(1, 2, dtype=torch.bool)
    w = torch.ones(1, dtype=torch.float64)
    for divergence, kw in [c for c in CASES if c[1].get("beta", 0.5) in (0.0, 0.3, 1.0)]:
        args = {"divergence": divergence, **kw}
        ours = _loss_and_grads(distillation_loss, zs, zt, m, w, **args)
        ref = _loss_and_grads(_reference_loss, zs, zt, m, w, **args)
        assert all(torch.isfinite(x).all() for x in ours), args
        for x, y in zip(ours, ref, strict=True):
            # disjoint spikes saturate the JSD: its gradient is then rounding noise near 1e-18
            torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-15)
        loss32, grad32, _ = _loss_and_grads(distillation_loss, zs.float(), zt.float(), m, w, **args)
        assert torch.isfinite(loss32) and torch.isfinite(grad32).all(), args
        # float32 logits of 1e4 carry an absolute rounding of 1e4 * 2**-24 = 6e-4
        torch.testing.assert_close(grad32.double(), ours[1], rtol=1e-3, atol=1e-3)


def test_no_grad_values_equal_and_teacher_gradient_falls_back():
    zs, zt = _logits((2, 6, 29))
    kw = {"divergence": "jsd", "beta": 0.3, "normalized": True, "temperature": TAU}
    z = zs.clone().requires_grad_(True)
    with_grad = token_divergence(z, zt, **kw)
    with torch.no_grad():
        assert torch.equal(token_divergence(z, zt, **kw), with_grad.detach())
    assert torch.equal(token_divergence(zs, zt, **kw), with_grad.detach())
    (g_fast,) = torch.autograd.grad(with_grad.sum(), z)
    # a teacher that requires a gradient gets one (autograd of the reference formula)
    a, b = zs.clone().requires_grad_(True), zt.clone().requires_grad_(True)
    g_s, g_t = torch.autograd.grad(token_divergence(a, b, **kw).sum(), (a, b))
    _close(g_s, g_fast)
    ref_t = torch.autograd.grad(_reference_loss(zs, b, torch.ones(2, 6), reduction="sum", **kw), b)[
        0
    ]
    _close(g_t, ref_t)


def test_backward_twice_with_retain_graph():
    zs, zt = _logits((2, 4, 13))
    z = zs.clone().requires_grad_(True)
    loss = distillation_loss(z, zt, torch.ones(2, 4), divergence="jsd")
    loss.backward(retain_graph=True)
    first = z.grad.clone()
    loss.backward()  # the stored gradient is not consumed by the first backward
    torch.testing.assert_close(z.grad, 2 * first, rtol=1e-15, atol=0)


@pytest.mark.parametrize(
    ("divergence", "kw"), [("forward_kl", {}), ("jsd", {"beta": 0.3}), ("skew_kl", {"alpha": 0.2})]
)
def test_second_derivatives_are_those_of_autograd(divergence, kw):
    """create_graph=True differentiates the reference formula: gradgradcheck and an HVP."""
    zs, zt = _logits((2, 3, 5), seed=13)
    zs.requires_grad_(True)
    f = _values_fn(zt, divergence, kw)
    assert _uses_closed_form(f(zs))
    assert torch.autograd.gradgradcheck(f, (zs,), eps=1e-6, atol=1e-8, rtol=1e-6)
    v = torch.randn(zs.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    m = torch.ones(2, 3, dtype=torch.bool)
    hvps = []
    for fn in (distillation_loss, _reference_loss):
        (g,) = torch.autograd.grad(
            fn(zs, zt, m, divergence=divergence, **kw), zs, create_graph=True
        )
        hvps.append(torch.autograd.grad((g * v).sum(), zs)[0])
    _close(*hvps)
