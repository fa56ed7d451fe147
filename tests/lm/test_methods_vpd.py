"""VPD on hand-made inputs: the E-step's preference loss, its reward shift, its moving reference
(the current student), the feedback prompts and the M-step's stop-gradient."""

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")
pytest.importorskip("reasoning_gym")

from sdtheory.lm.methods import base  # noqa: E402
from sdtheory.lm.methods.sdpo import FEEDBACK, successful_siblings  # noqa: E402
from sdtheory.lm.methods.shared import token_logprobs  # noqa: E402
from sdtheory.lm.methods.vpd import CORRECT, RewardShift, bco_loss  # noqa: E402
from sdtheory.lm.rollout import completion_logits  # noqa: E402
from sdtheory.lm.trainers import TrainConfig, Trainer  # noqa: E402
from tests.lm._tiny import EvenTask, tiny  # noqa: E402

FAST = tiny(lr=1e-2)


@pytest.mark.claim("methods.vpd-bco-loss")
def test_bco_loss_values_and_direction():
    x = torch.tensor([0.0, 2.0, 0.5, -40.0, 40.0], dtype=torch.float64, requires_grad=True)
    r = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0])
    out = bco_loss(x, r, delta=0.5)
    want = [
        -math.log(1 / (1 + math.exp(0.5))),  # verified: -log sigmoid(0 - 0.5)
        -math.log(1 / (1 + math.exp(1.5))),  # failed: -log sigmoid(0.5 - 2)
        math.log(2.0),  # verified at the shift
        40.5,  # -log sigmoid(-40.5) = 40.5 + log(1 + e^-40.5), finite
        39.5,
    ]
    assert torch.allclose(out.detach(), torch.tensor(want, dtype=torch.float64), rtol=1e-12)
    out.sum().backward()
    assert (x.grad[r == 1] < 0).all() and (x.grad[r == 0] > 0).all()  # descent: up / down
    assert math.isclose(float(x.grad[2]), -0.5, rel_tol=1e-12)  # -sigmoid(0) at the shift


@pytest.mark.claim("methods.vpd-dynamic-reference")
def test_reward_shift_hand_values():
    s = RewardShift(momentum=0.75)
    assert s.delta == 0.0
    assert s.update([2.0, 4.0], [1, 1]) == 3.0  # only verified seen: delta = mu+
    assert s.update([-2.0], [0]) == 0.5  # mu- = -2 on first sight: (3 - 2) / 2
    assert s.update([7.0, -6.0], [1, 0]) == pytest.approx((4.0 + -3.0) / 2)  # .75/.25 EMAs
    t = RewardShift()
    t.load_state_dict(s.state_dict())
    assert t.delta == s.delta and t.momentum == 0.75
    with pytest.raises(ValueError, match="momentum"):
        RewardShift(1.0)


@pytest.mark.claim("methods.vpd-dynamic-reference")
def test_estep_uses_todays_student_as_reference(tmp_path, monkeypatch):
    """At every E-step the implicit rewards are beta (log pi(y|x,f) - log pi(y|x)) with both
    log-probabilities from the weights of that step (the reference moves with the student);
    the logged means, shift and loss are recomputed here from the network."""
    cfg = TrainConfig(method="vpd", vpd_e_every=1, vpd_beta=0.5, out=str(tmp_path), steps=3, **FAST)
    tr = Trainer(cfg, task=EvenTask())
    m = tr.method
    shift, orig, seen = RewardShift(0.9), m.loss, []

    def loss(batch):
        ro = batch.rollouts
        with torch.no_grad():
            lt = token_logprobs(
                completion_logits(
                    tr.unwrapped, m.feedback_prompts(batch), ro.completions, ro.completion_mask
                ).double(),
                ro.completions,
            )
            ls = token_logprobs(
                completion_logits(
                    tr.unwrapped, ro.prompts, ro.completions, ro.completion_mask
                ).double(),
                ro.completions,
            )
        r = 0.5 * ((lt - ls) * ro.completion_mask).sum(-1)
        delta = shift.update(r, batch.rewards)
        seen.append((r, delta, float(bco_loss(r, batch.rewards, delta).mean()), ls, batch.rewards))
        return orig(batch)

    monkeypatch.setattr(m, "loss", loss)
    for _ in range(3):
        rec = tr.train_step()
        r, delta, l_e, _, rewards = seen[-1]
        ok = tr.method.shift.delta
        assert rec["vpd_estep"] and math.isclose(
            rec["vpd_shift"], delta, rel_tol=1e-4, abs_tol=1e-5
        )
        assert math.isclose(ok, delta, rel_tol=1e-4, abs_tol=1e-5)
        assert math.isclose(rec["vpd_estep_loss"], l_e, rel_tol=1e-5)
        v = rewards >= 0.5  # float32 log-prob differences: absolute tolerance 1e-5
        if v.any():
            assert math.isclose(
                rec["vpd_reward_verified"], float(r[v].mean()), rel_tol=1e-4, abs_tol=1e-5
            )
    assert not torch.equal(seen[0][3], seen[1][3])  # the reference moved with the student


@pytest.mark.claim("methods.vpd-mstep")
def test_feedback_prompts_and_mstep_stop_gradient(tmp_path, monkeypatch):
    cfg = TrainConfig(method="vpd", vpd_e_every=2, out=str(tmp_path), steps=2, **FAST)
    tr = Trainer(cfg, task=EvenTask())
    batch = tr.make_batch(1)  # not an E-step
    texts = batch.rollouts.texts(tr.tok)
    sib = successful_siblings(batch.rewards, batch.groups)
    prompts = [tr.tok.decode(p) for p in tr.method.feedback_prompts(batch)]
    assert 0 < float(batch.rewards.mean()) < 1
    for i, text in enumerate(prompts):
        assert (CORRECT in text) == (batch.rewards[i] >= 0.5) and (FEEDBACK in text) != (
            CORRECT in text
        )
        if sib[i] is not None:
            assert "Correct solution:\n" + texts[sib[i]].strip() in text
    under, orig = [], base.StudentOutputs.under
    monkeypatch.setattr(
        base.StudentOutputs, "under", lambda s, p: under.append(orig(s, p)) or under[-1]
    )
    loss, metrics = tr.method.loss(batch)
    assert metrics["vpd_estep"] is False and metrics["divergence"] == "reverse_kl"
    assert not under[0]._hidden.requires_grad  # the teacher is a target only in the M-step
    loss.backward()
    assert any(float(p.grad.abs().max()) > 0 for p in tr.unwrapped.parameters())


def test_config_errors():
    with pytest.raises(ValueError, match="vpd_e_every"):
        TrainConfig(method="vpd", vpd_e_every=0)
    with pytest.raises(ValueError, match="vpd_beta"):
        TrainConfig(method="vpd", vpd_beta=0.0)
    with pytest.raises(ValueError, match="vpd_shift_momentum"):
        TrainConfig(method="vpd", vpd_shift_momentum=1.0)
