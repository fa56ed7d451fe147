"""Tests for `sdtheory.lm.methods.taid.taid_loss`: value, gradient, dtypes, masks, official parity."""

import numpy as np
import pytest

from sdtheory.core import kl, log_softmax
from sdtheory.theory import taid as np_taid

torch = pytest.importorskip("torch")
from sdtheory.lm.methods.taid import interpolated_log_probs, taid_loss  # noqa: E402


def _pair(shape=(3, 5, 11), scale=3.0, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    s = (scale * torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype)
    p = (scale * torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype)
    return s.requires_grad_(True), p


def _explicit_kl(s, p, t, mask):
    """KL(p_t || q) written out, with the target detached, for autograd."""
    p_t = torch.softmax((1 - t) * s.detach() + t * p, dim=-1)
    per = (p_t * (torch.log(p_t) - torch.log_softmax(s, dim=-1))).sum(-1)
    m = mask.to(per.dtype)
    return (per * m).sum() / m.sum()


def _mask(shape, seed=1):
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(shape, generator=g) > 0.4
    m.view(-1)[0] = True
    return m


@pytest.mark.claim("taid.loss-ends")
def test_t1_is_forward_kl_from_teacher_and_t0_is_zero():
    s, p = _pair()
    mask = _mask(s.shape[:-1])
    fkl = kl(log_softmax(p.numpy()), log_softmax(s.detach().numpy()))  # core, float64
    want = fkl[mask.numpy()].mean()
    got = taid_loss(s, p, 1.0, mask)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.item(), want, rtol=1e-12)
    zero = taid_loss(s, p, 0.0, mask)
    assert zero.item() == 0.0
    zero.backward()
    assert s.grad.abs().max() < 1e-15  # q - p_t with p_t = q, up to float64 rounding


@pytest.mark.claim("taid.loss-gradient")
@pytest.mark.parametrize("t", [0.0, 0.3, 0.77, 1.0])
def test_gradient_equals_autograd_of_detached_kl_and_cross_entropy(t):
    s, p = _pair(seed=2)
    mask = _mask(s.shape[:-1], seed=3)
    (g_ours,) = torch.autograd.grad(taid_loss(s, p, t, mask), s)
    (g_ref,) = torch.autograd.grad(_explicit_kl(s, p, t, mask), s)
    (g_ce,) = torch.autograd.grad(taid_loss(s, p, t, mask, value="cross_entropy"), s)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(g_ce, g_ref, rtol=1e-12, atol=1e-14)
    # and the closed form (q - p_t) * mask / |mask|
    q = torch.softmax(s.detach(), -1)
    p_t = torch.softmax((1 - t) * s.detach() + t * p, -1)
    closed = (q - p_t) * mask[..., None] / mask.sum()
    torch.testing.assert_close(g_ours, closed, rtol=1e-10, atol=1e-14)
    if 0 < t:
        assert g_ours.abs().max() > 1e-3  # the check is not vacuous


def test_matches_numpy_objective_per_row():
    s, p = _pair(shape=(4, 13), seed=5)
    want = np_taid.interpolated_kl(s.detach().numpy(), p.numpy(), 0.45)
    for i in range(4):
        one = torch.zeros(4, dtype=torch.bool)
        one[i] = True
        np.testing.assert_allclose(taid_loss(s, p, 0.45, one).item(), want[i], rtol=1e-12)
    np.testing.assert_allclose(taid_loss(s, p, 0.45).item(), want.mean(), rtol=1e-12)
    lp = interpolated_log_probs(s, p, 0.45)
    np.testing.assert_allclose(
        lp.numpy(),
        np_taid.interpolated_log_probs(s.detach().numpy(), p.numpy(), 0.45),
        rtol=1e-12,
        atol=1e-12,
    )
    assert not lp.requires_grad


def test_cross_entropy_value_is_kl_plus_target_entropy():
    s, p = _pair(seed=7)
    t = 0.6
    log_pt = np_taid.interpolated_log_probs(s.detach().numpy(), p.numpy(), t)
    h = -(np.exp(log_pt) * log_pt).sum(-1).mean()
    diff = taid_loss(s, p, t, value="cross_entropy") - taid_loss(s, p, t)
    np.testing.assert_allclose(diff.item(), h, rtol=1e-12)


def _official_loss(logits, teacher_logits, t, mask):
    """Transcription of the logic of the official `TAID.compute_loss` + `forward_kl`
    (SakanaAI/TAID a062892, src/distil_losses/taid.py, fkl.py)."""
    p_t = torch.softmax((1 - t) * logits.detach() + t * teacher_logits, -1, dtype=torch.float32)
    logq = torch.log_softmax(logits, -1, dtype=torch.float32)
    prod = torch.masked_fill(p_t * logq, torch.isinf(logits), 0)
    x = prod.sum(-1).view(-1)
    return -(x * mask.view(-1)).sum(0) / mask.view(-1).sum(0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cross_entropy_value_matches_official_loss(dtype):
    s, p = _pair(shape=(2, 6, 64), dtype=dtype, seed=11)
    mask = _mask(s.shape[:-1], seed=12)
    t = 0.4
    ours = taid_loss(s, p, t, mask, value="cross_entropy")
    off = _official_loss(s, p, t, mask)
    assert ours.dtype == torch.float32  # softmaxes in float32 for low-precision inputs
    (g1,) = torch.autograd.grad(ours, s)
    (g2,) = torch.autograd.grad(off, s)
    # float32 accumulation over 64 entries; the mix (1-t)s + t p is formed in float32 here and
    # in the input dtype there, which for bf16 differs by bf16 rounding of the mix
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(ours, off, **tol)
    torch.testing.assert_close(g1.float(), g2.float(), **tol)


def test_low_precision_inputs_agree_with_float64_on_the_same_values():
    s, p = _pair(shape=(3, 50), dtype=torch.bfloat16, seed=13)
    got = taid_loss(s, p, 0.5)
    ref = taid_loss(s.detach().double(), p.double(), 0.5)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), ref, rtol=5e-6, atol=1e-6)  # float32 softmax


def test_masked_vocabulary_and_extreme_logits_stay_finite():
    s, p = _pair(shape=(2, 9), seed=17, scale=1e4)
    s = s.detach().clone()
    s[:, 3] = -torch.inf
    s.requires_grad_(True)
    for t in (0.0, 0.5, 0.99):
        loss = taid_loss(s, p, t)
        (g,) = torch.autograd.grad(loss, s)
        assert torch.isfinite(loss) and torch.isfinite(g).all()
        assert (g[:, 3] == 0).all()


def test_empty_positions_do_not_count():
    s, p = _pair(shape=(2, 4, 7), seed=19)
    mask = torch.tensor([[1, 1, 0, 0], [0, 1, 0, 1]], dtype=torch.float64)
    # garbage at masked positions must not change the value
    s2 = s.detach().clone()
    s2[0, 2] = 1e3
    s2[1, 0] = -1e3
    a = taid_loss(s, p, 0.7, mask)
    b = taid_loss(s2, p, 0.7, mask)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(t=1.5), "t"),
        (dict(t=-0.1), "t"),
        (dict(t=float("nan")), "t"),
        (dict(mask=torch.ones(3, 4)), "mask"),
        (dict(mask=torch.zeros(3, 5)), "mask"),
        (dict(value="rkl"), "value"),
    ],
)
def test_bad_input_raises_naming_the_argument(kwargs, name):
    s, p = _pair()
    args = dict(t=0.5, mask=None) | kwargs
    with pytest.raises(ValueError, match=name):
        taid_loss(s, p, args.pop("t"), args.pop("mask"), **args)


def test_bad_logits_raise():
    s, p = _pair()
    with pytest.raises(ValueError, match="teacher_logits"):
        taid_loss(s, p[..., :-1], 0.5)
    with pytest.raises(ValueError, match="student_logits"):
        taid_loss(torch.ones(3, 4, dtype=torch.long), torch.ones(3, 4), 0.5)
