r"""Skill-SD's skill memory: skills summarised from completed trajectories, retrieved by UCB.

[paper: Skill-SD abstract] "Completed trajectories are summarized into compact natural language
skills that describe successful behaviors, mistakes, and workflows. These skills serve as dynamic
privileged information conditioning only the teacher"; retrieval is "a lightweight UCB bandit"
[secondary: a third-party summary of arXiv:2604.10674]. The paper's summariser (an LLM), its
bandit reward and its memory rules were not retrieved; everything below is ours:

* `summarize`: a template summary of one trajectory, numbers replaced by `N` so that it carries
  over to other problems: "What worked: ..." for a success, "Mistake to avoid (diagnosis): ..."
  for a failure (no final answer, a tool call that was not arithmetic, no tool used, or a wrong
  answer).
* `SkillMemory`: each distinct skill is an arm of a UCB1 bandit,
  $\mathrm{UCB}_i=\bar r_i+c\sqrt{2\ln N/n_i}$ ($n_i$ pulls of arm $i$, $N$ pulls in all, an
  unpulled arm first); `select` picks the top $m$ arms for each problem of a step in turn,
  counting the picks already made this step, so that one step spreads over the arms; ties go to
  the older skill. When full, a new skill replaces the pulled arm with the lowest mean reward
  (none pulled yet: the new skill is dropped).
* The reward of an arm (`SkillSD.loss`) is how much its skill-conditioned teacher prefers the
  successful rollouts: $(2R-1)\cdot\mathrm{mean}_t(\log q_{\rm skill}(y_t)-\log p(y_t))$ over the
  rollout's assistant tokens, $R\in\{0,1\}$ its reward.
"""

from __future__ import annotations

import math
import re

from ..tasks import extract_answer

__all__ = ["SkillMemory", "summarize"]


def _abstract(text: str, max_chars: int) -> str:
    out = re.sub(r"\d+(?:\.\d+)?", "N", " ".join(text.split()))
    return out if len(out) <= max_chars else out[: max_chars - 3] + "..."


def summarize(text: str, reward: float, *, tool: bool = False, max_chars: int = 160) -> str:
    """A one-line skill from a completed trajectory (see the module; ours).

    Examples:
        >>> summarize("<<3 + 4>> = 7\\nThe answer is 7.", 1.0, tool=True)
        'What worked: <<N + N>> = N The answer is N.'
        >>> summarize("I think 12", 0.0, tool=True)
        'Mistake to avoid (no calculator call, a wrong answer): I think N'
    """
    body = _abstract(text, max_chars)
    if reward >= 0.5:
        return f"What worked: {body}"
    why = []
    if tool and "<<" not in text:
        why.append("no calculator call")
    if tool and "= error" in text:
        why.append("a calculator call that was not arithmetic")
    why.append("no final answer" if extract_answer(text) is None else "a wrong answer")
    return f"Mistake to avoid ({', '.join(why)}): {body}"


class SkillMemory:
    """Skills as arms of a UCB1 bandit (see the module). `c` is the exploration coefficient.

    Examples:
        >>> mem = SkillMemory(capacity=3, c=1.0)
        >>> [mem.add(t) for t in ("a", "b", "a")]
        [True, True, False]
        >>> mem.select(2, 1)  # unpulled arms first, then the next-best by UCB
        [[0], [1]]
        >>> mem.update([0, 1], [1.0, 0.0]); mem.select(1, 1)
        [[0]]
    """

    def __init__(self, capacity: int = 32, c: float = 1.0):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be an integer >= 1, got {capacity!r}")
        if not 0 <= c < math.inf:
            raise ValueError(f"c must be a finite number >= 0, got {c!r}")
        self.capacity, self.c = capacity, float(c)
        self.texts: list[str] = []
        self.counts: list[int] = []
        self.sums: list[float] = []

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def total(self) -> int:
        return sum(self.counts)

    def means(self) -> list[float]:
        return [s / n if n else 0.0 for s, n in zip(self.sums, self.counts, strict=True)]

    def ucb(self, extra: list[int] | None = None) -> list[float]:
        r"""$\bar r_i + c\sqrt{2\ln N/n_i}$ with `extra` picks added to the counts (inf if 0)."""
        n = [a + b for a, b in zip(self.counts, extra or [0] * len(self), strict=True)]
        log_total = math.log(max(sum(n), 1))
        return [
            math.inf if k == 0 else s / k + self.c * math.sqrt(2.0 * log_total / k)
            for s, k in zip(self.sums, n, strict=True)
        ]

    def add(self, text: str) -> bool:
        """Add a new skill; `False` if it is already there or the memory is full of unpulled arms."""
        if text in self.texts:
            return False
        if len(self) >= self.capacity:
            pulled = [i for i, k in enumerate(self.counts) if k > 0]
            if not pulled:
                return False
            means = self.means()
            worst = min(pulled, key=lambda i: (means[i], i))
            for lst in (self.texts, self.counts, self.sums):
                del lst[worst]
        self.texts.append(text)
        self.counts.append(0)
        self.sums.append(0.0)
        return True

    def select(self, num: int, m: int) -> list[list[int]]:
        """For each of `num` problems in turn, the `m` arms with the highest UCB (fewer if the
        memory is smaller), counting this step's earlier picks as pulls."""
        picks, extra = [], [0] * len(self)
        for _ in range(int(num)):
            u = self.ucb(extra)
            chosen = sorted(range(len(self)), key=lambda i: (-u[i], i))[: int(m)]
            for i in chosen:
                extra[i] += 1
            picks.append(chosen)
        return picks

    def update(self, arms: list[int], rewards: list[float]) -> None:
        """One pull of each arm in `arms` with the matching reward."""
        for i, r in zip(arms, rewards, strict=True):
            if not math.isfinite(r):
                raise ValueError(f"rewards must be finite, got {r!r} for arm {i}")
            self.counts[i] += 1
            self.sums[i] += float(r)

    def state_dict(self) -> dict:
        return {"texts": list(self.texts), "counts": list(self.counts), "sums": list(self.sums)}

    def load_state_dict(self, state: dict) -> None:
        self.texts = list(state["texts"])
        self.counts = [int(x) for x in state["counts"]]
        self.sums = [float(x) for x in state["sums"]]
