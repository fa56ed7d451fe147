r"""A multi-turn tool environment: a calculator over the arithmetic tasks (`--env calculator`).

The assistant writes a tool call `<<3 + 4>>`; generation pauses at the call, the environment
appends its output ` = 7` plus a newline, and the assistant continues from there, until it ends
its turn (end of turn), runs out of its token budget (`--max-new-tokens`, generated tokens
only) or reaches `--max-turns` tool calls. One rollout is one completion block holding the
assistant spans and the tool outputs between them (tool-integrated reasoning, as in the SOD code
[code: YoungZ365/SOD@110c4b8, `response_mask` 0 on tool tokens]):

* `completion_mask` marks every token (the policy and every teacher attend to the tool outputs);
* `loss_mask` marks the assistant's own tokens only: no loss ever trains on a tool output;
* the *steps* of a rollout are the maximal runs of `loss_mask` (the assistant spans between
  tool outputs; `step_spans`).

The task is wrapped (`ToolTask`): the student prompt gains one line on how to call the tool, and
verification reads the transcript without the tool outputs (a tool result is never the
assistant's answer). Worked solutions become multi-turn demonstrations (`demonstration`): every
solution step `LHS = RHS` whose left side is arithmetic becomes a tool call `<<LHS>>` followed by
the tool's output; other steps stay text. The call syntax echoes GSM8K's calculator annotations
`<<48/2=24>>`; the format here, the instruction line and the budget rules are ours.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Sequence
from fractions import Fraction

import torch

from .rollout import Rollouts, sample
from .tasks import Problem, Task

__all__ = [
    "ENVS",
    "CalculatorEnv",
    "ToolTask",
    "make_env",
    "multiturn_sample",
    "step_spans",
    "with_env",
]

_CALL = re.compile(r"<<([^<>]*)>>")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
_STEP = re.compile(r"^\s*([-+*/().\d\s]+?)\s*=\s*\S+\s*$")


def _evaluate(node) -> Fraction:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _evaluate(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in (*_OPS, ast.Div):
        a, b = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Div):
            return a / b  # ZeroDivisionError is caught by the caller
        return _OPS[type(node.op)](a, b)
    raise ValueError("not arithmetic")


class CalculatorEnv:
    """Exact rational arithmetic on `+ - * /` and parentheses; anything else is an error.

    Examples:
        >>> env = CalculatorEnv()
        >>> env.call("First <<3 + 4>> then")
        '3 + 4'
        >>> env.respond("3 + 4"), env.respond("7 / 2"), env.respond("2 ** 8")
        (' = 7\\n', ' = 3.5\\n', ' = error\\n')
    """

    name = "calculator"
    instructions = "You may use a calculator: write <<expression>> and its value is appended."

    def call(self, text: str) -> str | None:
        """The expression of the first complete tool call in `text`, else `None`."""
        m = _CALL.search(text)
        return None if m is None else m.group(1)

    def respond(self, expression: str) -> str:
        """The tool output appended after a call: ` = value` and a newline (`error` if the
        expression is not arithmetic); a trailing `= ...` inside the call is ignored."""
        expr = expression.split("=")[0].strip()
        try:
            if len(expr) > 64:
                raise ValueError("too long")
            v = _evaluate(ast.parse(expr, mode="eval"))
        except (SyntaxError, ValueError, ZeroDivisionError, RecursionError):
            return " = error\n"
        text = str(v.numerator) if v.denominator == 1 else f"{float(v):.6g}"
        return f" = {text}\n"

    def strip_outputs(self, transcript: str) -> str:
        """`transcript` without the tool outputs that follow each call."""
        return re.sub(r"(<<[^<>]*>>) = [^\n]*\n", r"\1", transcript)

    def demonstration(self, problem: Problem) -> list[tuple[str, bool]]:
        """A worked solution as `(text, is_assistant)` segments (see the module docstring)."""
        steps = problem.steps or (f"The answer is {problem.answer}.",)
        out: list[tuple[str, bool]] = []
        for s in steps:
            m = _STEP.match(s)
            if m and re.search(r"\d\s*[-+*/]\s*\(?\s*-?\d", m.group(1)):
                expr = " ".join(m.group(1).split())
                out += [(f"<<{expr}>>", True), (self.respond(expr), False)]
            else:
                out.append((s + "\n", True))
        return out


ENVS = {"calculator": CalculatorEnv}


def make_env(name: str):
    """The environment called `name`, or `None` for `''` (single-turn)."""
    if name == "":
        return None
    if name not in ENVS:
        raise ValueError(f"env must be '' or one of {tuple(ENVS)}, got {name!r}")
    return ENVS[name]()


class ToolTask(Task):
    """`task` with a tool: the student prompt says how to call it; `verify` ignores tool outputs;
    everything else is the wrapped task's."""

    def __init__(self, task: Task, env):
        self.task, self.env = task, env
        self.name = f"{getattr(task, 'name', 'task')}+{env.name}"

    def __getattr__(self, name):
        return getattr(self.__dict__["task"], name)

    def problems(self, size: int, seed: int = 0) -> list[Problem]:
        return self.task.problems(size, seed)

    def split(self, n_train: int, n_eval: int, seed: int = 0):
        return self.task.split(n_train, n_eval, seed)

    def privileged_view(self, problem, view="solution", rho=0.5) -> str:
        return self.task.privileged_view(problem, view, rho)

    def student_messages(self, problem: Problem) -> list[dict]:
        msgs = [dict(m) for m in self.task.student_messages(problem)]
        msgs[-1]["content"] = f"{msgs[-1]['content']}\n{self.env.instructions}"
        return msgs

    def verify(self, completion: str, problem: Problem) -> float:
        return self.task.verify(self.env.strip_outputs(completion), problem)


def with_env(task: Task, name: str) -> Task:
    """`task` itself for `name=''`, else `ToolTask(task, make_env(name))`."""
    env = make_env(name)
    return task if env is None else ToolTask(task, env)


def step_spans(mask: torch.Tensor) -> list[list[tuple[int, int]]]:
    """Per row, the `(start, stop)` of each maximal run of True in `mask` `(N, T)` (the steps).

    Examples:
        >>> step_spans(torch.tensor([[1, 1, 0, 1, 0], [0, 0, 0, 0, 0]]).bool())
        [[(0, 2), (3, 4)], []]
    """
    out = []
    for row in mask.bool().cpu().tolist():
        spans, start = [], None
        for t, on in enumerate([*row, False]):
            if on and start is None:
                start = t
            elif not on and start is not None:
                spans.append((start, t))
                start = None
        out.append(spans)
    return out


def _cut_at_call(tokenizer, env, ids: list[int]) -> int | None:
    """Number of leading tokens that first contain a complete tool call, else `None`."""
    if env.call(tokenizer.decode(ids, skip_special_tokens=True)) is None:
        return None
    for t in range(1, len(ids) + 1):
        if env.call(tokenizer.decode(ids[:t], skip_special_tokens=True)) is not None:
            return t
    return None  # pragma: no cover - the full text has a call


def multiturn_sample(
    model,
    tokenizer,
    env,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    max_turns: int,
    stop_token_ids: Sequence[int],
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    row_seeds: Sequence[int] | None = None,
    k: int = 1,
    sampler: Callable[..., Rollouts] = sample,
) -> Rollouts:
    """`k` multi-turn rollouts per prompt in `env` (see the module docstring).

    Each turn samples every unfinished row with `sampler` (default: `rollout.sample`, row seeds
    `row_seed * (max_turns + 1) + turn`, so a row's randomness is its own) and cuts it after its
    first complete tool call; the tool output tokens get log-probability 0 and `loss_mask` False.
    A row's generated tokens never exceed `max_new_tokens`; a row stops at end of turn, at its
    budget, or after `max_turns` tool calls (its last turn then ends as sampled).
    """
    rows = [list(p) for p in prompts for _ in range(int(k))]
    n = len(rows)
    seeds = list(range(n)) if row_seeds is None else [int(s) for s in row_seeds]
    if len(seeds) != n:
        raise ValueError(f"row_seeds must have one entry per row ({n}), got {len(seeds)}")
    if int(max_turns) < 0:
        raise ValueError(f"max_turns must be >= 0, got {max_turns!r}")
    stops = {int(s) for s in stop_token_ids}
    parts: list[list[tuple[list[int], list[float], list[float], bool]]] = [[] for _ in range(n)]
    used, live = [0] * n, list(range(n))
    for turn in range(int(max_turns) + 1):
        if not live:
            break
        ctx = [rows[i] + [t for p in parts[i] for t in p[0]] for i in live]
        budget = max(max_new_tokens - used[i] for i in live)
        ro = sampler(
            model,
            ctx,
            max_new_tokens=budget,
            stop_token_ids=list(stops),
            pad_id=tokenizer.pad_token_id,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            row_seeds=[seeds[i] * (int(max_turns) + 1) + turn for i in live],
        )
        still = []
        for j, i in enumerate(live):
            m = ro.completion_mask[j].bool()
            ids = ro.completions[j][m].tolist()[: max_new_tokens - used[i]]
            cut = _cut_at_call(tokenizer, env, ids) if turn < max_turns else None
            ids = ids if cut is None else ids[:cut]
            lp = ro.logprobs[j][m].tolist()[: len(ids)]
            slp = ro.sample_logprobs[j][m].tolist()[: len(ids)]
            parts[i].append((ids, lp, slp, True))
            used[i] += len(ids)
            if cut is not None:
                out = env.respond(env.call(tokenizer.decode(ids, skip_special_tokens=True)))
                tool = list(tokenizer(out, add_special_tokens=False)["input_ids"])
                parts[i].append((tool, [0.0] * len(tool), [0.0] * len(tool), False))
                if used[i] < max_new_tokens:
                    still.append(i)
        live = still
    return _assemble(rows, parts, tokenizer.pad_token_id, k, model)


def _assemble(rows, parts, pad_id, k, model) -> Rollouts:
    device = next(model.parameters()).device
    width = max(1, max(sum(len(p[0]) for p in ps) for ps in parts))
    n = len(rows)
    comp = torch.full((n, width), int(pad_id), dtype=torch.long)
    cmask = torch.zeros((n, width), dtype=torch.bool)
    lmask = torch.zeros((n, width), dtype=torch.bool)
    lps, slps = torch.zeros((n, width)), torch.zeros((n, width))
    for i, ps in enumerate(parts):
        t = 0
        for ids, lp, slp, trained in ps:
            s = slice(t, t + len(ids))
            comp[i, s], cmask[i, s], lmask[i, s] = (
                torch.tensor(ids, dtype=torch.long),
                True,
                trained,
            )
            lps[i, s], slps[i, s] = torch.tensor(lp), torch.tensor(slp)
            t += len(ids)
    group = torch.arange(n // int(k)).repeat_interleave(int(k))
    return Rollouts(
        rows,
        comp.to(device),
        cmask.to(device),
        lps.to(device),
        slps.to(device),
        group.to(device),
        loss_mask=lmask.to(device),
    )
