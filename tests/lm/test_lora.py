"""LoRA (`--lora-rank`): only adapters train, the fixed self-teacher is the base model exactly
(no second copy of the weights), the EMA teacher averages adapters only, resume is exact, and
`sdtheory export` merges the adapters into a checkpoint that `from_pretrained` loads."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")
pytest.importorskip("reasoning_gym")
pytest.importorskip("peft")

from sdtheory.lm import export, lora, models  # noqa: E402
from sdtheory.lm.rollout import completion_logits  # noqa: E402
from sdtheory.lm.trainers import TrainConfig, Trainer  # noqa: E402
from tests.lm._tiny import tiny  # noqa: E402

FAST = tiny(n_eval=2, k=2, max_new_tokens=8, lr=3e-2, lora_rank=4)


def _base():
    return models.build_model("tiny", hidden_size=32, num_layers=2, seed=0)[0]


def _score_rows(tr):
    """A batch of rollouts from the trainer (prompts, completions, mask) to score."""
    batch = tr.make_batch(0)
    ro = batch.rollouts
    return batch.rows, ro.completions, ro.completion_mask


def test_only_adapters_train_and_fixed_teacher_is_the_base_model(tmp_path):
    tr = Trainer(TrainConfig(method="opsd", steps=3, out=str(tmp_path), **FAST))
    assert lora.is_lora(tr.unwrapped)
    base = _base()
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    trained = lora.adapter_parameters(tr.unwrapped)
    assert trained and all("lora_" in n for n in trained)
    opt_params = [p for g in tr.opt.param_groups for p in g["params"]]
    assert {id(p) for p in opt_params} == {id(p) for p in trained.values()}
    before = {n: p.detach().clone() for n, p in trained.items()}
    tr.train()
    # adapters moved (B starts at 0), every base weight is bit for bit the initial one
    assert any(not torch.equal(before[n], p) for n, p in trained.items())
    merged_names = {
        n.replace("base_model.model.", "").replace(".base_layer", ""): p
        for n, p in tr.unwrapped.named_parameters()
        if "lora_" not in n
    }
    assert len(set(base_state) & set(merged_names)) == len(merged_names) >= 10
    for k, v in base_state.items():
        if k in merged_names:
            assert torch.equal(merged_names[k], v), k
    # the fixed teacher is the student's own network (no copy) with the adapters off
    assert tr.teacher.model is tr.unwrapped
    rows, comp, mask = _score_rows(tr)
    prompts = tr.teacher.prompts(rows)
    t_logits = tr.teacher.logits(rows, comp, mask)
    with torch.no_grad():
        b_logits = completion_logits(base, prompts, comp, mask, share_prompts=True)
        s_logits = completion_logits(tr.unwrapped.eval(), prompts, comp, mask, share_prompts=True)
    assert float((t_logits - b_logits).abs().max()) == 0.0
    assert float((s_logits - b_logits).abs().max()) > 1e-4  # the adapted student differs


def test_no_second_copy_of_the_weights(tmp_path):
    """Fixed self-teacher: full fine-tuning holds a deep copy; LoRA holds none."""

    def teacher_bytes(tr):
        student = {p.data_ptr() for p in tr.unwrapped.parameters()}
        return sum(
            p.numel() * p.element_size()
            for p in tr.teacher.model.parameters()
            if p.data_ptr() not in student
        )

    full = Trainer(TrainConfig(method="opsd", out=str(tmp_path / "a"), **{**FAST, "lora_rank": 0}))
    low = Trainer(TrainConfig(method="opsd", out=str(tmp_path / "b"), **FAST))
    n_full = sum(p.numel() * p.element_size() for p in full.unwrapped.parameters())
    assert teacher_bytes(full) == n_full
    assert teacher_bytes(low) == 0


def test_ema_teacher_averages_adapters_only(tmp_path):
    cfg = TrainConfig(
        method="opsd", steps=2, out=str(tmp_path), teacher_mode="ema", ema_rate=0.5, **FAST
    )
    tr = Trainer(cfg)
    ema = tr.teacher.ema_adapters
    assert set(ema) == set(lora.adapter_parameters(tr.unwrapped))
    expect = {n: t.detach().clone() for n, t in ema.items()}
    for _ in range(2):
        tr.train_step()
        for n, p in lora.adapter_parameters(tr.unwrapped).items():
            expect[n] = 0.5 * expect[n] + 0.5 * p.detach()
    for n, t in ema.items():
        torch.testing.assert_close(t, expect[n], rtol=1e-6, atol=1e-7)
    # scoring swaps the EMA adapters in and restores the student's afterwards
    rows, comp, mask = _score_rows(tr)
    live = {n: p.detach().clone() for n, p in lora.adapter_parameters(tr.unwrapped).items()}
    got = tr.teacher.logits(rows, comp, mask)
    with torch.no_grad():
        for n, p in lora.adapter_parameters(tr.unwrapped).items():
            p.copy_(ema[n])
        want = completion_logits(
            tr.unwrapped.eval(), tr.teacher.prompts(rows), comp, mask, share_prompts=True
        )
        for n, p in lora.adapter_parameters(tr.unwrapped).items():
            p.copy_(live[n])
    assert torch.equal(got, want)
    for n, p in lora.adapter_parameters(tr.unwrapped).items():
        assert torch.equal(p, live[n])


def test_blend_moves_the_teacher_adapters(tmp_path):
    """`SelfTeacher.blend` (SD-Zero, UniSD) with LoRA: a fixed teacher never moved is B = 0 (the
    base model); blending moves its adapter tensors toward the student's, rate 1 copies them."""
    tr = Trainer(TrainConfig(method="opsd", steps=1, out=str(tmp_path), **FAST))
    tr.train()
    student = lora.adapter_parameters(tr.unwrapped)
    assert tr.teacher.ema_adapters == {}
    tr.teacher.blend(tr.unwrapped, 0.25)
    got = tr.teacher.ema_adapters
    assert set(got) == set(student)
    for n, p in student.items():  # from (A, 0): A' = A_S, B' = r B_S, so the update is r times
        want = 0.25 * p.detach() if "lora_B" in n else p.detach()
        torch.testing.assert_close(got[n], want, rtol=1e-6, atol=0)
    assert any(float(p.detach().abs().max()) > 0 for n, p in student.items() if "lora_B" in n)
    tr.teacher.blend(tr.unwrapped, 1.0)  # re-synchronised: the teacher is the student exactly
    rows, comp, mask = _score_rows(tr)
    got = tr.teacher.logits(rows, comp, mask)
    with torch.no_grad():
        want = completion_logits(
            tr.unwrapped.eval(), tr.teacher.prompts(rows), comp, mask, share_prompts=True
        )
    assert torch.equal(got, want)


@pytest.mark.parametrize(
    "method, mode, extra",
    [
        ("opsd", "fixed", {}),
        ("opsd", "ema", {}),
        ("unisd", "fixed", {"unisd_ema_every": 1, "unisd_ema_beta": 0.5}),  # blends each step
    ],
    ids=["fixed", "ema", "unisd-blend"],
)
def test_lora_resume_equals_uninterrupted(tmp_path, method, mode, extra):
    base = dict(method=method, steps=4, teacher_mode=mode, ema_rate=0.3, **FAST, **extra)
    full = Trainer(TrainConfig(out=str(tmp_path / "full"), **base))
    full.train()
    Trainer(TrainConfig(out=str(tmp_path / "part"), **base)).train(until=2)
    state = torch.load(tmp_path / "part" / "checkpoint" / "state.pt", weights_only=False)
    assert state["model"] and all("lora_" in k for k in state["model"])  # adapters only
    assert (tmp_path / "part" / "checkpoint" / "adapter" / "adapter_config.json").is_file()
    resumed = Trainer(TrainConfig(out=str(tmp_path / "part"), resume=True, **base))
    assert resumed.step == 2
    resumed.train()
    for a, b in zip(full.unwrapped.parameters(), resumed.unwrapped.parameters(), strict=True):
        assert torch.equal(a, b)
    for n, t in full.teacher.ema_adapters.items():
        assert torch.equal(t, resumed.teacher.ema_adapters[n])


def test_export_merges_adapters(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = tmp_path / "run"
    tr = Trainer(TrainConfig(method="opsd", steps=2, out=str(run), **FAST))
    tr.train()
    assert export.main([str(run), str(tmp_path / "merged")]) == 0
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    tok = AutoTokenizer.from_pretrained(tmp_path / "merged")
    assert tok.chat_template == tr.tok.chat_template
    assert not any("lora" in n for n, _ in merged.named_parameters())
    rows, comp, mask = _score_rows(tr)
    prompts = tr.student_prompts(rows)
    with torch.no_grad():
        want = completion_logits(tr.unwrapped.eval(), prompts, comp, mask)
        got = completion_logits(merged.eval(), prompts, comp, mask)
    assert float((want - _base_logits(prompts, comp, mask)).abs().max()) > 1e-4
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def _base_logits(prompts, comp, mask):
    with torch.no_grad():
        return completion_logits(_base().eval(), prompts, comp, mask)


def test_bad_lora_flags_are_refused():
    with pytest.raises(ValueError, match="lora_targets must not include"):
        TrainConfig(method="opsd", lora_rank=4, lora_targets="q_proj,lm_head")
    with pytest.raises(ValueError, match="lora_dropout"):
        TrainConfig(method="opsd", lora_rank=4, lora_dropout=1.0)
    with pytest.raises(ValueError, match="lora_rank"):
        TrainConfig(method="opsd", lora_rank=-1)
    with pytest.raises(ValueError, match="lora_targets"):
        Trainer(TrainConfig(method="opsd", **{**FAST, "lora_targets": "no_such_proj"}))


@pytest.mark.parametrize("rank", [0, 4])
def test_gradient_checkpointing_takes_the_same_steps(tmp_path, rank):
    """Recomputing activations in the backward pass changes memory, not the update."""
    runs = []
    for gc in (False, True):
        cfg = TrainConfig(
            method="opsd",
            steps=2,
            out=str(tmp_path / f"gc{gc}"),
            gradient_checkpointing=gc,
            **{**FAST, "lora_rank": rank},
        )
        tr = Trainer(cfg)
        hist = [r for r in tr.train() if r["kind"] == "train"]
        runs.append((tr, hist))
    (a, ha), (b, hb) = runs
    base = [t.unwrapped.get_base_model() if rank else t.unwrapped for t in (a, b)]
    assert [m.model.gradient_checkpointing for m in base] == [False, True]
    for x, y in zip(ha, hb, strict=True):
        assert x["loss"] == pytest.approx(y["loss"], rel=1e-6)
        assert x["grad_norm"] == pytest.approx(y["grad_norm"], rel=1e-4)
    for p, q in zip(a.unwrapped.parameters(), b.unwrapped.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_effopd_extrapolates_the_adapters_only(tmp_path):
    """EffOPD moves trainable weights only: with LoRA the adapters, never the frozen base."""
    tr = Trainer(TrainConfig(method="effopd", steps=1, out=str(tmp_path), **FAST))
    adapters = lora.adapter_parameters(tr.unwrapped)
    assert tr.method.names and all(n in adapters for n in tr.method.names)
    before = {n: p.detach().clone() for n, p in tr.unwrapped.named_parameters()}
    tr.train()  # step 1 is a checkpoint: the search runs
    for n, p in tr.unwrapped.named_parameters():
        assert n in adapters or torch.equal(p, before[n]), n
