r"""Cost model of a decoder-only transformer: training FLOPs, memory, and decode bytes per step.

Estimates to size runs before they are made (`docs/lm/gpu.md`), for a model with $N$ parameters
(tied embeddings counted once), $L$ layers, attention width $H_a = n_\text{heads} d_\text{head}$,
$n_\text{kv}$ key/value heads, vocabulary $V$, at context length $T$:

* forward FLOPs per token: $2N + 4 L H_a \bar T$, where $\bar T$ is the mean number of keys a
  query attends to ($(T+1)/2$ under a causal mask, $T$ without): $2N$ for the matrix products
  with the weights (the $6N$ rule of Kaplan et al. 2020 once tripled) and $2 H_a \bar T$ for each
  of $QK^\top$ and $AV$ in every layer ([derived] here, checked against torch's FLOP counter in
  `tests/lm/test_cost.py`); training (forward + backward) is three times that,
  $6N + 12 L H_a \bar T \approx 6N + 6 L H_a T$ causal;
* one decode step of a batch $B$ with $T$ cached tokens reads the weights once and the KV cache
  once: $N b_w + 2 L n_\text{kv} d_\text{head} b_\text{kv} B T$ bytes; on a GPU it is
  memory-bandwidth bound (bytes / bandwidth) until the per-step launch and Python overhead of
  eager generation is larger;
* training memory: $N(b_w + b_g + b_\text{opt})$ bytes of weights, gradients and AdamW moments
  (4 + 4 + 8 in fp32), plus activations saved for backward, measured per token by
  `benchmarks/bench_cost_model.py` (estimates are not measurements: calibrate them there).

Every function here is plain arithmetic on a `ModelShape` (no torch), so sizing code can run
anywhere. `SMOLLM2_135M` is SmolLM2-135M-Instruct.

References:
    Kaplan et al. 2020, "Scaling Laws for Neural Language Models", arXiv:2001.08361 (the $6N$
    rule for training FLOPs per token).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core._checks import check_positive_int

__all__ = [
    "DEVICES",
    "SMOLLM2_135M",
    "DeviceSpec",
    "ModelShape",
    "decode_bytes_per_step",
    "forward_flops_per_token",
    "kv_cache_bytes",
    "train_flops_per_token",
    "train_state_bytes",
]


@dataclass(frozen=True)
class ModelShape:
    """The sizes the cost model needs (`n_params` counts tied embeddings once)."""

    n_params: int
    n_layers: int
    hidden: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab: int

    def __post_init__(self):
        for name in (
            "n_params",
            "n_layers",
            "hidden",
            "n_heads",
            "n_kv_heads",
            "head_dim",
            "vocab",
        ):
            check_positive_int(getattr(self, name), name)

    @property
    def attention_width(self) -> int:
        """$H_a = n_\\text{heads} d_\\text{head}$ (the width of queries, keys and values)."""
        return self.n_heads * self.head_dim

    @classmethod
    def from_config(cls, config, n_params: int) -> ModelShape:
        """From a Hugging Face Llama-style config and the model's parameter count."""
        heads = config.num_attention_heads
        return cls(
            n_params=int(n_params),
            n_layers=config.num_hidden_layers,
            hidden=config.hidden_size,
            n_heads=heads,
            n_kv_heads=getattr(config, "num_key_value_heads", None) or heads,
            head_dim=getattr(config, "head_dim", None) or config.hidden_size // heads,
            vocab=config.vocab_size,
        )


# SmolLM2-135M-Instruct: 134,515,008 parameters (tied), 30 layers, H = 576, 9 heads of 64, 3 KV
# heads, V = 49,152 (docs/lm/gpu.md; the numbers of the converted checkpoint's config.json).
SMOLLM2_135M = ModelShape(134_515_008, 30, 576, 9, 3, 64, 49_152)


@dataclass(frozen=True)
class DeviceSpec:
    """Vendor peak numbers: dense bf16 tensor-core FLOP/s and memory bandwidth (bytes/s)."""

    bf16_flops: float
    bandwidth: float


# NVIDIA datasheets (peaks, not measurements): H100 SXM 989 TFLOP/s dense bf16, 3.35 TB/s HBM3;
# H100 PCIe 756 TFLOP/s, 2.0 TB/s; H200 989 TFLOP/s, 4.8 TB/s HBM3e.
DEVICES = {
    "H100-SXM": DeviceSpec(989e12, 3.35e12),
    "H100-PCIe": DeviceSpec(756e12, 2.0e12),
    "H200": DeviceSpec(989e12, 4.8e12),
}


def _mean_keys(context: int, causal: bool) -> float:
    context = check_positive_int(context, "context")
    return (context + 1) / 2 if causal else float(context)


def forward_flops_per_token(shape: ModelShape, context: int, *, causal: bool = True) -> float:
    r"""Forward FLOPs per token: $2N + 4 L H_a \bar T$ ($\bar T = (T+1)/2$ causal, else $T$).

    Example:
        >>> s = ModelShape(1000, 2, 8, 2, 1, 4, 10)
        >>> forward_flops_per_token(s, 3, causal=False) == 2 * 1000 + 4 * 2 * 8 * 3
        True
    """
    return 2.0 * shape.n_params + 4.0 * shape.n_layers * shape.attention_width * _mean_keys(
        context, causal
    )


def train_flops_per_token(shape: ModelShape, context: int, *, causal: bool = True) -> float:
    r"""Forward + backward FLOPs per token: $3 \times$ `forward_flops_per_token` ($6N + \dots$)."""
    return 3.0 * forward_flops_per_token(shape, context, causal=causal)


def kv_cache_bytes(shape: ModelShape, batch: int, context: int, kv_bytes: int = 2) -> float:
    r"""Bytes of the KV cache: $2 L n_\text{kv} d_\text{head} b_\text{kv} B T$."""
    batch = check_positive_int(batch, "batch")
    context = check_positive_int(context, "context", minimum=0)
    per_token = 2 * shape.n_layers * shape.n_kv_heads * shape.head_dim * int(kv_bytes)
    return float(per_token) * batch * context


def decode_bytes_per_step(
    shape: ModelShape, batch: int, context: int, *, weight_bytes: int = 2, kv_bytes: int = 2
) -> float:
    r"""Bytes one decode step reads: the weights once, plus the whole KV cache.

    $N b_w + 2 L n_\text{kv} d_\text{head} b_\text{kv} B T$ (activations are negligible at
    these sizes); divided by the memory bandwidth it is the bandwidth-bound floor of a step.
    """
    return float(shape.n_params) * int(weight_bytes) + kv_cache_bytes(
        shape, batch, context, kv_bytes
    )


def train_state_bytes(
    shape: ModelShape, *, weight_bytes: int = 4, grad_bytes: int = 4, optimizer_bytes: int = 8
) -> float:
    r"""Weights, gradients and optimiser state: $N (b_w + b_g + b_\text{opt})$ (AdamW fp32: 16N)."""
    return float(shape.n_params) * (int(weight_bytes) + int(grad_bytes) + int(optimizer_bytes))
