"""Which task sets each `sdtheory validate` experiment asks for, read from its current config.

One adapter per experiment names the `Task.problems(size, seed)` calls its `run(cfg, out)` makes;
`validate_task_requests(scale)` applies them to `CONFIGS[scale]`, so the bundle follows the
experiments' sizes as they change. An experiment without an adapter is an error (add one here,
an empty list if it uses no tasks); a call an adapter forgets makes the bundled run stop with the
task store's error naming the missing set (the bundle tests run the experiments that way).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..tasks import Task, make_task


@dataclass(frozen=True)
class TaskRequest:
    """One `task.problems(size, seed)` call of an experiment."""

    experiment: str
    task: Task
    size: int
    seed: int


def _krr(cfg) -> list[tuple[Task, int, int]]:  # krr.texts_and_targets: chain_sum, <= 3 terms
    return [(make_task("chain_sum", max_terms=3), cfg.n_train + cfg.n_eval, cfg.seed)]


def _champ_texts(cfg) -> list[tuple[Task, int, int]]:  # taid, meta: C.real_texts(task="champ")
    return [(make_task("champ"), cfg.n_train + cfg.n_test, cfg.data_seed)]


def _paced(cfg) -> list[tuple[Task, int, int]]:  # paced.measure: graded_sum at its levels
    task = make_task("graded_sum", levels=cfg.levels, weights=cfg.weights)
    return [(task, cfg.n_problems, cfg.seed)]


def _kernel(cfg) -> list[tuple[Task, int, int]]:  # kernel: scikit-learn's bundled digits only
    return []


def _opsd(cfg) -> list[tuple[Task, int, int]]:  # opsd: one Trainer per seed, task.split per seed
    return [(make_task(cfg.task), cfg.n_train + cfg.n_eval, s) for s in range(cfg.seeds)]


REQUESTS: dict[str, Callable] = {
    "krr": _krr,
    "taid": _champ_texts,
    "meta": _champ_texts,
    "paced": _paced,
    "kernel": _kernel,
    "opsd": _opsd,
}


def validate_task_requests(scale: str, only: Sequence[str] | None = None) -> list[TaskRequest]:
    """The task sets `sdtheory validate` asks for at `scale` (`"fast"`, `"cpu"` or `"gpu"`)."""
    from ..validate import EXPERIMENTS, load_experiment

    names = list(EXPERIMENTS) if not only else [n for n in EXPERIMENTS if n in only]
    if only and len(names) != len(set(only)):
        raise ValueError(f"only names unknown experiments {sorted(set(only) - set(names))}")
    out = []
    for name in names:
        configs = load_experiment(name).CONFIGS
        if scale not in configs:
            raise ValueError(f"scale must be one of {sorted(configs)}, got {scale!r}")
        if name not in REQUESTS:
            raise ValueError(
                f"experiment {name!r} has no task adapter in sdtheory/lm/bundle/_requests.py"
            )
        out += [TaskRequest(name, t, int(n), int(s)) for t, n, s in REQUESTS[name](configs[scale])]
    return out


def smoke_task_requests(only: Sequence[str] | None = None) -> list[TaskRequest]:
    """The task sets `sdtheory validate --smoke` asks for: every experiment's `fast` sets (or
    those of `only`) and those of its method checks (`sdtheory.lm.validate.smoke.task_calls`,
    recorded by building each method's trainer)."""
    from ..validate.smoke import task_calls

    out = [
        TaskRequest("smoke", r.task, r.size, r.seed) for r in validate_task_requests("fast", only)
    ]
    out += [TaskRequest("smoke", task, size, seed) for task, size, seed in task_calls()]
    return out
