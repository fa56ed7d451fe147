"""The supervised-time methods on demonstration tokens: CurioSFT's temperature bisection and loss,
the reference sync, PS-KD's refined targets and stored predictions, and the soft-target
cross-entropy (fused = plain), on hand-made inputs with known answers."""

import copy
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")
pytest.importorskip("reasoning_gym")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from scipy.optimize import brentq  # noqa: E402

from sdtheory.lm import models  # noqa: E402
from sdtheory.lm.losses import (  # noqa: E402
    fused_linear_soft_target_cross_entropy,
    soft_target_cross_entropy,
    token_divergence,
)
from sdtheory.lm.methods.curiosft import entropy_target, select_temperature  # noqa: E402
from sdtheory.lm.methods.pskd import TargetStore, pskd_alpha, refined_targets  # noqa: E402
from sdtheory.lm.methods.shared import token_logprobs  # noqa: E402
from sdtheory.lm.trainers import TrainConfig, Trainer  # noqa: E402
from sdtheory.testing.asserts import tolerance  # noqa: E402
from tests.lm._tiny import tiny  # noqa: E402

FAST = tiny(k=1, max_new_tokens=16, steps=2, lr=1e-2)


# ----------------------------------------------------------------------------- CurioSFT
def _np_topk_entropy(z, tau, k):
    v = np.sort(z)[::-1][: min(k, len(z))] / tau
    v = v - v.max()
    p = np.exp(v) / np.exp(v).sum()
    return float(-(p[p > 0] * np.log(p[p > 0])).sum())


def _root(z, k, lo=1.1, hi=1.5):
    """An independent solution: clamp, else Brent's method on H(z / tau) = H*."""
    h = _np_topk_entropy(z, 1.0, k)
    target = h + 0.5 / (1 + math.exp(-2 * (h - 1.2)))
    f = lambda t: _np_topk_entropy(z, t, k) - target  # noqa: E731
    if f(lo) >= 0:
        return lo
    if f(hi) <= 0:
        return hi
    return brentq(f, lo, hi, xtol=1e-12)


def test_entropy_target_hand_values():
    h = torch.tensor([1.2, 0.0, 10.0], dtype=torch.float64)
    out = entropy_target(h).tolist()
    assert out[0] == 1.45 and math.isclose(out[1], 0.5 / (1 + math.exp(2.4)), rel_tol=1e-12)
    assert math.isclose(out[2], 10.5, rel_tol=1e-7)


@pytest.mark.claim("methods.curiosft-temperature")
@pytest.mark.parametrize("k", [4, 512])
def test_temperature_bisection_matches_a_root_finder(k):
    """tau of 200 rows of logits at several scales (top-k and full softmax) equals an
    independent root of H(z/tau) = H* clamped to [1.1, 1.5], to the bracket width 0.4/2^21."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(200, 12, generator=g, dtype=torch.float64)
    z = z * torch.logspace(-1, 1.3, 200, dtype=torch.float64)[:, None]
    tau, h = select_temperature(z, k=k)
    inside = 0
    for i in range(200):
        zi = z[i].numpy()
        full = _np_topk_entropy(zi, 1.0, 12)
        want = 1.1 if full <= 0.03 else _root(zi, k)
        assert abs(float(tau[i]) - want) < 1e-6, (i, float(tau[i]), want)
        assert math.isclose(float(h[i]), _np_topk_entropy(zi, 1.0, k), rel_tol=1e-10)
        inside += 1.1 < want < 1.5
    assert inside > 20  # the bisection itself is exercised, not only the clamps


def test_temperature_ends_and_the_tail():
    z = torch.tensor([[0.0] * 8, [40.0] + [0.0] * 7, [3.0, 2.0, 1.0, -50.0, -60.0, -70, -80, -90]])
    tau, _ = select_temperature(z.double(), k=3)
    assert tau[0] == 1.5  # uniform: the target entropy exceeds anything reachable
    assert tau[1] == 1.1  # a "factual" token (entropy <= 0.03)
    z2 = z.clone()
    z2[2, 3:] = torch.tensor([-5.0, -6.0, -7, -8, -9])  # only logits outside the top 3 change
    tau2, _ = select_temperature(z2.double(), k=3)
    assert tau2[2] == tau[2]
    with pytest.raises(ValueError, match="tau_min"):
        select_temperature(z, tau_min=1.6, tau_max=1.5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-30, 30), min_size=2, max_size=16), st.floats(0.05, 20.0))
def test_temperature_stays_in_range(values, scale):
    z = torch.tensor([values], dtype=torch.float64) * scale
    tau, h = select_temperature(z, k=6)
    assert 1.1 <= float(tau[0]) <= 1.5 and torch.isfinite(h).all()


@pytest.mark.claim("methods.curiosft-loss")
def test_curiosft_loss_by_hand(tmp_path):
    cfg = TrainConfig(method="curiosft", distill_weight=0.7, curio_topk=8,
                      out=str(tmp_path), **FAST)  # fmt: skip
    tr = Trainer(cfg)
    batch = tr.make_batch(0)
    assert batch.rollouts.on_policy is False  # the dataset's worked solutions
    p0 = tr.train_set[batch.problem_ids[0]]
    assert tr.tok.decode(batch.rollouts.completions[0][batch.mask[0]]).startswith(p0.steps[0])
    loss, metrics = tr.method.loss(batch)
    ro, m = batch.rollouts, batch.mask
    lp = token_logprobs(batch.student.logits().detach().double(), ro.completions)
    zt = tr.teacher.logits(batch.rows, ro.completions, ro.completion_mask).double()
    tau = torch.stack([select_temperature(zt[i], k=8)[0] for i in range(len(zt))])
    lq = token_logprobs(zt / tau[..., None], ro.completions)
    ref = ((-lp + 0.35 * (lp - lq) ** 2)[m]).mean()
    assert math.isclose(float(loss.detach()), float(ref), rel_tol=1e-5)
    assert metrics["distill_loss"] > 0 and 1.1 <= metrics["curio_tau_mean"] <= 1.5
    # --distill-weight 0: plain SFT, no teacher
    sft = Trainer(cfg.replace(distill_weight=0.0, out=str(tmp_path / "sft")))
    assert sft.teacher is None
    b = sft.make_batch(0)
    loss0, _ = sft.method.loss(b)
    lp0 = token_logprobs(b.student.logits().detach(), b.rollouts.completions)
    assert math.isclose(float(loss0.detach()), float(-lp0[b.mask].mean()), rel_tol=1e-6)


@pytest.mark.claim("methods.curiosft-reference-sync")
def test_reference_mixup_sync_every_fifth_step(tmp_path):
    """After optimiser steps 1-4 the reference keeps its weights; after step 5 it is
    0.01 ref + 0.99 student, as the code's sync before its 6th reference forward."""
    from types import SimpleNamespace

    tr = Trainer(TrainConfig(method="curiosft", out=str(tmp_path), **FAST))
    assert tr.method.options.curio_sync_every == 5 and tr.method.options.curio_mixup == 0.99
    init = copy.deepcopy(tr.teacher.model.state_dict())
    with torch.no_grad():
        for p in tr.unwrapped.parameters():
            p.add_(1.0)
    for step in range(4):
        assert tr.method.after_step(SimpleNamespace(step=step), {}) == {"curio_synced": False}
        assert all(torch.equal(a, init[k]) for k, a in tr.teacher.model.state_dict().items())
    assert tr.method.after_step(SimpleNamespace(step=4), {}) == {"curio_synced": True}
    student = tr.unwrapped.state_dict()
    for k, a in tr.teacher.model.state_dict().items():
        torch.testing.assert_close(a, torch.lerp(init[k], student[k], 0.99))
    with pytest.raises(ValueError, match="teacher_mode must be fixed or live"):
        TrainConfig(method="curiosft", teacher_mode="ema")
    with pytest.raises(ValueError, match="curio_mixup"):
        TrainConfig(method="curiosft", curio_mixup=0.0)


# ----------------------------------------------------------------------------- PS-KD
@pytest.mark.claim("methods.pskd-targets")
def test_pskd_alpha_and_refined_targets():
    assert [pskd_alpha(t, 5, 0.5) for t in range(5)] == [0.1, 0.2, 0.3, 0.4, 0.5]
    labels = torch.tensor([1, 0])
    prev_i = torch.tensor([[1, 2], [2, 0]])
    prev_p = torch.tensor([[0.5, 0.5], [0.9, 0.1]], dtype=torch.float64)
    idx, prob = refined_targets(labels, prev_i, prev_p, torch.tensor([0.2, 0.8]))
    dense = torch.zeros(2, 3, dtype=torch.float64).scatter_add_(1, idx, prob)
    want = torch.tensor([[0.0, 0.9, 0.1], [0.2 + 0.08, 0.0, 0.72]], dtype=torch.float64)
    torch.testing.assert_close(dense, want)
    with pytest.raises(ValueError, match="alpha_max"):
        pskd_alpha(0, 3, 1.5)


def test_target_store_topk_first_sight_and_state():
    store = TargetStore(topk=2)
    toks = torch.tensor([3, 1])
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.7, 0.1, 0.1, 0.1]]))
    idx, prob, had = store.get(5, toks, 2)
    assert not had and idx[:, 0].tolist() == [3, 1] and prob.tolist() == [[1, 0], [1, 0]]
    store.put(5, toks, logits)
    idx, prob, had = store.get(5, toks, 2)
    assert had and idx.tolist()[0] == [3, 2]
    torch.testing.assert_close(prob[0], torch.tensor([4 / 7, 3 / 7]))
    assert not store.get(5, torch.tensor([3, 2]), 2)[2]  # other tokens: first sight again
    twin = TargetStore(topk=9)
    twin.load_state_dict(store.state_dict())
    assert twin.topk == 2 and torch.equal(twin.get(5, toks, 2)[1], prob)
    full = TargetStore(topk=0)
    full.put(1, toks, logits)
    torch.testing.assert_close(full.get(1, toks, 4)[1], torch.softmax(logits, -1))


def _soft_case(dtype, g):
    h = torch.randn(3, 5, 6, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
    w = torch.randn(17, 6, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
    idx = torch.randint(0, 17, (3, 5, 4), generator=g)
    idx[..., 1] = idx[..., 0]  # a repeated index: its mass adds
    prob = torch.rand(3, 5, 4, generator=g, dtype=torch.float64)
    prob = prob / prob.sum(-1, keepdim=True)
    mask = torch.rand(3, 5, generator=g) > 0.3
    return h, w, idx, prob, mask


@pytest.mark.claim("methods.pskd-fused")
@pytest.mark.parametrize("reduction", ["token_mean", "sequence_mean", "sum"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_soft_target_ce_fused_equals_plain(reduction, dtype):
    g = torch.Generator().manual_seed(1)
    h, w, idx, prob, mask = _soft_case(dtype, g)
    wts = torch.rand(3, 5, generator=g, dtype=torch.float64)
    kw = dict(weights=wts, reduction=reduction)
    a = fused_linear_soft_target_cross_entropy(h, w, idx, prob, mask, chunk_size=4, **kw)
    b = soft_target_cross_entropy(h @ w.T, idx, prob, mask, **kw)
    ga, gb = (torch.autograd.grad(x, (h, w)) for x in (a, b))
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else tolerance(dtype)
    torch.testing.assert_close(a, b, **tol)
    for x, y in zip(ga, gb, strict=True):
        torch.testing.assert_close(x.double(), y.double(), **tol)
    assert float(a.detach()) > 0


def test_soft_target_ce_is_nll_and_kl_plus_entropy():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(4, 9, generator=g, dtype=torch.float64)
    y = torch.randint(0, 9, (4,), generator=g)
    one = soft_target_cross_entropy(z, y[:, None], torch.ones(4, 1, dtype=torch.float64),
                                    torch.ones(4))  # fmt: skip
    torch.testing.assert_close(one, torch.nn.functional.cross_entropy(z, y), rtol=1e-12, atol=0)
    p = torch.softmax(torch.randn(4, 9, generator=g, dtype=torch.float64), -1)
    full = soft_target_cross_entropy(z, torch.arange(9).expand(4, 9), p, torch.ones(4))
    kl = token_divergence(z, torch.log(p), divergence="forward_kl")
    ent = -(p * p.log()).sum(-1)
    torch.testing.assert_close(full, (kl + ent).mean(), rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="prob must be >= 0"):
        soft_target_cross_entropy(z, y[:, None], -torch.ones(4, 1, dtype=torch.float64), None)


@pytest.mark.claim("methods.pskd-targets")
def test_pskd_run_trains_on_last_epochs_predictions(tmp_path):
    """Two problems, one per epoch step: epoch 0 is the NLL and stores the softmax of that very
    forward; epoch 1 trains on (1 - 0.8) y + 0.8 p^(0), alpha = 0.8 * (t + 1) / 2."""
    cfg = TrainConfig(method="pskd", pskd_topk=0, out=str(tmp_path), **{**FAST, "n_train": 2})
    tr = Trainer(cfg)
    b0 = tr.make_batch(0)
    z0 = b0.student.logits().detach().double()
    loss0, m0 = tr.method.loss(b0)
    ro0 = b0.rollouts
    nll = -token_logprobs(z0, ro0.completions)[b0.mask].mean()
    assert math.isclose(float(loss0.detach()), float(nll), rel_tol=1e-6)
    assert m0["pskd_alpha"] == 0.4 and m0["pskd_stored_frac"] == 0.0
    for i, pid in enumerate(b0.problem_ids):
        keep = ro0.completion_mask[i]
        got = tr.method.store.get(pid, ro0.completions[i][keep], 320)[1].double()
        torch.testing.assert_close(got, torch.softmax(z0[i][keep], -1), rtol=1e-5, atol=1e-7)
    prev = copy.deepcopy(tr.method.store.items)
    loss0.backward()
    tr.opt.step()
    tr.opt.zero_grad()
    b1 = tr.make_batch(1)
    z1 = b1.student.logits().detach().double()
    loss1, m1 = tr.method.loss(b1)
    assert m1["pskd_alpha"] == 0.8 and m1["pskd_stored_frac"] == 1.0
    per = []
    for i, pid in enumerate(b1.problem_ids):
        keep = b1.rollouts.completion_mask[i]
        toks = b1.rollouts.completions[i][keep]
        target = 0.8 * prev[pid]["prob"].double() + 0.2 * torch.eye(320, dtype=torch.float64)[toks]
        per.append(-(target * torch.log_softmax(z1[i][keep], -1)).sum(-1))
    assert math.isclose(float(loss1.detach()), float(torch.cat(per).mean()), rel_tol=1e-5)


@pytest.mark.claim("methods.pskd-fused")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_pskd_method_fused_equals_plain_with_stored_targets(tmp_path, dtype):
    """PS-KD's own loss, one step after its targets were stored (soft targets, top-8): the fused
    and plain paths give the same loss and student gradients (1e-10 in float64)."""
    tok = models.tiny_tokenizer()
    net = models.small_model(tok, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1)
    cfg = TrainConfig(method="pskd", pskd_topk=8, out=str(tmp_path), **{**FAST, "n_train": 2})
    tr = Trainer(cfg, model=net.to(dtype), tokenizer=tok)
    tr.train_step()
    state = copy.deepcopy(tr.method.state_dict())
    params = list(tr.unwrapped.parameters())
    out = []
    for fused in (True, False):
        tr.method.load_state_dict(copy.deepcopy(state))
        tr.method.cfg = cfg.replace(fused_loss=fused)
        loss, metrics = tr.method.loss(tr.make_batch(1))
        assert metrics["pskd_stored_frac"] == 1.0 and metrics["pskd_alpha"] == 0.8
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        out.append(
            (loss.detach().double(), [torch.zeros(1) if x is None else x.double() for x in grads])
        )
    (la, ga), (lb, gb) = out
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else tolerance(dtype)
    torch.testing.assert_close(la, lb, **tol)
    for x, y in zip(ga, gb, strict=True):
        torch.testing.assert_close(x, y, **tol)


def test_sft_configs_reject_bad_values():
    for bad, match in [
        (dict(method="curiosft", curio_tau_min=1.6), "curio_tau_min"),
        (dict(method="curiosft", curio_topk=0), "curio_topk"),
        (dict(method="curiosft", grpo_weight=1.0), "grpo_weight must be 0"),
        (dict(method="pskd", pskd_alpha_max=1.5), "pskd_alpha_max"),
        (dict(method="pskd", pskd_topk=-1), "pskd_topk"),
    ]:
        with pytest.raises(ValueError, match=match):
            TrainConfig(**bad)
