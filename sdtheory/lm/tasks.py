"""Verifiable reasoning tasks with privileged views, over reasoning-gym and champ-dataset.

A task turns a generator into `Problem`s (question, reference answer, worked solution where one
exists) and supplies what the on-policy trainers need:

* `Task.verify(completion, problem)` -> reward in {0, 1}, by robust answer extraction
  (`extract_answer`: `\\boxed{}`, `####`, "answer is", "Answer:", else the last number) and
  normalised comparison (numbers compared as exact rationals);
* `student_messages(problem)` -- the question alone (what the student sees);
* `privileged_view(problem, view, rho)` -- the text of a privileged view: `"answer"` (the final
  answer), `"solution"` (the worked solution) or `"partial"` (the first
  $\\lfloor\\rho m\\rfloor$ of the $m$ solution steps); the teacher prompts built from it live
  in `sdtheory.lm.teachers`;
* `chat_prompt_ids(tokenizer, messages, system=None)` -- the chat template with the generation
  prompt (and an explicit system message when `system` is given).

Available tasks (`make_task(name, **options)`): `chain_sum` (reasoning-gym, default 2 terms of
1-2 digits, with a derived step-by-step solution), `basic_arithmetic` (reasoning-gym),
`gsm_symbolic` (reasoning-gym; worked solution = its `answer_cot`), `champ` (champ-dataset v0,
270 competition problems with step solutions), `graded_sum` (chain sums of graded difficulty,
from 2 one-digit terms up to several multi-digit terms, mixed in one set: `GradedSumTask`) and
`graded_sum_easy` (its one-digit levels).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fractions import Fraction

from ..core._checks import check_positive_int

__all__ = [
    "VIEWS",
    "Problem",
    "Task",
    "chat_prompt_ids",
    "extract_answer",
    "make_task",
    "normalize_answer",
    "set_problem_source",
    "TASKS",
    "GradedSumTask",
]

VIEWS = ("answer", "solution", "partial")

# Measured with SmolLM2-135M-Instruct, greedy, 32 held-out 2-term chain_sum problems: this line
# gives 10/32 correct; no line 8/32; "End your response with 'The answer is N.'" only 1/32.
ANSWER_FORMAT = "Give the final answer as a number."


@dataclass(frozen=True)
class Problem:
    """One problem: what the student sees (`question`) and what only the teacher may see."""

    question: str
    answer: str
    steps: tuple[str, ...] = ()
    source: str = ""
    index: int = 0
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def solution(self) -> str | None:
        """The worked solution (steps joined by newlines), or `None` when there is none."""
        return "\n".join(self.steps) if self.steps else None


_NUM = r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+"
_PATTERNS = [
    re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}"),
    re.compile(r"####\s*([^\n]+)"),
    re.compile(r"answer is[:\s]*\$?\s*([^\n]+?)\s*\$?\s*(?:\.\s|\.$|$|\n)", re.IGNORECASE),
    re.compile(r"answer\s*[:=]\s*\$?\s*([^\n]+?)\s*\$?\s*(?:\.\s|\.$|$|\n)", re.IGNORECASE),
]


def extract_answer(text: str) -> str | None:
    """The final answer stated in a completion, or `None`.

    Looks, in this order, for the last `\\boxed{...}`, the last `#### x`, the last "answer is x",
    the last "answer: x"; falls back to the last number in the text.

    Examples:
        >>> extract_answer("12 + 30 = 42, so the answer is 42.")
        '42'
        >>> extract_answer("We get \\\\boxed{7/2} in the end")
        '7/2'
        >>> extract_answer("first 3 then -1,250.5") == "-1,250.5"
        True
        >>> extract_answer("no digits here") is None
        True
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    for pat in _PATTERNS:
        hits = pat.findall(text)
        if hits and hits[-1].strip():
            return hits[-1].strip()
    nums = re.findall(_NUM, text)
    return nums[-1] if nums else None


def _as_number(s: str) -> Fraction | None:
    s = s.replace(",", "").replace(" ", "").rstrip(".")
    m = re.fullmatch(r"(-?\d+(?:\.\d+)?|-?\.\d+)(?:/(\d+))?", s)
    if not m:
        return None
    try:
        value = Fraction(m.group(1))
        return value / int(m.group(2)) if m.group(2) else value
    except (ValueError, ZeroDivisionError):
        return None


def normalize_answer(s: str) -> str:
    """Canonical string form: numbers as reduced rationals, else lower-cased without spaces/`$`."""
    s = s.strip().strip("$").strip()
    s = re.sub(r"\\text\{([^{}]*)\}", r"\1", s)
    num = _as_number(s)
    if num is None:
        # a leading "x =" or trailing units-free number still counts as that number
        tail = re.findall(_NUM, s)
        if len(tail) == 1 and re.fullmatch(r"[a-zA-Z_]\w*\s*=\s*" + re.escape(tail[0]), s):
            num = _as_number(tail[0])
    if num is not None:
        return str(num)
    return re.sub(r"\s+|\\,|\\!|\$", "", s).rstrip(".").lower()


# Where `Task.problems` looks before generating: `source(task, size, seed) -> list[Problem] | None`
# (installed by `sdtheory.lm.taskfile.use_task_dir`, so that a run reads pre-generated task files
# where the generators cannot be imported). None: always generate.
_problem_source = None


def set_problem_source(source):
    """Install `source(task, size, seed) -> list[Problem] | None` in front of every generator.

    `Task.problems` returns what the source returns unless it is `None` (then it generates). Pass
    `None` to remove it. Returns the previous source. `taskfile.use_task_dir` is the usual caller.
    """
    global _problem_source
    if source is not None and not callable(source):
        raise ValueError(f"source must be callable or None, got {source!r}")
    previous, _problem_source = _problem_source, source
    return previous


class Task:
    """A family of verifiable problems with privileged views (see the module docstring).

    Subclasses implement `_generate(size, seed) -> list[Problem]`.
    """

    name = "task"

    def problems(self, size: int, seed: int = 0) -> list[Problem]:
        """`size` distinct problems (by question), deterministic in `seed`."""
        size = check_positive_int(size, "size")
        if _problem_source is not None:
            stored = _problem_source(self, size, int(seed))
            if stored is not None:
                return stored
        return self._dedup(self._generate(size, int(seed)), size)

    def split(self, n_train: int, n_eval: int, seed: int = 0):
        """Disjoint train and held-out lists (no question appears in both)."""
        if int(n_eval) < 0:
            raise ValueError(f"n_eval must be >= 0, got {n_eval!r}")
        pool = self.problems(int(n_train) + int(n_eval), seed)
        return pool[: int(n_train)], pool[int(n_train) :]

    def _dedup(self, items: list[Problem], size: int) -> list[Problem]:
        seen, out = set(), []
        for p in items:
            if p.question not in seen:
                seen.add(p.question)
                out.append(p)
        if len(out) < size:
            raise ValueError(f"{self.name}: only {len(out)} distinct problems, size={size} asked")
        return out[:size]

    def _generate(self, size: int, seed: int) -> list[Problem]:  # pragma: no cover
        raise NotImplementedError

    # --- verification -------------------------------------------------------------------------
    def verify(self, completion: str, problem: Problem) -> float:
        """Reward 1.0 if the extracted final answer equals the reference answer, else 0.0."""
        got = extract_answer(completion)
        if got is None:
            return 0.0
        return float(normalize_answer(got) == normalize_answer(problem.answer))

    # --- prompts ------------------------------------------------------------------------------
    def student_messages(self, problem: Problem) -> list[dict]:
        """Chat messages the student sees: the question and the answer format, nothing else."""
        return [{"role": "user", "content": f"{problem.question}\n{ANSWER_FORMAT}"}]

    def privileged_view(self, problem: Problem, view: str = "solution", rho: float = 0.5) -> str:
        """Text of a privileged view: `answer`, `solution`, or `partial` (first floor(rho*m) steps).

        Problems without a worked solution fall back to the answer for `solution`, and `partial`
        of such a problem is the answer at rho=1 and nothing useful below.
        """
        if view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
        if not (0.0 <= float(rho) <= 1.0) or math.isnan(float(rho)):
            raise ValueError(f"rho must lie in [0, 1], got {rho!r}")
        answer_text = f"The final answer is {problem.answer}."
        if view == "answer":
            return answer_text
        steps = problem.steps or (answer_text,)
        if view == "solution":
            return "\n".join(steps)
        shown = steps[: math.floor(float(rho) * len(steps))]
        if not shown:
            return "The first steps of the solution are withheld."
        return "\n".join(shown) + ("\n..." if len(shown) < len(steps) else "")


def chat_prompt_ids(tokenizer, messages: list[dict], system: str | None = None) -> list[int]:
    """Token ids of `messages` through the tokenizer's chat template, with the generation prompt.

    `system`: a system message put first (`None`: none is added, and the template may insert
    its own default, as SmolLM2's does).
    """
    if system is not None:
        messages = [{"role": "system", "content": system}, *messages]
    out = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    if hasattr(out, "keys"):  # transformers 5 returns a BatchEncoding
        out = out["input_ids"]
    out = list(out)
    if out and isinstance(out[0], list):
        out = out[0]
    return [int(i) for i in out]


def _chain_steps(expression: str) -> tuple[str, ...]:
    """Left-to-right running sums of `a op b op c ...` ([derived] worked solution for chain_sum)."""
    toks = expression.split()
    acc = int(toks[0])
    steps = []
    for op, b in zip(toks[1::2], toks[2::2], strict=True):
        new = acc + int(b) if op == "+" else acc - int(b)
        steps.append(f"{acc} {op} {b} = {new}")
        acc = new
    steps.append(f"The answer is {acc}.")
    return tuple(steps)


class ReasoningGymTask(Task):
    """A reasoning-gym generator; options go to `reasoning_gym.create_dataset`."""

    def __init__(self, name: str, **options):
        self.name = name
        self.options = options

    def _generate(self, size: int, seed: int) -> list[Problem]:
        import reasoning_gym

        # oversample so that duplicates (frequent for small digit ranges) can be dropped
        ds = reasoning_gym.create_dataset(self.name, size=2 * size + 16, seed=seed, **self.options)
        return [self._problem(ds[i], i) for i in range(len(ds))]

    def _problem(self, entry: dict, i: int) -> Problem:
        meta = entry.get("metadata", {})
        steps: tuple[str, ...] = ()
        if "answer_cot" in meta:
            steps = tuple(s for s in meta["answer_cot"].splitlines() if s.strip())
        elif self.name == "chain_sum" and "expression" in meta:
            steps = _chain_steps(meta["expression"])
        return Problem(entry["question"], str(entry["answer"]), steps, self.name, i, meta)


class ChampTask(Task):
    """champ-dataset v0: 270 competition problems with final answers and step solutions."""

    name = "champ"

    def _generate(self, size: int, seed: int) -> list[Problem]:
        import random

        import champ_dataset

        ds = champ_dataset.load("v0")
        keys = sorted(ds.problems)
        random.Random(seed).shuffle(keys)
        out = []
        for i, k in enumerate(keys):
            p = ds.problems[k]
            steps = tuple(getattr(s, "text", None) or s._text for s in p.solution.steps)
            out.append(Problem(p.text, str(p.answer), steps, "champ", i, {"id": k}))
        return out


class GradedSumTask(Task):
    """Chain sums of graded difficulty in one set, generated here (no reasoning-gym).

    Each level is `(terms, digits, ops)`: that many terms of exactly that many digits (1-digit
    terms are 1-9), joined by `+` (`ops="+"`) or by `+`/`-` drawn at random (`ops="+-"`). The
    question has reasoning-gym `chain_sum`'s wording and the worked solution its running sums.
    Problems are drawn level by level in proportion to `weights` (equal by default) and
    interleaved, so any prefix of the list holds every level in about the same proportions;
    `Problem.meta["level"]` is the level's index. Calibrated for SmolLM2-135M-Instruct in
    `sdtheory.lm.validate.paced`, where the levels span its pass rates from always to never.
    """

    name = "graded_sum"
    QUESTION = "Calculate {}."

    def __init__(
        self,
        levels: tuple[tuple[int, int, str], ...] = (
            (2, 1, "+"),
            (2, 1, "+-"),
            (3, 1, "+-"),
            (2, 2, "+-"),
            (4, 3, "+-"),
        ),
        weights: tuple[float, ...] | None = None,
    ):
        levels = tuple((int(t), int(d), str(o)) for t, d, o in levels)
        if not levels or any(t < 2 or d < 1 or o not in ("+", "+-") for t, d, o in levels):
            raise ValueError(
                f"levels must be (terms >= 2, digits >= 1, '+' or '+-') triples, got {levels!r}"
            )
        w = tuple(float(x) for x in (weights or (1.0,) * len(levels)))
        if len(w) != len(levels) or any(not (x > 0 and math.isfinite(x)) for x in w):
            raise ValueError(f"weights must be {len(levels)} positive numbers, got {weights!r}")
        self.levels, self.weights = levels, w

    def _one(self, rng, terms: int, digits: int, ops: str) -> Problem:
        lo = 1 if digits == 1 else 10 ** (digits - 1)
        nums = [rng.randrange(lo, 10**digits) for _ in range(terms)]
        signs = [rng.choice(ops) for _ in range(terms - 1)]
        expr = " ".join([str(nums[0])] + [f"{o} {n}" for o, n in zip(signs, nums[1:], strict=True)])
        steps = _chain_steps(expr)
        answer = steps[-1].removeprefix("The answer is ").rstrip(".")
        return Problem(
            self.QUESTION.format(expr), answer, steps, self.name, 0, {"expression": expr}
        )

    def _generate(self, size: int, seed: int) -> list[Problem]:
        import random

        tot = sum(self.weights)
        keyed = []
        for lvl, ((terms, digits, ops), w) in enumerate(
            zip(self.levels, self.weights, strict=True)
        ):
            rng = random.Random(seed * 1_000_003 + lvl)
            n = math.ceil(2 * size * w / tot) + 8  # oversampled: duplicates are dropped later
            for j in range(n):
                p = self._one(rng, terms, digits, ops)
                keyed.append(((j + 0.5) * tot / w, lvl, p))
        keyed.sort(key=lambda t: (t[0], t[1]))
        return [
            Problem(p.question, p.answer, p.steps, p.source, i, {**p.meta, "level": lvl})
            for i, (_, lvl, p) in enumerate(keyed)
        ]


TASKS = {
    "chain_sum": lambda **kw: ReasoningGymTask(
        "chain_sum", **{"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2, **kw}
    ),
    "basic_arithmetic": lambda **kw: ReasoningGymTask("basic_arithmetic", **kw),
    "gsm_symbolic": lambda **kw: ReasoningGymTask("gsm_symbolic", **kw),
    "champ": lambda **kw: ChampTask(**kw),
    "graded_sum": lambda **kw: GradedSumTask(**kw),
    # one-digit sums only: SmolLM2-135M-Instruct starts between 20 % and 60 % held-out
    "graded_sum_easy": lambda **kw: GradedSumTask(
        **{"levels": ((2, 1, "+"), (2, 1, "+-"), (3, 1, "+")), **kw}
    ),
}


def make_task(name: str, **options) -> Task:
    """A task by name (`chain_sum`, `basic_arithmetic`, `gsm_symbolic`, `champ`, `graded_sum`,
    `graded_sum_easy`)."""
    if name not in TASKS:
        raise ValueError(f"name must be one of {sorted(TASKS)}, got {name!r}")
    return TASKS[name](**options)
