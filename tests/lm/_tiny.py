"""Shared pieces of the LM tests: the tiny model's fast settings and a task with mixed rewards.

Import after the `pytest.importorskip` lines of a test module (it imports `sdtheory.lm.tasks`).
"""

from sdtheory.lm.tasks import make_task

TINY = dict(
    model="tiny",
    hidden_size=32,
    num_layers=2,
    n_train=16,
    n_eval=0,
    batch_problems=2,
    k=3,
    max_new_tokens=6,
    eval_k=1,
    eval_every=0,
    progress=False,
    threads=1,
)


def tiny(**overrides) -> dict:
    """`TrainConfig` keywords of a fast CPU run on the tiny model; `overrides` replace or add."""
    return {**TINY, **overrides}


class EvenTask:
    """chain_sum whose verifier rewards completions of even length (1 iff non-empty with an even
    number of characters), so a tiny random model gets mixed rewards. Records `(problem, reward)`
    per call in `calls`; `rewards` lists the rewards in call order."""

    def __init__(self):
        self.base, self.calls = make_task("chain_sum"), []

    def __getattr__(self, name):
        return getattr(self.base, name)

    @property
    def rewards(self) -> list[float]:
        return [r for _, r in self.calls]

    def verify(self, completion, problem):
        r = float(len(completion) > 0 and len(completion) % 2 == 0)
        self.calls.append((problem, r))
        return r
