"""EffOPD on hand-made inputs: the checkpoints, the acceptance rule, the candidates against the
code's factor recursion, which weights move, and the validation compute."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")
pytest.importorskip("reasoning_gym")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sdtheory.lm.methods.effopd import (  # noqa: E402
    extrapolation_search,
    is_checkpoint,
    validation_cost,
)
from sdtheory.lm.trainers import TrainConfig, Trainer  # noqa: E402
from tests.lm._tiny import tiny  # noqa: E402

FAST = tiny(n_eval=2, k=2, lr=1e-2, effopd_val_problems=3)


@pytest.mark.claim("methods.effopd-checkpoints")
def test_checkpoints_are_powers_of_two():
    assert [s for s in range(0, 70) if is_checkpoint(s)] == [1, 2, 4, 8, 16, 32, 64]


def _search(scores, n):
    state = {"j": 0, "applied": []}

    def apply(j):
        state["j"] = j
        state["applied"].append(j)

    best, hist = extrapolation_search(lambda: scores[state["j"]], apply, n)
    return best, hist, state


@pytest.mark.claim("methods.effopd-acceptance")
@pytest.mark.parametrize(
    "scores, n, best, scored",
    [
        ([0.5, 0.6, 0.7, 0.65, 0.9, 1.0], 5, 2, 4),  # stops at the first non-improvement
        ([0.5, 0.6, 0.7, 0.8, 0.9, 1.0], 3, 3, 4),  # all accepted up to the cap
        ([0.5, 0.4, 0.9], 2, 0, 2),  # the first candidate is worse: back to the start
        ([0.5, 0.5, 0.9], 2, 0, 2),  # a tie is not an improvement (strict, as the code)
    ],
)
def test_acceptance_rule(scores, n, best, scored):
    j, hist, state = _search(scores, n)
    assert j == best and state["j"] == best  # the best is left applied
    assert len(hist) == scored and [h["j"] for h in hist] == list(range(scored))
    assert [h["accepted"] for h in hist[1:]] == [
        scores[i] > max(scores[:i]) for i in range(1, scored)
    ]


@pytest.mark.claim("methods.effopd-acceptance")
@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5), st.floats(0.25, 4.0), st.integers(0, 2**16))
def test_candidates_equal_the_code_factor_recursion(j, c, seed):
    """theta_t + j c Delta equals applying the code's factors a_1 = c, a_(i+1) = a_i / (1 + a_i)
    one after another (theta <- theta + a (theta - base), base fixed)."""
    g = torch.Generator().manual_seed(seed)
    base, theta = (
        torch.randn(5, generator=g, dtype=torch.float64),
        torch.randn(5, generator=g, dtype=torch.float64),
    )
    x, a = theta.clone(), c
    for _ in range(j):
        x = x + a * (x - base)
        a = a / (1 + a)
    torch.testing.assert_close(x, theta + j * c * (theta - base), rtol=1e-12, atol=1e-12)


@pytest.mark.claim("methods.effopd-compute")
def test_validation_cost():
    assert validation_cost([{}] * 3, 50, 4) == 600  # three scores of 50 problems x 4 samples
    assert validation_cost([{}], 7, 1) == 7


@pytest.mark.claim("methods.effopd-attn-mlp")
def test_extrapolation_moves_attention_and_mlp_from_the_base(tmp_path):
    """A rigged validation score prefers candidate 1: after step 1 the attention and MLP weights
    are theta_1 + c (theta_1 - theta_0), every other weight is theta_1, and the base is updated."""
    cfg = TrainConfig(method="effopd", steps=2, effopd_factor=1.5, out=str(tmp_path), **FAST)
    tr = Trainer(cfg)
    m = tr.method
    theta0 = {n: p.detach().clone() for n, p in tr.unwrapped.named_parameters()}
    calls = []
    snapshot = {}

    def rigged(problems=None):
        calls.append(len(problems))
        if len(calls) == 1:
            snapshot.update({n: p.detach().clone() for n, p in tr.unwrapped.named_parameters()})
        return {"accuracy": [0.1, 0.5, 0.2][min(len(calls) - 1, 2)]}

    m.ctx.evaluate = rigged
    rec = tr.train_step()
    assert rec["effopd_checkpoint"] and rec["effopd_eta"] == 1.5 and rec["effopd_scored"] == 3
    names = set(m.names)
    assert names and all(("attn" in n or "mlp" in n or "attention" in n) for n in names)
    assert not any("embed" in n or "lm_head" in n or n == "model.norm.weight" for n in names)
    # the code's keyword match also takes `post_attention_layernorm` (it contains "attention"),
    # never `input_layernorm`: kept as the code does
    assert "model.layers.0.post_attention_layernorm.weight" in names
    assert "model.layers.0.input_layernorm.weight" not in names
    for n, p in tr.unwrapped.named_parameters():
        t1 = snapshot[n]  # the weights after step 1's update, before the search
        want = t1 + 1.5 * (t1 - theta0[n]) if n in names else t1
        torch.testing.assert_close(p.detach(), want, rtol=0, atol=1e-6)
        if n in names:
            torch.testing.assert_close(m.base[n], p.detach(), rtol=0, atol=0)
    assert calls == [3, 3, 3]  # the validation set at every score
    assert rec["effopd_val_rollouts"] == 3 * 3 * 1  # 3 scores x 3 problems x eval_k 1
    assert rec["effopd_total_rollouts"] == 2 * 2 + 9  # one training step of 2 x 2 rollouts


@pytest.mark.claim("methods.effopd-compute")
def test_compute_accounting_in_a_run(tmp_path):
    cfg = TrainConfig(method="effopd", steps=5, out=str(tmp_path), **FAST)
    hist = [r for r in Trainer(cfg).train() if r["kind"] == "train"]
    val = 0
    for r in hist:
        assert r["effopd_checkpoint"] == (r["step"] in (1, 2, 4))
        if r["effopd_checkpoint"]:
            val += r["effopd_scored"] * 3 * 1
            assert 2 <= r["effopd_scored"] <= 6 and r["effopd_val_best"] >= r["effopd_val_start"]
        assert r["effopd_val_rollouts"] == val
        assert r["effopd_total_rollouts"] == r["step"] * 2 * 2 + val


def test_validation_set_is_disjoint_and_errors(tmp_path):
    tr = Trainer(TrainConfig(method="effopd", steps=1, out=str(tmp_path), **FAST))
    seen = {p.question for p in [*tr.train_set, *tr.eval_set]}
    assert len(tr.method.val) == 3 and not seen & {p.question for p in tr.method.val}
    with pytest.raises(ValueError, match="effopd_candidates"):
        TrainConfig(method="effopd", effopd_candidates=0)
    with pytest.raises(ValueError, match="effopd_factor"):
        TrainConfig(method="effopd", effopd_factor=0.0)
