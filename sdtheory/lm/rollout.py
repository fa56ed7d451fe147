"""Batched on-policy sampling with the KV cache, and scoring of completions under any context.

`sample` draws completions for a list of prompts (token ids): the prompts are left-padded into
one batch, the prompt is encoded once, and each new token reuses the key/value cache. Sampling
uses temperature and nucleus (top-p) filtering and stops a row at its first stop token
(end of turn). Every row draws its uniforms from its own generator seeded by
`(seed, row_seeds[i])`, so a row's sample does not depend on which other rows share the batch
(data-parallel ranks reproduce the single-process samples).

`Rollouts` keeps the prompt block and the completion block separately: the completion block
(`completions`, `completion_mask`) starts at the same column for every row, so scoring the same
completion tokens after a different prompt (`completion_logits`) -- the privileged-context
teacher -- is a matter of swapping the prompt block. The completion tokens are never re-tokenised.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..core._checks import check_positive_int

__all__ = [
    "Rollouts",
    "completion_hidden",
    "completion_logits",
    "left_pad",
    "pass_rates",
    "sample",
    "stop_ids",
]


@dataclass
class Rollouts:
    """Completions for a batch of prompts.

    Attributes:
        prompts: the prompt token ids of each row (unpadded).
        completions: `(N, T)` sampled token ids, `pad_id` after a row stops.
        completion_mask: `(N, T)` bool, True on generated tokens (the stop token included).
        logprobs: `(N, T)` log-probability of each sampled token under the model at temperature
            1 (the unfiltered softmax), 0 where masked.
        sample_logprobs: `(N, T)` log-probability under the distribution actually sampled
            (after temperature and top-p), 0 where masked.
        group: `(N,)` index of the prompt (problem) each row belongs to.
        on_policy: whether the completions were sampled from the student (False for dataset
            demonstrations).
        loss_mask: `(N, T)` bool, the tokens a loss may train on, when they are fewer than the
            completion tokens (e.g. tool outputs inside a multi-turn completion: attended to,
            never trained on); `None` = `completion_mask`.
    """

    prompts: list[list[int]]
    completions: torch.Tensor
    completion_mask: torch.Tensor
    logprobs: torch.Tensor
    sample_logprobs: torch.Tensor
    group: torch.Tensor
    on_policy: bool = True
    loss_mask: torch.Tensor | None = None

    def texts(self, tokenizer) -> list[str]:
        """Decoded completions (special tokens dropped)."""
        return [
            tokenizer.decode(row[m].tolist(), skip_special_tokens=True)
            for row, m in zip(self.completions, self.completion_mask, strict=True)
        ]

    @property
    def lengths(self) -> torch.Tensor:
        return self.completion_mask.sum(-1)


def stop_ids(tokenizer) -> list[int]:
    """End-of-turn ids: eos plus `<|im_end|>` and `<|endoftext|>` where the vocabulary has them."""
    ids = {tokenizer.eos_token_id}
    vocab = tokenizer.get_vocab()
    for t in ("<|im_end|>", "<|endoftext|>"):
        if t in vocab:
            ids.add(vocab[t])
    return sorted(i for i in ids if i is not None)


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int, device=None):
    """Left-pad token lists into `(ids, attention_mask)` tensors of shape `(N, max_len)`."""
    if not seqs:
        raise ValueError("seqs must be a non-empty list of token lists")
    width = max(len(s) for s in seqs)
    if width == 0:
        raise ValueError("seqs must not all be empty")
    ids = torch.full((len(seqs), width), int(pad_id), dtype=torch.long, device=device)
    mask = torch.zeros((len(seqs), width), dtype=torch.long, device=device)
    for i, s in enumerate(seqs):
        if len(s):
            ids[i, width - len(s) :] = torch.as_tensor(list(s), dtype=torch.long)
            mask[i, width - len(s) :] = 1
    return ids, mask


def _cache(out):
    # transformers >= 5.2x names the KV cache `cache`; older versions `past_key_values`
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def _positions(mask: torch.Tensor) -> torch.Tensor:
    return (mask.cumsum(-1) - 1).clamp(min=0)


def _filter_top_p(logp: torch.Tensor, top_p: float) -> torch.Tensor:
    """Log-probs renormalised on the smallest set of tokens with mass >= top_p (others -inf)."""
    if top_p >= 1.0:
        return logp
    sorted_lp, idx = logp.sort(-1, descending=True)
    cum = sorted_lp.exp().cumsum(-1)
    drop_sorted = (cum - sorted_lp.exp()) >= top_p  # mass before this token already reaches top_p
    drop = torch.zeros_like(drop_sorted).scatter(-1, idx, drop_sorted)
    out = logp.masked_fill(drop, float("-inf"))
    return out - out.logsumexp(-1, keepdim=True)


@torch.no_grad()
def sample(
    model,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    stop_token_ids: Sequence[int],
    pad_id: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    row_seeds: Sequence[int] | None = None,
    k: int = 1,
    all_done: Callable[[torch.Tensor], bool] | None = None,
) -> Rollouts:
    """Sample `k` completions per prompt with the KV cache.

    Args:
        model: a causal LM (Hugging Face interface: `input_ids`, `attention_mask`,
            `position_ids`, `past_key_values`).
        prompts: token ids per prompt; row `i*k + j` is sample `j` of prompt `i`.
        max_new_tokens: at most this many tokens per completion (>= 1).
        stop_token_ids: a row stops after emitting one of these (kept in the completion).
        pad_id: id written after a row stops.
        temperature: softmax temperature (> 0), or 0 for greedy decoding.
        top_p: nucleus mass in (0, 1].
        seed: base seed of the per-row generators.
        row_seeds: one integer per row (default: the row index); a row's randomness depends only
            on `(seed, row_seeds[row])`.
        k: samples per prompt (>= 1).
        all_done: given this process's `done` rows, whether generation may stop (default: all
            of them are done). Sharded models (FSDP) gather weights in every forward pass, so
            every process must run the same number of them: the trainer passes a function that
            asks all processes; rows already done keep receiving `pad_id`.
    """
    max_new_tokens = check_positive_int(max_new_tokens, "max_new_tokens")
    if not (float(temperature) >= 0.0):
        raise ValueError(f"temperature must be >= 0, got {temperature!r}")
    if not (0.0 < float(top_p) <= 1.0):
        raise ValueError(f"top_p must lie in (0, 1], got {top_p!r}")
    k = check_positive_int(k, "k")
    rows = [list(p) for p in prompts for _ in range(k)]
    n = len(rows)
    if row_seeds is None:
        row_seeds = list(range(n))
    if len(row_seeds) != n:
        raise ValueError(f"row_seeds must have one entry per row ({n}), got {len(row_seeds)}")
    device = next(model.parameters()).device
    gens = []
    for r in row_seeds:
        g = torch.Generator(device="cpu")
        g.manual_seed((int(seed) * 1_000_003 + int(r)) % (2**63 - 1))
        gens.append(g)

    ids, mask = left_pad(rows, pad_id, device)
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=_positions(mask),
        use_cache=True,
        logits_to_keep=1,
    )
    past, logits = _cache(out), out.logits[:, -1].float()
    stops = torch.tensor(sorted(set(int(s) for s in stop_token_ids)), device=device)
    done = torch.zeros(n, dtype=torch.bool, device=device)
    toks, lps, slps, live = [], [], [], []
    pos = _positions(mask)[:, -1]
    for _ in range(int(max_new_tokens)):
        logp = torch.log_softmax(logits, -1)
        if temperature == 0:
            tok = logp.argmax(-1)
            slp = torch.zeros(n, device=device)
        else:
            sl = _filter_top_p(torch.log_softmax(logits / float(temperature), -1), float(top_p))
            u = torch.stack([torch.rand((), generator=g) for g in gens]).to(device)
            cdf = sl.exp().cumsum(-1)
            tok = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1)).squeeze(-1)
            tok = tok.clamp(max=logits.shape[-1] - 1)
            # never land on a filtered token through rounding at the cdf's flat end
            bad = torch.isinf(sl.gather(-1, tok[:, None]).squeeze(-1))
            if bad.any():
                tok = torch.where(bad, sl.argmax(-1), tok)
            slp = sl.gather(-1, tok[:, None]).squeeze(-1)
        tok = torch.where(done, torch.full_like(tok, int(pad_id)), tok)
        active = ~done
        toks.append(tok)
        live.append(active)
        lps.append(torch.where(active, logp.gather(-1, tok[:, None]).squeeze(-1), 0.0))
        slps.append(torch.where(active, slp, 0.0))
        done = done | torch.isin(tok, stops)
        if all_done(done) if all_done is not None else bool(done.all()):
            break
        mask = torch.cat([mask, torch.ones((n, 1), dtype=mask.dtype, device=device)], -1)
        pos = pos + 1
        out = model(
            input_ids=tok[:, None],
            attention_mask=mask,
            position_ids=pos[:, None],
            cache=past,
            use_cache=True,
        )
        past, logits = _cache(out), out.logits[:, -1].float()
    group = torch.arange(len(prompts), device=device).repeat_interleave(int(k))
    return Rollouts(
        rows,
        torch.stack(toks, 1),
        torch.stack(live, 1),
        torch.stack(lps, 1),
        torch.stack(slps, 1),
        group,
    )


def _check_completion_args(prompts, completions, completion_mask) -> None:
    if completions.shape != completion_mask.shape or completions.ndim != 2:
        raise ValueError(
            f"completions and completion_mask must be equal (N, T) shapes, got "
            f"{tuple(completions.shape)} and {tuple(completion_mask.shape)}"
        )
    if len(prompts) != completions.shape[0]:
        raise ValueError(f"prompts has {len(prompts)} rows, completions {completions.shape[0]}")


def _completion_forward(model, prompts, completions, completion_mask, **kwargs):
    _check_completion_args(prompts, completions, completion_mask)
    p_ids, p_mask = left_pad(prompts, 0, completions.device)
    ids = torch.cat([p_ids, completions], 1)
    mask = torch.cat([p_mask, completion_mask.long()], 1)
    return model(
        input_ids=ids, attention_mask=mask, position_ids=_positions(mask), use_cache=False, **kwargs
    )


def _shared_prompt_hidden(model, prompts, completions, completion_mask) -> torch.Tensor:
    """`completion_hidden` with each distinct prompt encoded once: its key/value cache is
    copied to every row that shares it, and only the completion tokens run per row."""
    index: dict[tuple, int] = {}
    inv = [index.setdefault(tuple(p), len(index)) for p in prompts]
    p_ids, p_mask = left_pad(list(index), 0, completions.device)
    first = model(
        input_ids=p_ids,
        attention_mask=p_mask,
        position_ids=_positions(p_mask),
        use_cache=True,
        logits_to_keep=1,
        output_hidden_states=True,
    )
    sel = torch.tensor(inv, device=completions.device)
    out = [first.hidden_states[-1][:, -1:].index_select(0, sel)]  # predicts completion token 0
    if completions.shape[1] > 1:
        cache = _cache(first)
        cache.batch_select_indices(sel)
        comp, m = completions[:, :-1], completion_mask[:, :-1].long()
        mask = torch.cat([p_mask.index_select(0, sel), m], 1)
        rest = model(
            input_ids=comp,
            attention_mask=mask,
            position_ids=_positions(mask)[:, -comp.shape[1] :],
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
            output_hidden_states=True,
        )
        out.append(rest.hidden_states[-1])
    return torch.cat(out, 1)


def completion_logits(
    model,
    prompts: Sequence[Sequence[int]],
    completions: torch.Tensor,
    completion_mask: torch.Tensor,
    *,
    share_prompts: bool = False,
) -> torch.Tensor:
    """Logits `(N, T, V)` that `model` assigns to each completion token after its prompt.

    Row `i` is `prompts[i]` (left-padded) followed by `completions[i]`; position `t` of the output
    holds the logits predicting `completions[i, t]`. Only the last $T+1$ positions are projected
    onto the vocabulary. Gradients flow if enabled by the caller. `share_prompts`: encode each
    distinct prompt once (see `completion_hidden`).
    """
    t = completions.shape[1]
    if share_prompts:
        h = completion_hidden(model, prompts, completions, completion_mask, share_prompts=True)
        return model.get_output_embeddings()(h)
    out = _completion_forward(model, prompts, completions, completion_mask, logits_to_keep=t + 1)
    return out.logits[:, :t]


def completion_hidden(
    model,
    prompts: Sequence[Sequence[int]],
    completions: torch.Tensor,
    completion_mask: torch.Tensor,
    *,
    share_prompts: bool = False,
) -> torch.Tensor:
    """Final (normed) hidden states `(N, T, H)` at the positions predicting each completion token.

    `completion_hidden(...) @ lm_head.weight.T` equals `completion_logits(...)` (for models
    without an output bias); used by the fused, chunked distillation loss. With
    `share_prompts`, rows with the same prompt (the `k` samples of a problem) encode it once and
    reuse its key/value cache (the same values up to rounding; for scoring without gradient).
    """
    t = completions.shape[1]
    if share_prompts:
        _check_completion_args(prompts, completions, completion_mask)
        return _shared_prompt_hidden(model, prompts, completions, completion_mask)
    out = _completion_forward(
        model, prompts, completions, completion_mask, logits_to_keep=1, output_hidden_states=True
    )
    return out.hidden_states[-1][:, -(t + 1) : -1]


def pass_rates(rewards: torch.Tensor, group: torch.Tensor, num_groups: int | None = None):
    """Per-problem pass rate: the mean reward of each group's samples."""
    if rewards.shape != group.shape:
        raise ValueError(f"rewards {tuple(rewards.shape)} and group {tuple(group.shape)} differ")
    g = int(group.max()) + 1 if num_groups is None else int(num_groups)
    grp = group.cpu()
    tot = torch.zeros(g, dtype=torch.float64).index_add_(0, grp, rewards.double().cpu())
    cnt = torch.zeros(g, dtype=torch.float64).index_add_(0, grp, torch.ones(len(grp)).double())
    return tot / cnt.clamp(min=1)
