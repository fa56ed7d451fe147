"""Parity of `TAIDSchedule` with the official `update_t` (SakanaAI/TAID a062892).

`_OfficialUpdate` below is a short transcription of the logic of the official
`TAID.update_t` (`src/distil_losses/taid.py`), kept on CPU in float64 instead of CUDA float32 so
that the comparison can be exact to 1e-12: first call stores the loss; relative change with the
1e-15 guard; momentum; sigmoid; linear target from `global_step / num_train_steps`;
`min(t_end, max(t_target, t + delta_t))` or the target alone when `disable_adaptive`.
"""

import numpy as np
import pytest

from sdtheory.theory.taid import TAIDSchedule

torch = pytest.importorskip("torch")


class _OfficialUpdate:
    """The official update rule, float64 tensors on CPU (transcription of the logic)."""

    def __init__(self, t_start=0.4, t_end=1.0, alpha=5e-4, beta=0.99, disable_adaptive=False):
        self.t_start, self.t_end, self.alpha, self.beta = t_start, t_end, alpha, beta
        self.disable_adaptive = disable_adaptive
        self.t = torch.tensor(t_start, dtype=torch.float64)
        self.prev_loss = torch.tensor(float("inf"), dtype=torch.float64)
        self.momentum = torch.zeros([], dtype=torch.float64)

    def update_t(self, loss, global_step, num_train_steps):
        if torch.isinf(self.prev_loss):
            self.prev_loss = loss
            return None
        rel = (self.prev_loss - loss) / (self.prev_loss + 1e-15)
        self.momentum = self.beta * self.momentum + (1 - self.beta) * rel
        progress = global_step / num_train_steps
        t_target = self.t_start + (self.t_end - self.t_start) * progress
        delta_t = self.alpha * torch.sigmoid(self.momentum) * (1 - self.t)
        t = (
            min(self.t_end, max(t_target, self.t + delta_t))
            if not self.disable_adaptive
            else t_target
        )
        if not isinstance(t, torch.Tensor):
            t = torch.tensor(t, dtype=self.t.dtype)
        self.t = t
        self.prev_loss = loss
        return delta_t


def _losses(kind: str, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    steps = np.arange(n)
    if kind == "decay":  # a noisy training curve
        return 3.0 * np.exp(-steps / (n / 4)) + 0.2 + 0.05 * rng.standard_normal(n) ** 2
    if kind == "rough":  # large up and down moves, negative and positive relative changes
        return np.exp(rng.normal(0.0, 0.7, n))
    if kind == "flat":
        return np.full(n, 1.7)
    raise AssertionError(kind)


def _trajectories(kw: dict, losses: np.ndarray, total: int):
    ours = TAIDSchedule(**kw)
    off = _OfficialUpdate(
        kw["t_start"], kw["t_end"], kw["alpha"], kw["beta"], disable_adaptive=not kw["adaptive"]
    )
    rows = []
    for step, j in enumerate(losses):
        t_new = ours.update(float(j), step, total)
        d_off = off.update_t(torch.tensor(float(j), dtype=torch.float64), step, total)
        rows.append(
            (
                t_new,
                float(off.t),
                ours.momentum,
                float(off.momentum),
                np.nan if ours.delta_t is None or step == 0 else ours.delta_t,
                np.nan if d_off is None else float(d_off),
                ours.floor(step, total),
            )
        )
    return np.array(rows)


CASES = {
    # name: (schedule kwargs, loss kind, steps, total_steps)
    "defaults-adaptive": (
        dict(t_start=0.4, t_end=1.0, alpha=5e-4, beta=0.99, adaptive=True),
        "decay",
        400,
        400,
    ),
    "defaults-linear": (
        dict(t_start=0.4, t_end=1.0, alpha=5e-4, beta=0.99, adaptive=False),
        "decay",
        400,
        400,
    ),
    "rough-adaptive": (
        dict(t_start=0.2, t_end=0.9, alpha=5e-4, beta=0.9, adaptive=True),
        "rough",
        300,
        300,
    ),
    # alpha large, total_steps large: the floor barely moves, so t + delta_t decides and the cap
    # at t_end is reached
    "alpha-driven": (
        dict(t_start=0.4, t_end=0.95, alpha=0.05, beta=0.99, adaptive=True),
        "decay",
        400,
        100_000,
    ),
    "alpha-driven-rough": (
        dict(t_start=0.1, t_end=1.0, alpha=0.02, beta=0.5, adaptive=True),
        "rough",
        300,
        10_000,
    ),
    "flat-linear": (
        dict(t_start=0.0, t_end=1.0, alpha=1.0, beta=0.0, adaptive=False),
        "flat",
        50,
        50,
    ),
}


@pytest.mark.claim("taid.schedule-parity")
@pytest.mark.parametrize("name", sorted(CASES))
def test_trajectories_match_official(name):
    kw, kind, n, total = CASES[name]
    tr = _trajectories(kw, _losses(kind, n), total)
    np.testing.assert_allclose(tr[:, 0], tr[:, 1], rtol=0, atol=1e-12, err_msg="t")
    np.testing.assert_allclose(tr[:, 2], tr[:, 3], rtol=0, atol=1e-12, err_msg="momentum")
    np.testing.assert_allclose(
        tr[:, 4], tr[:, 5], rtol=0, atol=1e-12, err_msg="delta_t", equal_nan=True
    )
    assert np.isnan(tr[0, 4]) and np.isnan(tr[0, 5])  # first call: no delta_t on either side


def test_alpha_driven_case_is_not_the_floor():
    """In the alpha-driven cases t is set by t + delta_t (and then the cap), not the floor."""
    for name in ("alpha-driven", "alpha-driven-rough"):
        kw, kind, n, total = CASES[name]
        tr = _trajectories(kw, _losses(kind, n), total)
        above = tr[1:, 0] > tr[1:, 6] + 1e-9
        assert above.mean() > 0.95, name
    kw, kind, n, total = CASES["alpha-driven"]
    tr = _trajectories(kw, _losses(kind, n), total)
    assert tr[-1, 0] == kw["t_end"]  # the cap binds at the end


def test_default_case_sits_on_the_floor():
    """With the defaults and total_steps = steps the floor drives t (alpha * 0.6 < 0.6 / 400)."""
    kw, kind, n, total = CASES["defaults-adaptive"]
    tr = _trajectories(kw, _losses(kind, n), total)
    np.testing.assert_allclose(tr[1:, 0], tr[1:, 6], rtol=0, atol=1e-15)
