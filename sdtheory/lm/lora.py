r"""LoRA adapters through `peft`: only the adapters train; the base weights stay frozen.

A LoRA layer computes $W x + \tfrac{\alpha}{r} B A x$ with the frozen base weight $W$ and
trainable $A \in \mathbb{R}^{r\times d_\text{in}}$, $B \in \mathbb{R}^{d_\text{out}\times r}$
($B = 0$ at the start, so the adapted model starts as the base model) [paper: Hu et al. 2021,
"LoRA: Low-Rank Adaptation of Large Language Models"].

Because the base weights never change, the fixed self-teacher needs no copy of them: it is the
same network with its adapters switched off (`base_weights`), bit for bit the base model. An EMA
self-teacher keeps an EMA of the adapter tensors only and scores with them swapped in
(`swapped_adapters`). Checkpoints hold the adapter tensors (`adapter_state_dict`);
`sdtheory export` merges them into the base weights (`sdtheory.lm.export`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = [
    "adapter_parameters",
    "adapter_state_dict",
    "apply_lora",
    "base_weights",
    "is_lora",
    "load_adapter_state",
    "swapped_adapters",
]


def _peft():
    try:
        import peft
    except ImportError:  # pragma: no cover - the lora extra is part of `all`
        raise ValueError(
            "lora_rank > 0 needs the peft package: pip install 'sdtheory[lora]'"
        ) from None
    return peft


def apply_lora(model, adapter_cfg, *, seed: int = 0):
    """Wrap `model` in a `peft.PeftModel` with LoRA adapters from an `AdapterConfig`.

    The adapters' random initialisation ($A$; $B$ starts at 0) is seeded with `seed` on a
    forked RNG, so a run and its resumed copy build identical adapters. Only adapter parameters
    require gradients afterwards.
    """
    peft = _peft()
    a = adapter_cfg
    targets = a.lora_targets
    if targets != "all-linear":
        targets = [t.strip() for t in targets.split(",")]
    lc = peft.LoraConfig(
        r=a.lora_rank,
        lora_alpha=a.lora_alpha,
        lora_dropout=a.lora_dropout,
        target_modules=targets,
        bias="none",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            wrapped = peft.get_peft_model(model, lc)
        except ValueError as e:  # peft: "Target modules {...} not found in the base model"
            raise ValueError(f"lora_targets: {e}") from None
    return wrapped


def is_lora(model) -> bool:
    """Whether `model` is a `peft` model (LoRA adapters attached)."""
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)


def adapter_parameters(model) -> dict[str, torch.nn.Parameter]:
    """The trainable adapter parameters by qualified name (those that require gradients)."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def adapter_state_dict(model) -> dict[str, torch.Tensor]:
    """The adapter tensors only (peft's naming: `...lora_A.weight`), for checkpoints."""
    return {k: v.detach().clone() for k, v in _peft().get_peft_model_state_dict(model).items()}


def load_adapter_state(model, state: dict[str, torch.Tensor]) -> None:
    """Load `adapter_state_dict` output into `model`; refuses missing or unexpected adapters."""
    peft = _peft()
    want = set(peft.get_peft_model_state_dict(model))
    if set(state) != want:
        raise ValueError(
            f"checkpoint adapters do not match the model's: missing {sorted(want - set(state))[:3]}, "
            f"unexpected {sorted(set(state) - want)[:3]}"
        )
    res = peft.set_peft_model_state_dict(model, state)
    if res.unexpected_keys:
        raise ValueError(f"checkpoint adapters not loaded: {res.unexpected_keys[:3]}")


def base_weights(model) -> contextlib.AbstractContextManager:
    """Context in which `model` computes with its adapters off: the base model, exactly."""
    return model.disable_adapter()


@contextlib.contextmanager
def swapped_adapters(model, tensors: dict[str, torch.Tensor]) -> Iterator[None]:
    """Context in which the adapter parameters named in `tensors` are replaced by those tensors.

    The module attributes are swapped (never written in place), so tensors that autograd saved
    from the student's own forward pass stay valid; the originals are restored on exit.
    """
    saved = []
    try:
        for name, value in tensors.items():
            prefix, _, leaf = name.rpartition(".")
            module = model.get_submodule(prefix)
            saved.append((module, leaf, module._parameters[leaf]))
            module._parameters[leaf] = value
        yield
    finally:
        for module, leaf, original in reversed(saved):
            module._parameters[leaf] = original
