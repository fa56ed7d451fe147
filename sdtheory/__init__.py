"""sdtheory: the theory of self-distillation and knowledge distillation, checked against runs.

`import sdtheory` is light: it loads numpy and scipy only. Torch lives under `sdtheory.lm`,
JAX under `sdtheory.nets`, sympy under `sdtheory.symbolic`.
"""

from . import core as core

__version__ = "0.1.0"

__all__ = ["core", "__version__"]
