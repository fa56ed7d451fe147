"""Training methods, one file each, behind one interface (`base.Method`), and their registry.

| name | file | teacher | loss |
|---|---|---|---|
| `opsd` | `distill.py` | self, privileged view | divergence (forward KL by default) |
| `gkd` | `distill.py` | separate model | divergence; on/off-policy mixture |
| `grpo` | `grpo.py` | none (self with `--distill-weight`) | GRPO surrogate |
| `paced` | `paced.py` | self | divergence x pass-rate weights |
| `taid` | `taid.py` | separate model | KL to the interpolated target |
| `sdpo` | `sdpo.py` | self, reprompted with a sibling | divergence x importance ratio |
| `srpo` | `srpo.py` | as SDPO | correct -> GRPO, failed -> SDPO |
| `avsd` | `avsd.py` | self under several views | sampled reverse KL to a consensus |
| `atesd` | `atesd.py` | self, learned solution prefix | divergence |
| `sod` | `sod.py` | separate model | GRPO + step-weighted sampled log-ratio, clipped |
| `skillsd` | `skillsd.py` | self, prompted with retrieved skills | GRPO + IW sampled reverse KL |
| `curiosft` | `curiosft.py` | self reference, per-token temperature | NLL + squared log-ratio (SFT) |
| `pskd` | `pskd.py` | none (stored past predictions) | CE to refined targets (SFT) |
| `sdzero` | `sdzero.py` | self after self-revision training, reviser context | CE, then FKL+RKL top-k |
| `pidistill` | `pidistill.py` | the student's network + PI, trained jointly | teacher + IS student PG, KL |
| `piopsd` | `pidistill.py` | the student's network + PI (shared) | GRPO + reverse KL |
| `effopd` | `effopd.py` | as OPSD | OPSD's; weights extrapolated at steps 1, 2, 4, ... |
| `unisd` | `unisd.py` | self, EMA every N steps; K views | agreement x clipped divergence + hidden MSE |
| `vpd` | `vpd.py` | the student's network + feedback, refined | E-step BCO, M-step reverse KL |

Adding a method is one file defining a `Method` subclass and one line in `REGISTRY`
(CONTRIBUTING.md, "Adding a method").
"""

from __future__ import annotations

import importlib

from .base import Method, MethodContext, StepBatch, StudentOutputs

__all__ = [
    "REGISTRY",
    "Method",
    "MethodContext",
    "StepBatch",
    "StudentOutputs",
    "get_method",
    "method_names",
    "option_configs",
    "option_owner",
]

# name -> "module:Class" (modules of this package, imported on first use)
REGISTRY: dict[str, str] = {
    "opsd": "distill:OPSD",
    "gkd": "distill:GKD",
    "grpo": "grpo:GRPO",
    "paced": "paced:PACED",
    "taid": "taid:TAID",
    "sdzero": "sdzero:SDZero",
    "pidistill": "pidistill:PIDistill",
    "piopsd": "pidistill:PIOPSD",
    "effopd": "effopd:EffOPD",
    "unisd": "unisd:UniSD",
    "vpd": "vpd:VPD",
    "sdpo": "sdpo:SDPO",
    "srpo": "srpo:SRPO",
    "avsd": "avsd:AVSD",
    "atesd": "atesd:ATESD",
    "sod": "sod:SOD",
    "skillsd": "skillsd:SkillSD",
    "curiosft": "curiosft:CurioSFT",
    "pskd": "pskd:PSKD",
}


def method_names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def get_method(name: str) -> type[Method]:
    """The `Method` class registered under `name`."""
    if name not in REGISTRY:
        raise ValueError(f"method must be one of {method_names()}, got {name!r}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def option_configs() -> list[type]:
    """The distinct option dataclasses of the registered methods, in registry order."""
    out: list[type] = []
    for name in REGISTRY:
        c = get_method(name).Config
        if c is not None and c not in out:
            out.append(c)
    return out


def option_owner(field_name: str) -> str | None:
    """The method(s) whose options include `field_name` (e.g. 'sdpo/srpo'), or `None`."""
    import dataclasses

    owners = [
        n
        for n in REGISTRY
        if get_method(n).Config is not None
        and field_name in {f.name for f in dataclasses.fields(get_method(n).Config)}
    ]
    return "/".join(owners) or None
