r"""PS-KD: self-knowledge distillation with progressively refined targets, on worked solutions.

Kim et al., ICCV 2021, arXiv:2006.12000; official code `lgcnsai/PS-KD-Pytorch@9aa0828`
(`main.py`, `loss/pskd_loss.py`) [code]. At epoch $t$ (0-based) the target of an example is
$\hat y=(1-\alpha_t)\,y+\alpha_t\,p^{(t-1)}(x)$, the one-hot label mixed with the model's own
prediction for that example from the previous epoch, and the loss is the cross-entropy
$-\sum_v\hat y_v\log p^{(t)}_v(x)$ [paper: abstract, "targets are adjusted adaptively by
combining the ground-truth and past predictions from the model itself"]. In the code
$\alpha_t=\alpha_T\,(t+1)/T$ with $T$ epochs and $\alpha_T=0.8$ by default; the stored prediction
is initialised to the one-hot label, and is overwritten by the softmax of the forward pass that
trains on the example (before its update, detached) [code: `all_predictions[input_indices] =
softmax_output`].

For a language model [derived: methods spec 1.15] an example is one problem's demonstration
(`sources.demonstrations`) and a prediction is one next-token distribution per demonstration
token; an epoch is one pass over the `--n-train` problems in the trainer's data order, and
$T=\lceil \text{steps}\cdot\text{batch} / n_{\rm train}\rceil$. Ours: only the top-`--pskd-topk`
probabilities of each stored prediction are kept, renormalised (`0` keeps the full vocabulary,
exact); the loss is the token mean over demonstration tokens; the fused path
(`fused_linear_soft_target_cross_entropy`) is the default, `--fused-loss false` the plain one.
One process only (the code all-gathers its predictions; we refuse several processes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..config import check_fields
from ..losses import fused_linear_soft_target_cross_entropy, soft_target_cross_entropy
from .base import Method
from .shared import masked_mean

__all__ = ["PSKD", "PSKDConfig", "TargetStore", "pskd_alpha", "refined_targets"]


def pskd_alpha(epoch: int, epochs: int, alpha_max: float = 0.8) -> float:
    r"""$\alpha_t=\alpha_T\,(t+1)/T$ for 0-based epoch $t$ of $T$, $\alpha_T$ = `alpha_max`
    [code: `main.py`].

    Examples:
        >>> [round(pskd_alpha(t, 4), 12) for t in range(4)]
        [0.2, 0.4, 0.6, 0.8]
    """
    if int(epochs) < 1 or not 0 <= int(epoch):
        raise ValueError(f"need epochs >= 1 and epoch >= 0, got epoch={epoch}, epochs={epochs}")
    if not 0.0 <= alpha_max <= 1.0:
        raise ValueError(f"alpha_max must lie in [0, 1], got {alpha_max!r}")
    return max(0.0, alpha_max * (int(epoch) + 1) / int(epochs))


def refined_targets(labels, prev_index, prev_prob, alpha) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The sparse target $(1-\alpha)\,e_y+\alpha\,p$: index `(..., 1+K)` (the label first) and
    probabilities; `alpha` is a number or one value per row (broadcast over positions).

    Examples:
        >>> import torch
        >>> i, p = refined_targets(torch.tensor([2]), torch.tensor([[2, 0]]),
        ...                        torch.tensor([[0.75, 0.25]]), 0.4)
        >>> i.tolist(), [round(x, 6) for x in p[0].tolist()]
        ([[2, 2, 0]], [0.6, 0.3, 0.1])
    """
    a = torch.as_tensor(alpha, dtype=prev_prob.dtype, device=prev_prob.device)
    while a.dim() < labels.dim():
        a = a.unsqueeze(-1)
    index = torch.cat([labels.unsqueeze(-1), prev_index], -1)
    prob = torch.cat(
        [(1 - a).unsqueeze(-1).expand(*labels.shape, 1), a.unsqueeze(-1) * prev_prob], -1
    )
    return index.long(), prob


class TargetStore:
    """The previous prediction of every example (problem id), on the CPU: the tokens it was made
    on and the top-`topk` probabilities (renormalised; `topk=0`: all) at each position."""

    def __init__(self, topk: int = 64):
        self.topk, self.items = int(topk), {}

    def put(self, pid: int, tokens: torch.Tensor, logits: torch.Tensor) -> None:
        p = torch.softmax(logits.detach().double(), -1)
        if self.topk and self.topk < p.shape[-1]:
            prob, index = p.topk(self.topk, -1)
            prob = prob / prob.sum(-1, keepdim=True)
        else:
            index = torch.arange(p.shape[-1]).expand(p.shape).to(p.device)
            prob = p
        cpu = dict(tokens=tokens.cpu(), index=index.cpu(), prob=prob.float().cpu())
        self.items[int(pid)] = cpu

    def get(self, pid: int, tokens: torch.Tensor, width: int):
        """(index, prob) `(L, width)` of the stored prediction on exactly these tokens, else the
        one-hot label (first sight); and whether one was stored."""
        it = self.items.get(int(pid))
        if it is not None and torch.equal(it["tokens"], tokens.cpu()):
            return it["index"], it["prob"], True
        index = torch.zeros((len(tokens), width), dtype=torch.long)
        prob = torch.zeros((len(tokens), width))
        index[:, 0], prob[:, 0] = tokens.cpu(), 1.0
        return index, prob, False

    def state_dict(self) -> dict:
        return {"topk": self.topk, "items": dict(self.items)}

    def load_state_dict(self, state: dict) -> None:
        self.topk, self.items = int(state["topk"]), dict(state["items"])


@dataclass(frozen=True)
class PSKDConfig:
    _argument_group_name = "pskd (SFT on worked solutions with progressively refined targets)"

    pskd_alpha_max: float = field(
        default=0.8,
        metadata={
            "help": "PS-KD: alpha_T, the weight of the past prediction in the last epoch (the code's 0.8)"
        },
    )
    pskd_topk: int = field(
        default=64,
        metadata={"help": "PS-KD (ours): keep the top-k of each stored prediction (0 = all)"},
    )

    def __post_init__(self):
        check_fields(self, unit=("pskd_alpha_max",), ints={"pskd_topk": 0})


class PSKD(Method):
    """PS-KD on demonstration tokens (see the module); the stored predictions are its state."""

    name = "pskd"
    Config = PSKDConfig
    teacher_kind = None

    def __init__(self, ctx):
        super().__init__(ctx)
        if ctx.world > 1:
            raise ValueError(f"pskd stores its predictions in one process, got {ctx.world}")
        self.store = TargetStore(self.options.pskd_topk)
        run = self.cfg.run
        self.epochs = max(1, math.ceil(run.steps * run.batch_problems / run.n_train))

    def collect(self, sources, problems, step):
        return sources.demonstrations(problems)

    def loss(self, batch):
        run, ro, m = self.cfg.run, batch.rollouts, batch.mask
        s, vocab = batch.student, batch.student.weight.shape[0]
        width = self.store.topk if 0 < self.store.topk < vocab else vocab
        n, t = ro.completions.shape
        index = torch.zeros((n, t, 1 + width), dtype=torch.long)
        prob = torch.zeros((n, t, 1 + width))
        alphas, stored, rows = [], [], []
        for i, g in enumerate(batch.groups.tolist()):
            pid, keep = batch.problem_ids[g], ro.completion_mask[i].bool()
            epoch = (batch.step * run.batch_problems + g) // run.n_train
            a = pskd_alpha(epoch, self.epochs, self.options.pskd_alpha_max)
            toks = ro.completions[i][keep]
            pi, pp, had = self.store.get(pid, toks, width)
            ti, tp = refined_targets(toks.cpu(), pi, pp, a)
            index[i, : len(toks)], prob[i, : len(toks)] = ti, tp
            alphas.append(a)
            stored.append(had)
            rows.append((pid, toks, keep))
        index, prob = index.to(m.device), prob.to(m.device)
        kw = dict(reduction=batch.reduction, num_items=batch.num_items())
        if self.cfg.loss.fused_loss:
            l_d = fused_linear_soft_target_cross_entropy(s.hidden(), s.weight, index, prob, m, **kw)
        else:
            l_d = soft_target_cross_entropy(s.logits(), index, prob, m, **kw)
        with torch.no_grad():  # this forward's predictions, stored for the next epoch [code]
            h = s.hidden()
            for i, (pid, toks, keep) in enumerate(rows):
                self.store.put(pid, toks, s.head(h[i][keep]).float())
        metrics = dict(
            distill_loss=float(l_d.detach()),
            pskd_alpha=sum(alphas) / len(alphas),
            pskd_stored_frac=sum(stored) / len(stored),
            pskd_label_mass=masked_mean((prob * (index == index[..., :1])).sum(-1), m),
        )
        return self.weights(self.cfg)[0] * l_d, metrics

    def state_dict(self) -> dict:
        return {"store": self.store.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.store.load_state_dict(state["store"])
