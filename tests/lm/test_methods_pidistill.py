"""pi-Distill and PI-OPSD on hand-made inputs: the surrogate's gradients, the joint gradient flow
through the two forwards of one network, the teacher's samples, and PI-OPSD's stop-gradient."""

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")
pytest.importorskip("reasoning_gym")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sdtheory.lm.methods import base  # noqa: E402
from sdtheory.lm.methods.pidistill import pidistill_surrogate  # noqa: E402
from sdtheory.lm.trainers import TrainConfig, Trainer  # noqa: E402
from tests.lm._tiny import EvenTask, tiny  # noqa: E402

FAST = tiny(steps=1)


@pytest.mark.claim("methods.pidistill-is-weight")
@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-30, 0), min_size=3, max_size=3),
    st.lists(st.floats(-30, 0), min_size=3, max_size=3),
    st.floats(-3, 3),
    st.floats(0, 1),
    st.floats(0.1, 5),
)
def test_surrogate_gradients(lt, ls, a, alpha, clip):
    """d/d log pi_T = -alpha A, d/d log pi_S = -(1 - alpha) A min(pi_S / pi_T, c): by hand."""
    lp_t = torch.tensor([lt], dtype=torch.float64, requires_grad=True)
    lp_s = torch.tensor([ls], dtype=torch.float64, requires_grad=True)
    v, w = pidistill_surrogate(lp_t, lp_s, torch.tensor([a], dtype=torch.float64), alpha, clip)
    v.sum().backward()
    ratio = [min(math.exp(max(-20.0, min(20.0, s - t))), clip) for s, t in zip(ls, lt, strict=True)]
    for j in range(3):
        assert math.isclose(float(lp_t.grad[0, j]), -alpha * a, abs_tol=1e-12)
        assert math.isclose(
            float(lp_s.grad[0, j]), -(1 - alpha) * a * ratio[j], rel_tol=1e-9, abs_tol=1e-12
        )
        assert math.isclose(
            float(v[0, j].detach()),
            -a * (alpha + (1 - alpha) * ratio[j]),
            rel_tol=1e-9,
            abs_tol=1e-12,
        )
        assert math.isclose(float(w[0, j]), ratio[j], rel_tol=1e-9)
    with pytest.raises(ValueError, match="alpha"):
        pidistill_surrogate(lp_t, lp_s, torch.zeros(1), 1.5)


def _loss_with_forwards(tmp_path, monkeypatch, method, **kw):
    """One batch's loss with the two forwards' hidden states kept for their gradients."""
    cfg = TrainConfig(method=method, out=str(tmp_path / method), **FAST, **kw)
    tr = Trainer(cfg, task=EvenTask())
    batch = tr.make_batch(0)
    under, orig = [], base.StudentOutputs.under

    def spy(self, prompts):
        out = orig(self, prompts)
        under.append((out, prompts))
        return out

    monkeypatch.setattr(base.StudentOutputs, "under", spy)
    loss, metrics = tr.method.loss(batch)
    hs = [batch.student._hidden, under[0][0]._hidden]
    for h in hs:
        if h.requires_grad:
            h.retain_grad()
    loss.backward()
    grads = [None if not h.requires_grad or h.grad is None else h.grad.clone() for h in hs]
    params = [p.grad.clone() for p in tr.unwrapped.parameters()]
    return tr, batch, under[0][1], grads, params


def _zero(g):
    return g is None or float(g.abs().max()) == 0.0


@pytest.mark.claim("methods.pidistill-joint-gradient")
def test_joint_gradient_flows_through_both_forwards(tmp_path, monkeypatch):
    """alpha = 1: only the forward after the privileged view gets a gradient; alpha = 0: only the
    plain forward; the parameter gradient is linear in alpha, so alpha = 0.5 trains both."""
    out = {}
    for alpha in (0.0, 0.5, 1.0):
        out[alpha] = _loss_with_forwards(
            tmp_path / str(alpha), monkeypatch, "pidistill", pid_alpha=alpha, pid_beta=0.3
        )
    (_, _, _, (t0, s0), p0), (_, _, _, (th, sh), ph), (_, _, _, (t1, s1), p1) = out.values()
    assert _zero(t0) and not _zero(s0)  # alpha = 0: the student term only
    assert not _zero(t1) and _zero(s1)  # alpha = 1: the teacher term only (the KL target is sg)
    assert not _zero(th) and not _zero(sh)
    for a, b, c in zip(p0, ph, p1, strict=True):
        torch.testing.assert_close(b, 0.5 * a + 0.5 * c, rtol=1e-4, atol=1e-7)


@pytest.mark.claim("methods.pidistill-teacher-samples")
def test_rollouts_come_from_the_teacher_prompt(tmp_path, monkeypatch):
    tr, batch, student_prompts, _, _ = _loss_with_forwards(tmp_path, monkeypatch, "pidistill")
    tok = tr.tok
    for i, p in enumerate(batch.rows):
        teacher = tok.decode(batch.rollouts.prompts[i])
        assert p.solution in teacher and p.question in teacher  # sampled after x + I
        assert p.solution not in tok.decode(student_prompts[i])  # the student term: x alone
        assert student_prompts[i] == tr.student_prompts([p])[0]  # the student's own prompt
    k = FAST["k"]
    assert batch.rollouts.group.tolist() == [g for g in range(2) for _ in range(k)]


@pytest.mark.claim("methods.piopsd-reverse-kl")
def test_piopsd_teacher_is_the_same_network_without_gradient(tmp_path, monkeypatch):
    tr, batch, teacher_prompts, (h_student, h_teacher), _ = _loss_with_forwards(
        tmp_path, monkeypatch, "piopsd"
    )
    assert not _zero(h_student) and _zero(h_teacher)
    for i, p in enumerate(batch.rows):  # on-policy student rollouts; the teacher sees x + I
        assert p.solution in tr.tok.decode(teacher_prompts[i])
        assert batch.rollouts.prompts[i] == tr.student_prompts([p])[0]
    cfg = TrainConfig(method="piopsd", **FAST)
    assert cfg.weights == (0.1, 1.0)  # (beta, GRPO)


def test_config_errors():
    with pytest.raises(ValueError, match="pid_alpha"):
        TrainConfig(method="pidistill", pid_alpha=1.5)
    with pytest.raises(ValueError, match="k must be >= 2"):
        TrainConfig(method="pidistill", k=1)
    with pytest.raises(ValueError, match="k must be >= 2"):
        TrainConfig(method="piopsd", k=1)
