"""`Trainer.evaluate`: avg@k, pass@k, greedy accuracy and the per-difficulty breakdown are the
numbers recomputed independently from the verifier's own verdicts (pass@k by enumerating every
k-subset of a problem's samples)."""

import itertools
from fractions import Fraction

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")
pytest.importorskip("reasoning_gym")

from sdtheory.lm.metrics import difficulty_level  # noqa: E402
from sdtheory.lm.trainers import TrainConfig, Trainer  # noqa: E402
from tests.lm._tiny import EvenTask  # noqa: E402


def _enumerated_pass_at_k(verdicts: list[float], k: int) -> Fraction:
    subsets = list(itertools.combinations(verdicts, k))
    return Fraction(sum(any(s) for s in subsets), len(subsets))


def test_evaluate_recomputes_from_the_verdicts(tmp_path):
    n_eval, k = 8, 4
    task = EvenTask()
    cfg = TrainConfig(
        method="opsd",
        model="tiny",
        hidden_size=32,
        num_layers=2,
        n_train=8,
        n_eval=n_eval,
        eval_k=k,
        eval_temperature=1.0,
        max_new_tokens=12,
        progress=False,
        threads=1,
        out=str(tmp_path),
    )
    tr = Trainer(cfg, task=task)
    rec = tr.evaluate()
    problems = tr.eval_set
    assert len(task.calls) == n_eval * k + n_eval  # k samples each, then one greedy each
    sampled, greedy = task.calls[: n_eval * k], task.calls[n_eval * k :]
    pos = {id(p): i for i, p in enumerate(problems)}
    verdicts = [[] for _ in problems]
    for p, r in sampled:
        verdicts[pos[id(p)]].append(r)
    assert all(len(v) == k for v in verdicts)
    greedy_of = [None] * n_eval
    for p, r in greedy:
        greedy_of[pos[id(p)]] = r
    # some problem has mixed verdicts: pass@2 > avg@k, so the numbers can be told apart
    assert any(0 < sum(v) < k for v in verdicts)

    def summary(idx):
        return (
            sum(Fraction(int(sum(verdicts[i])), k) for i in idx) / len(idx),
            {
                j: sum(_enumerated_pass_at_k(verdicts[i], j) for i in idx) / len(idx)
                for j in (1, 2, 4)
            },
            sum(Fraction(int(greedy_of[i])) for i in idx) / len(idx),
        )

    acc, passk, greedy_acc = summary(range(n_eval))
    assert rec["accuracy"] == pytest.approx(float(acc), abs=1e-15)
    for j in (1, 2, 4):
        assert rec[f"pass_at_{j}"] == pytest.approx(float(passk[j]), abs=1e-15)
    assert rec["pass_at_k"] == rec["pass_at_4"]
    assert rec["greedy_accuracy"] == pytest.approx(float(greedy_acc), abs=1e-15)
    assert rec["accuracy_lo"] <= rec["accuracy"] <= rec["accuracy_hi"]

    levels = [difficulty_level(p.meta) for p in problems]
    assert len(set(levels)) > 1, levels  # chain_sum's eval split mixes levels
    assert set(rec["by_difficulty"]) == set(levels)
    for lvl, part in rec["by_difficulty"].items():
        idx = [i for i, v in enumerate(levels) if v == lvl]
        acc, passk, greedy_acc = summary(idx)
        assert part["n"] == len(idx)
        assert part["accuracy"] == pytest.approx(float(acc), abs=1e-15)
        assert part["pass_at_k"] == pytest.approx(float(passk[4]), abs=1e-15)
        assert part["greedy_accuracy"] == pytest.approx(float(greedy_acc), abs=1e-15)

    # the same samples at every call (fixed seeds), greedy skipped on request
    assert tr.evaluate() == rec
    tr.cfg = tr.cfg.replace(eval_greedy=False)
    assert "greedy_accuracy" not in tr.evaluate()
