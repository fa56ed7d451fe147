"""The cost model against torch's own FLOP counter and a real KV cache (independent sources)."""

import pytest

from sdtheory.lm import cost


def test_smollm2_shape_gives_its_parameter_count():
    s, ff = cost.SMOLLM2_135M, 1536  # intermediate size of SmolLM2-135M (environment.md, 1a)
    kv = s.n_kv_heads * s.head_dim
    per_layer = 2 * s.hidden * s.attention_width + 2 * s.hidden * kv + 3 * s.hidden * ff
    per_layer += 2 * s.hidden  # two RMSNorm gains
    total = s.vocab * s.hidden + s.n_layers * per_layer + s.hidden  # tied head, final norm
    assert total == s.n_params == 134_515_008  # environment.md, 1a: "134,515,008 params"
    assert s.attention_width == s.hidden == 576


def test_formulas_by_hand_and_bad_input():
    s = cost.SMOLLM2_135M
    # 6N + 12 L H (T+1)/2 at T = 511: 6 * 134.5M + 12 * 30 * 576 * 256
    assert cost.train_flops_per_token(s, 511) == 6 * 134_515_008 + 12 * 30 * 576 * 256
    # bf16 decode of 64 sequences with 512 cached tokens: weights + 2*30*3*64*2 bytes per token
    assert cost.decode_bytes_per_step(s, 64, 512) == 2 * 134_515_008 + 23_040 * 64 * 512
    assert cost.train_state_bytes(s) == 16 * 134_515_008
    with pytest.raises(ValueError, match="context"):
        cost.forward_flops_per_token(s, 0)
    with pytest.raises(ValueError, match="batch"):
        cost.kv_cache_bytes(s, 0, 10)
    with pytest.raises(ValueError, match="n_layers"):
        cost.ModelShape(10, 0, 8, 2, 1, 4, 10)


@pytest.fixture(scope="module")
def tiny():
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from sdtheory.lm.models import small_model, tiny_tokenizer

    tok = tiny_tokenizer()
    model = small_model(tok, hidden_size=64, num_layers=3, num_heads=4, num_kv_heads=2)
    model.config._attn_implementation = "eager"  # plain matmuls, counted like any other
    norms = sum(p.numel() for n, p in model.named_parameters() if "norm" in n)
    n_matmul = sum(p.numel() for p in model.parameters()) - norms  # tied head counted once
    shape = cost.ModelShape.from_config(model.config, n_matmul)
    return torch, model, shape


@pytest.mark.parametrize("backward", [False, True])
def test_flops_equal_torchs_flop_counter(tiny, backward):
    torch, model, shape = tiny
    from torch.utils.flop_counter import FlopCounterMode

    B, T = 3, 17
    ids = torch.randint(0, shape.vocab, (B, T), generator=torch.Generator().manual_seed(0))
    model.train(backward)
    with FlopCounterMode(display=False) as fc:
        out = model(ids)
        if backward:
            out.logits.float().sum().backward()
    model.zero_grad(set_to_none=True)
    model.eval()
    per_token = cost.train_flops_per_token if backward else cost.forward_flops_per_token
    # eager attention multiplies the full T x T scores (the mask is applied after): causal=False
    want = per_token(shape, T, causal=False) * B * T
    assert fc.get_total_flops() == pytest.approx(want, rel=1e-12)


def test_kv_cache_bytes_equal_a_real_cache(tiny):
    torch, model, shape = tiny
    B, T = 2, 9
    ids = torch.randint(0, shape.vocab, (B, T), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        cache = model(ids, use_cache=True).past_key_values
    layers = getattr(cache, "layers", None)
    tensors = (
        [t for layer in layers for t in (layer.keys, layer.values)]
        if layers is not None
        else [t for kv in cache for t in kv[:2]]
    )
    got = sum(t.numel() * t.element_size() for t in tensors)
    assert got == cost.kv_cache_bytes(shape, B, T, kv_bytes=4)  # fp32 cache
