"""Devices and numeric precision for the trainer and the validation experiments (torch).

One home for the choices every GPU path makes:

* `resolve_device("auto" | "cpu" | "cuda")`: `auto` is CUDA when a device is visible, else the
  CPU; asking for `cuda` where there is none is an error, never a silent fallback.
* `resolve_precision("auto" | "fp32" | "bf16", device)`: `auto` is bf16 autocast on CUDA and
  fp32 on the CPU (bf16 matrix products are about 19x slower than fp32 on CPUs without
  AVX512-BF16). Weights, optimiser state and every divergence stay in fp32 (the losses upcast:
  `sdtheory.lm.losses`); `autocast` runs the matrix products in bf16.
* `configure(device)`: TF32 matrix products and cuDNN convolutions on CUDA (fp32 runs get
  tensor cores; bf16 autocast runs are unaffected). Attention is PyTorch's scaled-dot-product
  attention (`attn_implementation="sdpa"`, set where models are built in `sdtheory.lm.models`),
  which picks the flash or memory-efficient kernel on CUDA.
* `memory_stats(device)`: peak memory for the step logs: on CUDA the peak allocated since the
  previous call (then reset); on the CPU the process's resident-set high-water mark.

Seeds are always arguments here (sampling, data order, initialisation): row samples draw their
uniforms from per-row CPU generators (`sdtheory.lm.rollout.sample`) and small models are
initialised on the CPU, so a seed gives the same draws on the CPU and on a GPU; what may differ
is floating-point rounding (bf16, kernels that accumulate in a different order).
"""

from __future__ import annotations

import contextlib
import resource
import sys

import torch

__all__ = [
    "DEVICES",
    "PRECISIONS",
    "autocast",
    "configure",
    "describe",
    "memory_stats",
    "resolve_device",
    "resolve_precision",
]

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """The device named by `name` (`auto`, `cpu`, `cuda` or `cuda:N`).

    Raises:
        ValueError: for another name, or `cuda` where no CUDA device is visible.
    """
    if isinstance(name, torch.device):
        name = str(name)
    kind = str(name).split(":")[0]
    if kind not in DEVICES or (kind != "cuda" and ":" in str(name)):
        raise ValueError(f"device must be one of {DEVICES} (or cuda:N), got {name!r}")
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device is {name!r} but torch sees no CUDA device")
    return torch.device(name)


def resolve_precision(precision: str, device: torch.device) -> str:
    """`fp32` or `bf16`: `auto` is bf16 on CUDA and fp32 elsewhere."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bf16" if torch.device(device).type == "cuda" else "fp32"
    return precision


def configure(device: torch.device) -> None:
    """Backend switches for `device`: TF32 matrix products and convolutions on CUDA."""
    if torch.device(device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def autocast(device: torch.device, precision: str):
    """A context running matrix products in bf16 when `precision` is `bf16` (else a no-op)."""
    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def memory_stats(device: torch.device) -> dict:
    """`{"peak_memory_gib": ...}`: CUDA peak allocated since the last call, or the CPU RSS peak."""
    if torch.device(device).type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        return {"peak_memory_gib": round(peak / 2**30, 4)}
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return {"peak_memory_gib": round(kib * scale / 2**30, 4)}


def describe(device: torch.device) -> str:
    """The device in words: the GPU's name, or the CPU with its torch thread count."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} torch threads)"
