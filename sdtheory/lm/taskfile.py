r"""Task sets as JSONL files: generate them where reasoning-gym and champ import, run anywhere.

A task-set file holds the result of one call `task.problems(size, seed)`. Its first line is a
header, every further line one problem:

```text
{"format": "sdtheory-task-set", "version": 1, "task": {"name": "chain_sum", "options": {...}},
 "size": 64, "seed": 0, "generators": {"reasoning-gym": "0.1.19"}}
{"index": 0, "question": "...", "answer": "42", "steps": ["...", ...], "source": "chain_sum",
 "meta": {...}, "difficulty": {...}, "prompt": [{"role": "user", "content": "..."}],
 "views": {"answer": "...", "solution": "..."}, "verifier": {"name": "answer-match"},
 "score": {"name": "rg-decimal", "strip_commas": true}}
```

`prompt` is what the student sees and `views` are the privileged views the teacher sees, as this
version of sdtheory renders them (`Task.student_messages`, `Task.privileged_view`); reading a
file checks that the rendering still agrees, so a file never describes prompts a run does not use.
`difficulty` copies `meta["difficulty"]` where the generator gives one. In `meta`, fractions are
written as `{"__fraction__": "p/q"}` and read back as `Fraction`s; tuples come back as lists.

Two kinds of answer checks travel by name, so that reading a file imports neither reasoning-gym
nor champ:

* `verifier` -- the reward the trainers use (`Task.verify`). `answer-match`: the final answer
  extracted from the completion equals the reference after normalisation (1.0, else 0.0).
* `score` -- reasoning-gym's graded `score_answer` of the problem's dataset, reimplemented here
  (`SCORES`; the dataset-to-score table is `RG_SCORES`) and applied to the extracted answer:
  `rg-exact` (1 on string equality, $|a^\star|/|a|$ when the reference $a^\star$ is a substring of
  the answer $a$, else 0), `rg-decimal` (1 when the two parse to equal decimals after dropping
  commas, else the substring ratio) and `rg-gsm-symbolic` (1 when the first number equals the
  reference, 0.01 for another number, 0 for none). `None` for tasks without one (champ).

Use:

* `write_task_set(path, task, size, seed)` / `read_task_set(path)`;
* `FileTask(path)` -- a `Task` whose problems come from a file (`sdtheory train --task-file`);
* `use_task_dir(root)` -- while active, every `Task.problems(size, seed)` call is answered from
  the files under `root` by the task's name, options, size and seed (exact match; a missing set
  is an error naming it), which is how the air-gapped bundle runs `sdtheory validate`.

References:
    reasoning-gym 0.1.19 (PyPI `reasoning-gym`): `reasoning_gym/dataset.py`
    (`ProceduralDataset.score_answer`), `reasoning_gym/utils.py` (`compute_decimal_reward`),
    `reasoning_gym/arithmetic/gsm_symbolic/gsm_symbolic.py` (`score_answer`).
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import json
import os
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path

from ..core._checks import check_positive_int
from .tasks import Problem, Task, extract_answer, normalize_answer, set_problem_source

__all__ = [
    "FORMAT",
    "RG_SCORES",
    "SCORES",
    "VERIFIERS",
    "FileTask",
    "TaskSet",
    "TaskStore",
    "read_task_set",
    "task_key",
    "task_spec",
    "use_task_dir",
    "write_task_set",
]

FORMAT = "sdtheory-task-set"
VERSION = 1


# --- answer checks by name --------------------------------------------------------------------
def answer_match(answer: str | None, reference: str) -> float:
    """1.0 when `answer` (already extracted) equals `reference` after `normalize_answer`."""
    if answer is None:
        return 0.0
    return float(normalize_answer(answer) == normalize_answer(reference))


def rg_exact(answer: str | None, reference: str) -> float:
    r"""reasoning-gym's default score: 1 if equal, $|a^\star|/|a|$ if $a^\star$ is in $a$, else 0."""
    if isinstance(answer, str) and answer:
        if answer == reference:
            return 1.0
        if reference in answer:
            return len(reference) / len(answer)
    return 0.0


def rg_decimal(answer: str | None, reference: str, strip_commas: bool = True) -> float:
    """reasoning-gym's `compute_decimal_reward`: equal decimals score 1, else the substring ratio."""
    if answer is None or not answer:
        return 0.0
    if strip_commas:
        answer, reference = answer.replace(",", ""), reference.replace(",", "")
    try:
        if Decimal(answer) == Decimal(reference):
            return 1.0
    except (InvalidOperation, ValueError, TypeError):
        pass
    return len(reference) / len(answer) if reference in answer else 0.0


_FIRST_NUMBER = re.compile(r"\b-?\d+(?:\.\d+)?\b")


def rg_gsm_symbolic(answer: str | None, reference: str) -> float:
    """reasoning-gym's gsm_symbolic score: first number == reference -> 1, other number -> 0.01."""
    if answer is None:
        return 0.0
    m = _FIRST_NUMBER.search(answer)
    if not m:
        return 0.0
    try:
        return 1.0 if float(m.group(0)) == float(reference) else 0.01
    except ValueError:
        return 0.0


VERIFIERS: dict[str, Callable[..., float]] = {"answer-match": answer_match}
SCORES: dict[str, Callable[..., float]] = {
    "rg-exact": rg_exact,
    "rg-decimal": rg_decimal,
    "rg-gsm-symbolic": rg_gsm_symbolic,
}
# reasoning-gym dataset -> its score_answer, as a name in SCORES and its parameters
RG_SCORES: dict[str, dict] = {
    "chain_sum": {"name": "rg-decimal", "strip_commas": True},
    "products": {"name": "rg-decimal", "strip_commas": True},
    "basic_arithmetic": {"name": "rg-exact"},
    "leg_counting": {"name": "rg-exact"},
    "gsm_symbolic": {"name": "rg-gsm-symbolic"},
}


def _check(table: dict, spec: dict, what: str) -> Callable[[str | None, str], float]:
    if not isinstance(spec, dict) or spec.get("name") not in table:
        raise ValueError(f"{what} must name one of {sorted(table)}, got {spec!r}")
    params = {k: v for k, v in spec.items() if k != "name"}
    fn = table[spec["name"]]
    return lambda answer, reference: fn(answer, reference, **params)


# --- identity of a task set -------------------------------------------------------------------
def task_spec(task: Task) -> dict:
    """`{"name", "options"}` of a task: what, with size and seed, identifies its problem lists."""
    options = dict(getattr(task, "options", {}) or {})
    try:
        json.dumps(options)
    except TypeError as e:
        raise ValueError(f"task {task.name!r} has options that are not JSON: {options!r}") from e
    return {"name": task.name, "options": options}


def task_key(spec: dict, size: int, seed: int) -> str:
    """Canonical string key of `(spec, size, seed)` (sorted JSON)."""
    return json.dumps({"task": spec, "size": int(size), "seed": int(seed)}, sort_keys=True)


def _verifier_spec(task: Task) -> dict:
    if type(task).verify is not Task.verify:
        raise ValueError(
            f"task {task.name!r} ({type(task).__name__}) has its own verify(); add a file verifier "
            "for it to taskfile.VERIFIERS before writing it to a file"
        )
    return {"name": "answer-match"}


def _score_spec(problem: Problem) -> dict | None:
    dataset = problem.meta.get("source_dataset", problem.source)
    return dict(RG_SCORES[dataset]) if dataset in RG_SCORES else None


def _generators() -> dict:
    out = {}
    for dist in ("reasoning-gym", "champ-dataset"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


# --- writing and reading ----------------------------------------------------------------------
def _encode(o):
    if isinstance(o, Fraction):
        return {"__fraction__": str(o)}
    raise ValueError(f"meta holds a {type(o).__name__} ({o!r}), which a task file cannot store")


def _decode(d: dict):
    return Fraction(d["__fraction__"]) if set(d) == {"__fraction__"} else d


def _record(task: Task, p: Problem) -> dict:
    meta = json.loads(json.dumps(p.meta, default=_encode))
    return {
        "index": p.index,
        "question": p.question,
        "answer": p.answer,
        "steps": list(p.steps),
        "source": p.source,
        "meta": meta,
        "difficulty": meta.get("difficulty"),  # already JSON
        "prompt": task.student_messages(p),
        "views": {v: task.privileged_view(p, v) for v in ("answer", "solution")},
        "verifier": _verifier_spec(task),
        "score": _score_spec(p),
    }


def write_task_set(
    path: str | os.PathLike,
    task: Task,
    size: int,
    seed: int = 0,
    problems: list[Problem] | None = None,
) -> Path:
    """Write `task.problems(size, seed)` (or the given `problems` of that call) as JSONL.

    Returns:
        The path written (parents are created; the file is replaced atomically).
    """
    size = check_positive_int(size, "size")
    problems = task.problems(size, int(seed)) if problems is None else list(problems)
    if len(problems) != size:
        raise ValueError(f"problems has {len(problems)} items, size={size}")
    header = {
        "format": FORMAT,
        "version": VERSION,
        "task": task_spec(task),
        "size": size,
        "seed": int(seed),
        "generators": _generators(),
    }
    lines = [json.dumps(header, sort_keys=True)]
    lines += [json.dumps(_record(task, p), ensure_ascii=False, default=_encode) for p in problems]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


@dataclass(frozen=True)
class TaskSet:
    """A task-set file read back: its identity, problems and per-problem answer checks."""

    path: Path
    spec: dict
    size: int
    seed: int
    problems: tuple[Problem, ...]
    records: tuple[dict, ...]

    @property
    def key(self) -> str:
        return task_key(self.spec, self.size, self.seed)


def _header(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        first = f.readline()
    try:
        head = json.loads(first)
    except json.JSONDecodeError as e:
        raise ValueError(f"path {str(path)!r} is not a task-set file (bad header: {e})") from e
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise ValueError(f"path {str(path)!r} is not a task-set file (header {first[:80]!r})")
    if head.get("version") != VERSION:
        raise ValueError(f"path {str(path)!r} has version {head.get('version')!r}, want {VERSION}")
    return head


def read_task_set(path: str | os.PathLike) -> TaskSet:
    """Read a file written by `write_task_set` (checks its format, size and answer checks)."""
    path = Path(path)
    head = _header(path)
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    records = tuple(json.loads(line, object_hook=_decode) for line in lines if line.strip())
    if len(records) != head["size"]:
        raise ValueError(f"path {str(path)!r} holds {len(records)} problems, header says {head}")
    problems = []
    for r in records:
        _check(VERIFIERS, r["verifier"], "verifier")
        if r["score"] is not None:
            _check(SCORES, r["score"], "score")
        problems.append(
            Problem(
                r["question"], r["answer"], tuple(r["steps"]), r["source"], r["index"], r["meta"]
            )
        )
    return TaskSet(path, head["task"], head["size"], head["seed"], tuple(problems), records)


def _check_rendering(task: Task, ts: TaskSet) -> None:
    for p, r in zip(ts.problems, ts.records, strict=True):
        views = {v: task.privileged_view(p, v) for v in ("answer", "solution")}
        if task.student_messages(p) != r["prompt"] or views != r["views"]:
            raise ValueError(
                f"path {str(ts.path)!r}: the prompt or views of problem {p.index} differ from "
                "what this version of sdtheory renders; rewrite the file with this version"
            )


class FileTask(Task):
    """A task whose problems come from a task-set file (no generator is imported).

    `problems(size, seed)` returns the first `size` problems of the file: in file order for the
    seed the file was written with, in a `random.Random(seed)` permutation of the file for any
    other seed. `verify` and `score` use the checks the file names for each problem.
    """

    def __init__(self, path: str | os.PathLike):
        self.taskset = read_task_set(path)
        self.name = self.taskset.spec["name"]
        self.options = dict(self.taskset.spec["options"])
        _check_rendering(self, self.taskset)
        self._checks = {
            p.question: r for p, r in zip(self.taskset.problems, self.taskset.records, strict=True)
        }

    def problems(self, size: int, seed: int = 0) -> list[Problem]:
        size = check_positive_int(size, "size")
        pool = list(self.taskset.problems)
        if size > len(pool):
            raise ValueError(f"size must be <= {len(pool)} (the file's problems), got {size!r}")
        if int(seed) != self.taskset.seed:
            random.Random(int(seed)).shuffle(pool)
        return pool[:size]

    def _record_of(self, problem: Problem) -> dict:
        try:
            return self._checks[problem.question]
        except KeyError:
            raise ValueError(
                f"problem {problem.question[:60]!r} is not in this task file"
            ) from None

    def verify(self, completion: str, problem: Problem) -> float:
        """The file's verifier for `problem` on the answer extracted from `completion`."""
        fn = _check(VERIFIERS, self._record_of(problem)["verifier"], "verifier")
        return fn(extract_answer(completion), problem.answer)

    def score(self, completion: str, problem: Problem) -> float:
        """reasoning-gym's graded score of the extracted answer (see `SCORES`)."""
        spec = self._record_of(problem)["score"]
        if spec is None:
            raise ValueError(f"the task file has no score for problems of {problem.source!r}")
        return _check(SCORES, spec, "score")(extract_answer(completion), problem.answer)


# --- a directory of task sets answering Task.problems -----------------------------------------
class TaskStore:
    """The task-set files under a directory, indexed by `task_key` (headers are read eagerly)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"root must be a directory of task-set files, got {str(root)!r}")
        self._paths: dict[str, Path] = {}
        for path in sorted(self.root.rglob("*.jsonl")):
            head = _header(path)
            key = task_key(head["task"], head["size"], head["seed"])
            if key in self._paths:
                raise ValueError(f"{path} and {self._paths[key]} hold the same task set {key}")
            self._paths[key] = path
        self._loaded: dict[str, list[Problem]] = {}

    def keys(self) -> list[str]:
        return sorted(self._paths)

    def lookup(self, task: Task, size: int, seed: int, *, strict: bool = True):
        """The stored problems of `task.problems(size, seed)`; a miss raises (or is `None`)."""
        key = task_key(task_spec(task), size, seed)
        if key not in self._paths:
            if not strict:
                return None
            held = "\n  ".join(self.keys()) or "(none)"
            raise ValueError(
                f"task set {key} is not among the task files under {self.root}; they hold:\n  "
                f"{held}\nrebuild them (sdtheory bundle) with this version of sdtheory"
            )
        if key not in self._loaded:
            ts = read_task_set(self._paths[key])
            _check_rendering(task, ts)
            self._loaded[key] = list(ts.problems)
        return list(self._loaded[key])


@contextlib.contextmanager
def use_task_dir(root: str | os.PathLike, *, strict: bool = True) -> Iterator[TaskStore]:
    """Answer every `Task.problems` call from the task-set files under `root` while active.

    With `strict=True` a task set that is not there raises (air-gapped runs must not fall back to
    the generators); with `strict=False` such calls generate as usual.
    """
    store = TaskStore(root)
    previous = set_problem_source(
        lambda task, size, seed: store.lookup(task, size, seed, strict=strict)
    )
    try:
        yield store
    finally:
        set_problem_source(previous)
