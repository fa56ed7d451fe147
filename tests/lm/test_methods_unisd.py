"""UniSD on hand-made inputs: agreement weights, clipping as weights, the whole loss recomputed
from logits, and the EMA teacher schedule."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")
pytest.importorskip("reasoning_gym")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sdtheory.lm.losses import token_divergence  # noqa: E402
from sdtheory.lm.methods.unisd import agreement_weights, clip_keep  # noqa: E402
from sdtheory.lm.tasks import make_task  # noqa: E402
from sdtheory.lm.teachers import view_messages  # noqa: E402
from sdtheory.lm.trainers import TrainConfig, Trainer  # noqa: E402
from tests.lm._tiny import tiny  # noqa: E402

FAST = tiny(lr=1e-2)


@pytest.mark.claim("methods.unisd-agreement-weights")
def test_token_agreement_hand_values():
    # two views; (l1 - l2)^2 / 2 = unbiased variance: d = (0, 2, 8, 0.5, 50) for gaps (0, 2, 4, 1, 10)
    l1 = torch.tensor([[-1.0, -1.0, -1.0, -1.0, -1.0]])
    l2 = l1 - torch.tensor([[0.0, 2.0, 4.0, 1.0, 10.0]])
    mask = torch.tensor([[True, True, True, True, False]])  # the last token is off the mask
    w, d = agreement_weights(torch.stack([l1, l2]), mask, gamma=2.0)
    assert d[0].tolist() == [0.0, 2.0, 8.0, 0.5, 50.0]
    q = np.quantile([0.0, 2.0, 8.0, 0.5], 0.95)  # over the masked tokens only: 7.1
    assert math.isclose(q, 7.1)
    want = [1 / (1 + 2 * min(x / q, 10.0)) for x in [0.0, 2.0, 8.0, 0.5, 50.0]]
    assert np.allclose(w[0].numpy(), want, rtol=1e-12)  # 50 / 7.1 > 10: capped at 10
    w_big, _ = agreement_weights(torch.stack([l1, l2]), mask, gamma=1000.0)
    assert w_big[0, 2] == 0.01 and w_big[0, 0] == 1.0  # the floor


@pytest.mark.claim("methods.unisd-agreement-weights")
def test_sequence_agreement_hand_values():
    lp = torch.tensor([[[-1.0, -3.0, 9.0]], [[-2.0, -2.0, 9.0]], [[0.0, -7.0, 9.0]]])  # K=3, N=1
    mask = torch.tensor([[True, True, False]])
    w, d = agreement_weights(lp, mask, gamma=0.5, granularity="sequence")
    means = np.array([-2.0, -2.0, -3.5])  # each view's mean over the two masked tokens
    assert math.isclose(float(d[0]), float(means.var()), rel_tol=1e-12)  # biased variance
    assert torch.allclose(w, torch.tensor([[math.exp(-0.5 * means.var())] * 2 + [0.0]]).double())
    with pytest.raises(ValueError, match="2 views"):
        agreement_weights(lp[:1], mask)


@pytest.mark.claim("methods.unisd-clip")
@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0, 20), min_size=2, max_size=12), st.floats(0.05, 25))
def test_clip_as_weights_equals_min(values, c):
    d = torch.tensor([values], dtype=torch.float64, requires_grad=True)
    m = torch.ones(d.shape, dtype=torch.bool)
    keep, cap = clip_keep(d.detach(), m, clip=c)
    as_weights = keep * d + (~keep).to(d.dtype) * cap
    ref = d.clamp(max=c)
    ga = torch.autograd.grad(as_weights.sum(), d)[0]
    d2 = d.detach().clone().requires_grad_(True)
    gb = torch.autograd.grad(d2.clamp(max=c).sum(), d2)[0]
    assert torch.equal(as_weights.detach(), ref.detach())
    assert torch.equal(ga[d.detach() != c], gb[d.detach() != c])  # a tie's subgradient aside
    keep_q, cap_q = clip_keep(d.detach(), m, quantile=0.5)
    assert math.isclose(cap_q, max(float(np.quantile(values, 0.5)), 1e-6), rel_tol=1e-12)
    assert clip_keep(d.detach(), m)[1] == math.inf


@pytest.mark.claim("methods.unisd-loss")
def test_loss_recomputed_from_logits(tmp_path):
    """sum w min(D, c) / sum w + 0.1 MSE(h_S, h_T), every piece recomputed from the teacher's
    and student's logits and hidden states (plain path, forward KL, ceiling = median of D)."""
    cfg = TrainConfig(
        method="unisd",
        unisd_clip=0.0,
        unisd_clip_quantile=0.5,
        fused_loss=False,
        out=str(tmp_path),
        steps=1,
        **FAST,
    )
    tr = Trainer(cfg)
    batch = tr.make_batch(0)
    loss, metrics = tr.method.loss(batch)
    ro, t, m = batch.rollouts, tr.teacher, batch.mask
    views = []
    for v in ("solution", "partial", "answer"):
        msgs = [view_messages(tr.task, p, v, 0.5) for p in batch.rows]
        z = t.logits(batch.rows, ro.completions, ro.completion_mask, messages=msgs).double()
        views.append(torch.log_softmax(z, -1).gather(-1, ro.completions[..., None])[..., 0])
    var = torch.stack(views).var(0)
    scale = torch.quantile(var[m], 0.95)
    w = (1 / (1 + (var / scale).clamp(max=10))).clamp(min=0.01)
    zt = t.logits(batch.rows, ro.completions, ro.completion_mask).double()
    zs = batch.student.logits().detach().double()
    d = token_divergence(zs, zt, divergence="forward_kl")
    c = torch.quantile(d[m], 0.5)
    div = (w * d.clamp(max=c) * m).sum() / (w * m).sum()
    hs = batch.student.hidden().detach().double()
    ht = t.hidden(batch.rows, ro.completions, ro.completion_mask).double()
    mse = (((hs - ht) ** 2).mean(-1) * m).sum() / m.sum()
    assert math.isclose(float(loss.detach()), float(div + 0.1 * mse), rel_tol=1e-5)
    assert 0.4 <= metrics["unisd_clipped_frac"] <= 0.6 and metrics["unisd_weight_mean"] < 1


@pytest.mark.claim("methods.unisd-ema")
def test_ema_teacher_every_n_steps(tmp_path):
    cfg = TrainConfig(
        method="unisd", unisd_ema_every=2, unisd_ema_beta=0.75, out=str(tmp_path), steps=4, **FAST
    )
    tr = Trainer(cfg, task=make_task("chain_sum"))
    for step in range(4):
        before = [p.detach().clone() for p in tr.teacher.model.parameters()]
        rec = tr.train_step()
        after = list(tr.teacher.model.parameters())
        assert rec["unisd_teacher_ema"] == (step % 2 == 1)
        for b, a, s in zip(before, after, tr.unwrapped.parameters(), strict=True):
            want = 0.75 * b + 0.25 * s.detach() if rec["unisd_teacher_ema"] else b
            torch.testing.assert_close(a.detach(), want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(unisd_views="solution"), "unisd_views"),
        (dict(unisd_views="solution,nope"), "unisd_views"),
        (dict(unisd_clip=1.0, unisd_clip_quantile=0.5), "exclusive"),
        (dict(unisd_agreement="pair"), "unisd_agreement"),
        (dict(teacher_mode="ema"), "teacher_mode"),
        (dict(unisd_ema_beta=1.5), "unisd_ema_beta"),
    ],
)
def test_config_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(method="unisd", **bad)
