r"""The self-distillation method family on the on-policy trainer: the method-specific pieces.

Each method is the trainer's loop (sample $k$ completions per problem, verify, score with a
teacher, one optimiser step) plus one small piece defined here as a pure function or a small
stateful object, tested on hand-made inputs (`tests/lm/test_methods.py`):

| method | piece | source |
|---|---|---|
| `paced` | per-problem weight $w(\hat p)=\hat p^{a}(1-\hat p)^{b}$ from the student's own pass rates, re-estimated every step (`paced_weights`, `PassRateTable`); two-stage FKL $\to$ RKL (`kl_direction`) | paper (abstract) + ours |
| `taid` | interpolated target $\mathrm{softmax}((1-t)\,\mathrm{sg}(z_s)+t z_T)$ from a separate teacher, `TAIDSchedule` stepped once per optimiser step (`taid_per_token`) | code (SakanaAI/TAID) |
| `sdpo` | teacher reprompted with a *successful sibling* rollout (`successful_siblings`, `sdpo_messages`); no sibling $\Rightarrow$ no loss; clipped importance ratio (`importance_weights`); EMA teacher | code (lasgroup/SDPO) |
| `srpo` | correct $\to$ GRPO, failed with a teacher $\to$ SDPO (`srpo_routes`); token weights $e^{-\beta_H H(q_t)}$ normalised to mean 1 (`entropy_weights`) | third-party re-implementations |
| `avsd` | consensus (geometric-mean) target over privileged views plus the gated Jensen residual (`avsd_target`), sampled reverse KL | code (duykhuongnguyen/AVSD) |
| `atesd` | prefix-of-solution view (`prefix_view`), reveal ratio $\rho\sim\mathrm{Beta}$ from a learned controller held for $H$ steps, REINFORCE on a discounted learning-progress reward (`ExposureController`, `learning_progress`) | paper + third-party review; hyper-parameters ours |

`method_loss` builds each method's loss inside `sdtheory.lm.trainers.Trainer.train_step`.
All of them use the plain (non-fused) logits path.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..theory.paced import beta_kernel_weight, pass_rate
from ..theory.taid import TAIDSchedule
from .rollout import completion_logits
from .tasks import ANSWER_FORMAT, TEACHER_INTRO, TEACHER_OUTRO, Problem, Task, chat_prompt_ids

__all__ = [
    "ExposureController",
    "NEW_METHODS",
    "PassRateTable",
    "avsd_target",
    "entropy_weights",
    "importance_weights",
    "kl_direction",
    "learning_progress",
    "method_loss",
    "paced_weights",
    "prefix_view",
    "sdpo_messages",
    "srpo_routes",
    "successful_siblings",
    "taid_per_token",
]

NEW_METHODS = ("paced", "taid", "sdpo", "srpo", "avsd", "atesd")

SDPO_OUTRO = "Correctly solve the original question."  # SDPO's reprompt template [code]


# ----------------------------------------------------------------------------- PACED
def paced_weights(
    successes, trials, alpha: float = 1.0, beta: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    r"""Pass rates $\hat p=S/K$ and PACED weights $w=\hat p^{\alpha}(1-\hat p)^{\beta}$.

    [paper: PACED abstract; `sdtheory.theory.paced`]. Problems the student always or never solves
    get weight 0 (for $\alpha,\beta>0$).

    Examples:
        >>> p, w = paced_weights([0, 1, 2, 4], 4)
        >>> bool(np.allclose(w, [0.0, 0.25 * 0.75, 0.25, 0.0]))
        True
    """
    p = pass_rate(successes, trials)
    return p, beta_kernel_weight(p, alpha, beta)


class PassRateTable:
    r"""Per-problem pass-rate estimates, re-estimated as training goes.

    `update(ids, p_now)` sets $\hat p_i \leftarrow \lambda\,\hat p_i + (1-\lambda)\,p_i^{\rm now}$
    for problems seen before and $\hat p_i \leftarrow p_i^{\rm now}$ on first sight ($\lambda$ =
    `memory`; 0 = the current rollouts only). The memory is ours (PACED's re-estimation rule was
    not retrieved).

    Examples:
        >>> t = PassRateTable(memory=0.5)
        >>> t.update([3], [1.0]).tolist(), t.update([3], [0.0]).tolist()
        ([1.0], [0.5])
    """

    def __init__(self, memory: float = 0.0):
        if not 0.0 <= float(memory) < 1.0:
            raise ValueError(f"memory must lie in [0, 1), got {memory!r}")
        self.memory = float(memory)
        self.table: dict[int, float] = {}

    def update(self, ids, p_now) -> np.ndarray:
        out = []
        for i, p in zip(ids, np.asarray(p_now, dtype=float), strict=True):
            i = int(i)
            old = self.table.get(i)
            new = float(p) if old is None else self.memory * old + (1 - self.memory) * float(p)
            self.table[i] = new
            out.append(new)
        return np.array(out)

    def state_dict(self) -> dict:
        return {"memory": self.memory, "table": dict(self.table)}

    def load_state_dict(self, state: dict) -> None:
        self.memory = float(state["memory"])
        self.table = {int(k): float(v) for k, v in state["table"].items()}


def kl_direction(step: int, switch_step: int, default: str) -> str:
    """Two-stage schedule [paper: PACED abstract; switch point ours]: `forward_kl` before
    `switch_step`, `reverse_kl` from it on; `switch_step < 0` keeps `default`.

    Examples:
        >>> [kl_direction(s, 2, "jsd") for s in range(4)]
        ['forward_kl', 'forward_kl', 'reverse_kl', 'reverse_kl']
        >>> kl_direction(5, -1, "jsd")
        'jsd'
    """
    if switch_step < 0:
        return default
    return "forward_kl" if step < switch_step else "reverse_kl"


# ----------------------------------------------------------------------------- TAID
def taid_per_token(student_logits: torch.Tensor, teacher_logits: torch.Tensor, t: float):
    r"""Per-token $\mathrm{KL}(p_t\|q_\theta)$, $p_t=\mathrm{softmax}((1-t)\mathrm{sg}(z_s)+tz_T)$.

    Its masked token mean equals `sdtheory.lm.taid.taid_loss` [code: SakanaAI/TAID]; per token so
    that the trainer's reductions (and weights) apply.
    """
    from .taid import interpolated_log_probs

    lpt = interpolated_log_probs(student_logits, teacher_logits, t)
    lq = torch.log_softmax(student_logits.to(lpt.dtype), -1)
    pt = lpt.exp()
    return (pt * (lpt - lq)).where(pt > 0, torch.zeros((), dtype=lpt.dtype)).sum(-1)


# ----------------------------------------------------------------------------- SDPO / SRPO
def successful_siblings(
    rewards: torch.Tensor, group: torch.Tensor, *, threshold: float = 0.5, exclude_self=True
) -> list[int | None]:
    """For each rollout, the index of a successful rollout of the same problem, else `None`.

    SDPO [code: `success_reward_threshold=0.5`, `dont_reprompt_on_self_success=True`]: a sibling
    succeeds when its reward is $\\ge$ `threshold`; a rollout is never its own demonstration when
    `exclude_self`. We take the first such sibling in row order (the choice rule is ours).

    Examples:
        >>> import torch
        >>> successful_siblings(torch.tensor([1., 0., 0., 0., 1., 0.]), torch.tensor([0, 0, 0, 1, 1, 1]))
        [None, 0, 0, 4, None, 4]
    """
    if rewards.shape != group.shape:
        raise ValueError(f"rewards {tuple(rewards.shape)} and group {tuple(group.shape)} differ")
    r, g = rewards.tolist(), group.tolist()
    out: list[int | None] = []
    for i in range(len(r)):
        pick = None
        for j in range(len(r)):
            if g[j] == g[i] and r[j] >= threshold and not (exclude_self and j == i):
                pick = j
                break
        out.append(pick)
    return out


def sdpo_messages(
    task: Task, problem: Problem, demonstration: str | None, feedback: str | None = None
) -> list[dict]:
    """SDPO reprompt [code: `"{prompt}{solution}{feedback}\\n\\nCorrectly solve the original
    question."`]: the question, a successful attempt and/or feedback, then the instruction.
    Our wording of the section headers."""
    parts = [f"{problem.question}\n{ANSWER_FORMAT}"]
    if demonstration is not None:
        parts.append(f"Correct solution:\n{demonstration.strip()}")
    if feedback:
        parts.append(f"Feedback on a previous attempt:\n{feedback}")
    parts.append(SDPO_OUTRO)
    return [{"role": "user", "content": "\n\n".join(parts)}]


def importance_weights(
    logp: torch.Tensor, logp_old: torch.Tensor, clip: float = 2.0
) -> torch.Tensor:
    r"""SDPO's clipped importance weight $\min(e^{\mathrm{clamp}(\log p-\log p_{\rm old},\pm20)},
    c)$, detached [code: `is_clip=2`; detaching is ours].

    Examples:
        >>> import torch
        >>> w = importance_weights(torch.tensor([0.0, 1.0, -1.0]), torch.zeros(3), clip=2.0)
        >>> bool(torch.allclose(w, torch.tensor([1.0, 2.0, math.exp(-1.0)])))
        True
    """
    if not clip > 0:
        raise ValueError(f"clip must be > 0, got {clip!r}")
    d = (logp.detach().double() - logp_old.detach().double()).clamp(-20, 20)
    return d.exp().clamp(max=float(clip)).to(logp.dtype)


def srpo_routes(rewards: torch.Tensor, has_teacher: torch.Tensor) -> torch.Tensor:
    """SRPO route mask $z_i=(1-c_i)\\,m_i$ [third-party re-implementations]: True = distill
    (failed and a teacher exists), False = GRPO (correct, or failed without a teacher).

    Examples:
        >>> import torch
        >>> srpo_routes(torch.tensor([1., 0., 0., 1.]), torch.tensor([True, True, False, False]))
        tensor([False,  True, False, False])
    """
    return (rewards < 0.5) & has_teacher.bool()


def entropy_weights(
    teacher_logits: torch.Tensor, mask: torch.Tensor, beta_h: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""SRPO token weights $w_t=e^{-\beta_H H(q_t)}$ normalised to mean 1 over the masked tokens
    [third-party re-implementations, `dw_normalizer_scope=global`]; returns `(w, H)`, `w` = 0
    off the mask. Full-vocabulary entropy here (the re-implementations use the top-k support).

    Examples:
        >>> import torch
        >>> z = torch.tensor([[[0., 0.], [100., 0.]]])    # entropies log 2 and ~0
        >>> w, h = entropy_weights(z, torch.ones(1, 2, dtype=torch.bool), beta_h=1.0)
        >>> bool(torch.allclose(w, torch.tensor([[2 * 0.5 / 1.5, 2 * 1 / 1.5]]), atol=1e-6))
        True
    """
    if not beta_h >= 0:
        raise ValueError(f"beta_h must be >= 0, got {beta_h!r}")
    lq = torch.log_softmax(teacher_logits.double(), -1)
    h = -(lq.exp() * lq).where(lq > -math.inf, torch.zeros((), dtype=lq.dtype)).sum(-1)
    m = mask.bool()
    raw = torch.exp(-beta_h * h) * m
    n = m.sum()
    if n == 0:
        return raw.float(), h.float()
    return (raw * n / raw.sum()).float(), h.float()


# ----------------------------------------------------------------------------- AVSD
def avsd_target(view_logprobs: torch.Tensor, student_logprobs: torch.Tensor, eps: float = 1e-8):
    r"""AVSD's per-token target log-probability of the sampled token [code: `gate_mode="avsd"`].

    With $\ell_v$ the view log-probs (`view_logprobs`, shape `(M, ...)`) and $\ell_S$ the
    student's: $\log q_G=\frac1M\sum_v\ell_v$, $\log q_A=\log\frac1M\sum_v e^{\ell_v}$, Jensen gap
    $J=\max(0,\log q_A-\log q_G)$, $\delta_v=\ell_v-\ell_S$, $c=\bar\delta$, alignment
    $a=|c|/(\overline{|\delta|}+\epsilon)$, proportionality $r=|c|/(|c|+J+\epsilon)$, gate $g=ar$,
    target $\log q^\*=\log q_G+gJ$. Returns a dict of these (all detached).

    Examples:
        >>> import torch
        >>> out = avsd_target(torch.tensor([[-1.0], [-1.0]]), torch.tensor([-2.0]))
        >>> float(out["target"][0])   # agreeing views: the consensus q_G
        -1.0
    """
    lv = view_logprobs.detach().double()
    ls = student_logprobs.detach().double()
    m = lv.shape[0]
    log_g = lv.mean(0)
    log_a = torch.logsumexp(lv, 0) - math.log(m)
    jensen = (log_a - log_g).clamp(min=0)
    delta = lv - ls
    c = delta.mean(0)
    align = c.abs() / (delta.abs().mean(0) + eps)
    prop = c.abs() / (c.abs() + jensen + eps)
    gate = align * prop
    return {
        "target": log_g + gate * jensen,
        "consensus": log_g,
        "jensen": jensen,
        "alignment": align,
        "proportionality": prop,
        "gate": gate,
    }


# ----------------------------------------------------------------------------- ATESD
def info_messages(problem: Problem, info: str) -> list[dict]:
    """The privileged-context teacher prompt of `Task.teacher_messages` with any view text."""
    content = f"{problem.question}\n{ANSWER_FORMAT}\n\n{TEACHER_INTRO}\n{info}\n\n{TEACHER_OUTRO}"
    return [{"role": "user", "content": content}]


def prefix_view(task: Task, problem: Problem, rho: float) -> str:
    """ATESD teacher view [paper + third-party review]: the first $\\lfloor\\rho m\\rfloor$ of the
    $m$ solution steps plus the final answer, always kept. $\\rho=1$ is the full solution.

    Examples:
        >>> from sdtheory.lm.tasks import make_task, Problem
        >>> p = Problem("1+2+3", "6", steps=("1+2 = 3", "3+3 = 6"))
        >>> prefix_view(make_task("chain_sum"), p, 0.5)
        '1+2 = 3\\n...\\nThe final answer is 6.'
    """
    if not 0.0 <= float(rho) <= 1.0:
        raise ValueError(f"rho must lie in [0, 1], got {rho!r}")
    answer = f"The final answer is {problem.answer}."
    if not problem.steps:
        return answer
    n = math.floor(float(rho) * len(problem.steps))
    if n == 0:
        return answer
    if n >= len(problem.steps):
        return "\n".join(problem.steps)
    return task.privileged_view(problem, "partial", rho) + "\n" + answer


def learning_progress(losses, gamma: float) -> float:
    r"""Discounted learning progress $\sum_{i\ge1}\gamma^{i-1}\max(0,\ell_{i-1}-\ell_i)$ over a
    loss sequence [third-party review of ATESD; the window is ours: the hold itself].

    Examples:
        >>> learning_progress([3.0, 2.0, 2.5, 1.5], gamma=0.5)
        1.25
    """
    x = [float(v) for v in losses]
    return float(sum(gamma**i * max(0.0, x[i] - x[i + 1]) for i in range(len(x) - 1)))


class ExposureController(torch.nn.Module):
    r"""ATESD's reveal-ratio policy: $(a,b)=1+\mathrm{softplus}(f_\phi(s))$, $\rho\sim
    \mathrm{Beta}(a,b)$ held for `hold` steps, then a REINFORCE step on the discounted learning
    progress of the hold [paper + third-party review; every hyper-parameter here is ours].

    State $s$: (fraction of training done, EMA of past $\rho$, EMA of the distillation loss, EMA
    of the rollout reward). $f_\phi$: Linear-tanh-Linear. Controller loss:
    $-(R-b)\log\pi_\phi(\rho|s)+c\,\max(0,H[\pi_\phi]-H_{\rm target})^2$, $b$ an EMA baseline of
    past rewards (0 before the first), Adam with learning rate `lr`.
    """

    def __init__(
        self,
        *,
        hold: int = 4,
        gamma: float = 0.9,
        lr: float = 0.05,
        hidden: int = 16,
        entropy_target: float = -1.0,
        entropy_coef: float = 0.1,
        rho_min: float = 0.0,
        rho_max: float = 1.0,
        ema: float = 0.9,
        seed: int = 0,
    ):
        super().__init__()
        if hold < 1:
            raise ValueError(f"hold must be >= 1, got {hold!r}")
        if not 0.0 <= rho_min <= rho_max <= 1.0:
            raise ValueError(f"need 0 <= rho_min <= rho_max <= 1, got {rho_min!r}, {rho_max!r}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}")
        self.hold, self.gamma, self.ema = int(hold), float(gamma), float(ema)
        self.entropy_target, self.entropy_coef = float(entropy_target), float(entropy_coef)
        self.rho_min, self.rho_max, self.seed = float(rho_min), float(rho_max), int(seed)
        g = torch.Generator().manual_seed(seed)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 2)
        )
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.stats = [0.0, 0.5, 0.0, 0.0]  # progress, ema rho, ema loss, ema reward
        self.decisions = 0
        self.rho: float | None = None
        self.raw: float | None = None
        self.state_vec: list[float] | None = None
        self.losses: list[float] = []
        self.baseline: float | None = None
        self.last: dict = {}

    def policy(self, state: torch.Tensor) -> torch.distributions.Beta:
        ab = 1.0 + torch.nn.functional.softplus(self.net(state))
        return torch.distributions.Beta(ab[..., 0], ab[..., 1])

    def current(self, progress: float) -> float:
        """$\\rho$ for this step: a fresh draw at the start of each hold, else the held one."""
        if self.rho is None:
            self.stats[0] = float(progress)
            self.state_vec = list(self.stats)
            with torch.no_grad():
                dist = self.policy(torch.tensor(self.state_vec))
                g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.decisions)
                u = torch._standard_gamma(dist.concentration1.expand(1), generator=g)
                v = torch._standard_gamma(dist.concentration0.expand(1), generator=g)
                raw = float((u / (u + v)).clamp(1e-6, 1 - 1e-6))
            self.raw = raw
            self.rho = min(self.rho_max, max(self.rho_min, raw))
            self.losses = []
        return self.rho

    def observe(self, loss: float, reward: float) -> dict:
        """Record one training step; at the end of a hold, update the policy. Returns metrics."""
        e = self.ema
        self.stats[1] = e * self.stats[1] + (1 - e) * float(self.rho)
        self.stats[2] = e * self.stats[2] + (1 - e) * float(loss)
        self.stats[3] = e * self.stats[3] + (1 - e) * float(reward)
        self.losses.append(float(loss))
        if len(self.losses) < self.hold:
            return {}
        r = learning_progress(self.losses, self.gamma)
        adv = 0.0 if self.baseline is None else r - self.baseline
        self.baseline = r if self.baseline is None else e * self.baseline + (1 - e) * r
        dist = self.policy(torch.tensor(self.state_vec))
        logp = dist.log_prob(torch.tensor(self.raw))
        ent = dist.entropy()
        loss_c = -adv * logp + self.entropy_coef * (ent - self.entropy_target).clamp(min=0) ** 2
        self.opt.zero_grad()
        loss_c.backward()
        self.opt.step()
        self.decisions += 1
        self.rho = None
        self.last = {
            "atesd_reward": r,
            "atesd_advantage": adv,
            "atesd_alpha": float(dist.concentration1.detach()),
            "atesd_beta": float(dist.concentration0.detach()),
            "atesd_policy_entropy": float(ent.detach()),
        }
        return dict(self.last)

    def extra_state(self) -> dict:
        return {
            "net": self.net.state_dict(),
            "opt": self.opt.state_dict(),
            "scalars": [
                self.stats,
                self.decisions,
                self.rho,
                self.raw,
                self.state_vec,
                self.losses,
                self.baseline,
            ],
        }

    def load_extra_state(self, s: dict) -> None:
        self.net.load_state_dict(s["net"])
        self.opt.load_state_dict(s["opt"])
        (
            self.stats,
            self.decisions,
            self.rho,
            self.raw,
            self.state_vec,
            self.losses,
            self.baseline,
        ) = s["scalars"]


# ----------------------------------------------------------------------------- the trainer hook
class MethodState:
    """Per-run state of the new methods (pass-rate table, TAID schedule, exposure controller)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.table = PassRateTable(cfg.paced_memory) if cfg.method == "paced" else None
        self.taid = (
            TAIDSchedule(
                cfg.taid_t_start,
                cfg.taid_t_end,
                cfg.taid_alpha,
                cfg.taid_beta,
                adaptive=cfg.taid_adaptive,
            )
            if cfg.method == "taid"
            else None
        )
        self.ctrl = (
            ExposureController(
                hold=cfg.atesd_hold,
                gamma=cfg.atesd_gamma,
                lr=cfg.atesd_lr,
                hidden=cfg.atesd_hidden,
                entropy_target=cfg.atesd_entropy_target,
                entropy_coef=cfg.atesd_entropy_coef,
                rho_min=cfg.atesd_rho_min,
                rho_max=cfg.atesd_rho_max,
                seed=cfg.seed,
            )
            if cfg.method == "atesd"
            else None
        )

    def state_dict(self) -> dict:
        return {
            "table": self.table.state_dict() if self.table else None,
            "taid": self.taid.state_dict() if self.taid else None,
            "ctrl": self.ctrl.extra_state() if self.ctrl else None,
        }

    def load_state_dict(self, s: dict) -> None:
        if self.table:
            self.table.load_state_dict(s["table"])
        if self.taid:
            self.taid.load_state_dict(s["taid"])
        if self.ctrl:
            self.ctrl.load_extra_state(s["ctrl"])


@torch.no_grad()
def _teacher_logits(model, prompts, ro) -> torch.Tensor:
    was = model.training
    model.eval()
    try:
        return completion_logits(model, prompts, ro.completions, ro.completion_mask)
    finally:
        model.train(was)


def _token_logp(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits.float(), -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def _mean(x: torch.Tensor, m: torch.Tensor) -> float:
    m = m.bool()
    return float(x[m].float().mean()) if m.any() else float("nan")


def method_loss(tr, ro, rows, rewards, group_ids, red, num) -> tuple[torch.Tensor, dict]:
    """The loss of one step of a method in `NEW_METHODS` (called by `Trainer.train_step`).

    Args:
        tr: the trainer (model, teacher, task, tokenizer, config, `method_state`).
        ro: the step's rollouts; rows: the problem of each rollout; rewards: `(N,)` in {0, 1}.
        group_ids: the global training-set index of each local problem (for PACED's table).
        red, num: the trainer's reduction and global normaliser.
    """
    from . import losses

    cfg, st, task, tok = tr.cfg, tr.method_state, tr.task, tr.tok
    mask = ro.completion_mask
    dev = mask.device
    d_w, g_w = cfg.weights
    metrics: dict = {}
    logits = completion_logits(tr.model, ro.prompts, ro.completions, mask)
    s_lp = _token_logp(logits, ro.completions)
    group = ro.group.cpu()
    div = kl_direction(tr.step, cfg.kl_switch_step, cfg.divergence)
    div_kw = dict(divergence=div, beta=cfg.beta, temperature=cfg.loss_temperature)

    def reduce(per_tok, weights=None, m=mask, n=num):
        return losses.reduce_loss(per_tok, m, weights=weights, reduction=red, num_items=n)

    if cfg.method == "paced":
        k = cfg.k
        succ = torch.zeros(len(group_ids), dtype=torch.float64).index_add_(
            0, group, rewards.double()
        )
        p_now, _ = paced_weights(succ.numpy().round().astype(int), k)
        p_hat = st.table.update(group_ids, p_now)
        w_prob = beta_kernel_weight(p_hat, cfg.paced_alpha, cfg.paced_beta)
        w = torch.tensor(w_prob, dtype=torch.float32)[group]
        if cfg.paced_normalize and float(w.mean()) > 0:
            w = w / w.mean()
        t_logits = tr.teacher.logits(rows, ro.completions, mask)
        per_tok = losses.token_divergence(logits, t_logits, **div_kw)
        l_d = reduce(per_tok, w.to(dev))
        metrics.update(
            distill_loss=float(l_d.detach()),
            divergence=div,
            pass_rate_mean=float(np.mean(p_hat)),
            paced_weight_mean=float(np.mean(w_prob)),
            paced_zero_frac=float(np.mean(w_prob == 0)),
        )
        return d_w * l_d, metrics

    if cfg.method == "taid":
        t_logits = tr.teacher.logits(rows, ro.completions, mask)
        t = st.taid.t
        l_d = reduce(taid_per_token(logits, t_logits, t))
        metrics.update(distill_loss=float(l_d.detach()), taid_t=t)
        return d_w * l_d, metrics

    if cfg.method in ("sdpo", "srpo"):
        sib = successful_siblings(rewards, group, threshold=0.5, exclude_self=True)
        texts = ro.texts(tok)
        prompts, has = [], []
        for i, p in enumerate(rows):
            demo = texts[sib[i]] if sib[i] is not None else None
            fb = None
            if cfg.sdpo_feedback and rewards[i] < 0.5:
                fb = "The previous attempt reached a wrong or no final answer."
            has.append(demo is not None or fb is not None)
            prompts.append(chat_prompt_ids(tok, sdpo_messages(task, p, demo, fb)))
        has_t = torch.tensor(has, dtype=torch.bool)
        t_model = tr.teacher.model
        t_logits = _teacher_logits(t_model, prompts, ro)
        per_tok = losses.token_divergence(logits, t_logits, **div_kw)
        isw = importance_weights(s_lp, ro.logprobs.to(s_lp.dtype), cfg.is_clip)
        metrics.update(
            is_ratio_mean=_mean(isw, mask), is_clipped_frac=_mean(isw >= cfg.is_clip, mask)
        )
        if cfg.method == "sdpo":
            sd_mask = mask & has_t.to(dev)[:, None]
            # token (or sequence) mean over the rollouts that have a teacher only [code]
            n_sd = {
                "token_mean": tr.global_count(sd_mask.sum()),
                "sequence_mean": tr.global_count((sd_mask.sum(-1) > 0).sum()),
                "sum": None,
            }[cfg.reduction]
            l_d = reduce(per_tok * isw, m=sd_mask, n=None if n_sd is None else max(n_sd, 1.0))
            metrics.update(
                distill_loss=float(l_d.detach()),
                sdpo_frac_with_teacher=float(has_t.double().mean()),
            )
            return d_w * l_d, metrics
        # SRPO
        route = srpo_routes(rewards, has_t).to(dev)
        sd_mask = mask & route[:, None]
        gr_mask = mask & ~route[:, None]
        w_ent, h = entropy_weights(t_logits, sd_mask, cfg.srpo_entropy_beta)
        l_d = reduce(per_tok * isw * w_ent.to(dev), m=sd_mask)
        from .trainers import grpo_advantages

        adv = grpo_advantages(rewards, group, scale=cfg.scale_rewards).to(dev)
        per_g = -adv[:, None] * torch.exp(s_lp - s_lp.detach())
        l_g = reduce(per_g, m=gr_mask)
        metrics.update(
            distill_loss=float(l_d.detach()),
            grpo_loss=float(l_g.detach()),
            srpo_frac_distill=float(route.double().mean()),
            srpo_frac_grpo=float(1 - route.double().mean()),
            teacher_entropy=_mean(h.to(dev), sd_mask),
            entropy_weight_min=float(w_ent[sd_mask.cpu()].min()) if sd_mask.any() else float("nan"),
            entropy_weight_max=float(w_ent[sd_mask.cpu()].max()) if sd_mask.any() else float("nan"),
        )
        return d_w * l_d + g_w * l_g, metrics

    if cfg.method == "avsd":
        views = [v.strip() for v in cfg.avsd_views.split(",") if v.strip()]
        view_lp = []
        for v in views:
            prompts = [chat_prompt_ids(tok, task.teacher_messages(p, v, cfg.rho)) for p in rows]
            view_lp.append(
                _token_logp(_teacher_logits(tr.teacher.model, prompts, ro), ro.completions)
            )
        out = avsd_target(torch.stack(view_lp), s_lp)
        adv = out["target"].float() - s_lp.detach()
        per_tok = -adv * s_lp
        l_d = reduce(per_tok)
        metrics.update(
            distill_loss=float(l_d.detach()),
            avsd_gate=_mean(out["gate"], mask),
            avsd_alignment=_mean(out["alignment"], mask),
            avsd_proportionality=_mean(out["proportionality"], mask),
            avsd_jensen=_mean(out["jensen"], mask),
            avsd_views=len(views),
        )
        return d_w * l_d, metrics

    if cfg.method == "atesd":
        rho = st.ctrl.current(tr.step / cfg.steps)
        prompts = [chat_prompt_ids(tok, info_messages(p, prefix_view(task, p, rho))) for p in rows]
        t_logits = _teacher_logits(tr.teacher.model, prompts, ro)
        l_d = reduce(losses.token_divergence(logits, t_logits, **div_kw))
        metrics.update(distill_loss=float(l_d.detach()), atesd_rho=rho)
        return d_w * l_d, metrics

    raise ValueError(f"method must be one of {NEW_METHODS}, got {cfg.method!r}")


def after_step(tr, metrics: dict, reward: float, done: int) -> dict:
    """Per-optimiser-step updates (`done` = optimiser steps completed, this one included):
    TAID's schedule (once per optimiser step, with the loss measured at the current $t$) and
    ATESD's controller."""
    cfg, st = tr.cfg, tr.method_state
    out = {}
    if cfg.method == "taid":
        out["taid_t_next"] = st.taid.update(metrics["distill_loss"], done - 1, cfg.steps)
    if cfg.method == "atesd":
        out.update(st.ctrl.observe(metrics["distill_loss"], reward))
    return out
