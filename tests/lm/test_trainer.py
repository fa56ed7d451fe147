"""The on-policy trainer on tiny models: loss falls, determinism, exact resume, privileged view
hidden from the student, only completion tokens in the loss, GRPO advantages."""

import json
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")
pytest.importorskip("reasoning_gym")

from sdtheory.lm import models, teachers  # noqa: E402
from sdtheory.lm.methods.shared import grpo_advantages  # noqa: E402
from sdtheory.lm.trainers import TrainConfig, Trainer  # noqa: E402
from tests.lm._tiny import tiny  # noqa: E402

# small, fast defaults: 2 problems x 2 samples x <= 8 new tokens per step on a 2-layer model
FAST = tiny(n_eval=2, k=2, max_new_tokens=8)


def _params(trainer):
    return torch.cat([p.detach().flatten() for p in trainer.unwrapped.parameters()])


def _train_records(out):
    lines = (out / "metrics.jsonl").read_text().splitlines()
    recs = [json.loads(x) for x in lines]
    drop = ("time_generate", "time_teacher", "time_student", "time_step", "example")
    drop += ("tokens_per_s", "peak_memory_gib")  # measurements of the machine
    return [{k: v for k, v in r.items() if k not in drop} for r in recs]


def test_gkd_loss_falls_on_toy_task(tmp_path):
    """A tiny student distilled toward a separate, peaked tiny teacher on its own samples: the
    mean JSD of the last 3 of 12 steps is below 0.7x the first 3 (measured: 0.67 -> 1e-4)."""
    tok = models.tiny_tokenizer()
    teacher = models.small_model(
        tok, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, seed=7
    )
    with torch.no_grad():  # sharpen the teacher: its logits scale with the tied embeddings
        teacher.model.embed_tokens.weight.mul_(40.0)
    cfg = TrainConfig(method="gkd", steps=12, lr=5e-2, out=str(tmp_path), **{**FAST, "n_eval": 0})
    hist = [r for r in Trainer(cfg, teacher_model=teacher).train() if r["kind"] == "train"]
    first = sum(r["loss"] for r in hist[:3]) / 3
    last = sum(r["loss"] for r in hist[-3:]) / 3
    assert last < 0.7 * first, (first, last)


def test_deterministic_under_seed(tmp_path):
    cfgs = [
        TrainConfig(method="opsd", steps=2, lr=1e-3, out=str(tmp_path / n), seed=s, **FAST)
        for n, s in (("a", 0), ("b", 0), ("c", 1))
    ]
    ts = [Trainer(c) for c in cfgs]
    for t in ts:
        t.train()
    assert torch.equal(_params(ts[0]), _params(ts[1]))
    assert _train_records(tmp_path / "a") == _train_records(tmp_path / "b")
    assert not torch.equal(_params(ts[0]), _params(ts[2]))


@pytest.mark.parametrize(
    "method, extra",
    [
        ("opsd", dict(teacher_mode="ema", ema_rate=0.3)),
        ("gkd", dict(teacher_model="tiny", gkd_lambda=0.5, schedule="cosine", warmup_steps=1)),
    ],
)
def test_resume_equals_uninterrupted(tmp_path, method, extra):
    base = dict(method=method, steps=4, lr=3e-3, **FAST, **extra)
    full = Trainer(TrainConfig(out=str(tmp_path / "full"), **base))
    full.train()
    part = Trainer(TrainConfig(out=str(tmp_path / "part"), **base))
    part.train(until=2)  # an interrupted run: same config, checkpoint after step 2
    resumed = Trainer(TrainConfig(out=str(tmp_path / "part"), resume=True, **base))
    assert resumed.step == 2
    resumed.train()
    assert torch.equal(_params(full), _params(resumed))
    if resumed.teacher is not None:
        tf = torch.cat([p.flatten() for p in full.teacher.model.parameters()])
        tr = torch.cat([p.flatten() for p in resumed.teacher.model.parameters()])
        assert torch.equal(tf, tr)
    a = [r for r in _train_records(tmp_path / "full") if r["kind"] == "train"]
    b = [r for r in _train_records(tmp_path / "part") if r["kind"] == "train"]
    assert a == b and [r["step"] for r in a] == [1, 2, 3, 4]
    assert len({r["on_policy"] for r in a}) == 2 or method != "gkd"  # both GKD branches ran
    with pytest.raises(ValueError, match="differs"):
        Trainer(TrainConfig(out=str(tmp_path / "part"), resume=True, **{**base, "lr": 1.0}))


def test_student_never_sees_privileged_view(tmp_path):
    cfg = TrainConfig(method="opsd", steps=1, out=str(tmp_path), **{**FAST, "n_eval": 0})
    tr = Trainer(cfg)
    seen = {"student": [], "teacher": []}

    def spy(name):
        def hook(module, args, kwargs):
            if kwargs.get("cache") is None:  # a prompt pass (later passes reuse its cache)
                seen[name].extend(kwargs["input_ids"].tolist())

        return hook

    tr.unwrapped.register_forward_pre_hook(spy("student"), with_kwargs=True)
    tr.teacher.model.register_forward_pre_hook(spy("teacher"), with_kwargs=True)
    tr.train_step()
    problems = [tr.train_set[i] for i in tr.batch_indices(0)]
    student_text = [tr.tok.decode(r) for r in seen["student"]]
    teacher_text = [tr.tok.decode(r) for r in seen["teacher"]]
    assert student_text and teacher_text
    for text in student_text:
        assert teachers.TEACHER_INTRO not in text
        assert not any(p.solution in text for p in problems)
    assert all(teachers.TEACHER_INTRO in t for t in teacher_text)
    assert sum(any(p.solution in t for p in problems) for t in teacher_text) == len(teacher_text)


@pytest.mark.parametrize("method, fused", [("opsd", True), ("opsd", False), ("grpo", True)])
def test_only_completion_tokens_enter_loss(tmp_path, method, fused):
    """The gradient of the loss w.r.t. the student's output (final hidden states for the fused
    loss, logits otherwise) vanishes at every position that does not predict a completion token
    (prompt, padding after end of turn), and not at the others."""
    cfg = TrainConfig(
        method=method, steps=1, out=str(tmp_path), fused_loss=fused, **{**FAST, "n_eval": 0}
    )
    tr = Trainer(cfg)
    grads, inputs = [], []

    def hook(module, args, kwargs, output):
        if not torch.is_grad_enabled():
            return
        inputs.append((kwargs["input_ids"], kwargs["attention_mask"]))
        # the hidden path never projects the prompt onto the vocabulary; watch what it returns
        watched = output.hidden_states[-1] if output.hidden_states is not None else output.logits
        watched.register_hook(lambda g: grads.append(g.detach().clone()))

    tr.unwrapped.register_forward_hook(hook, with_kwargs=True)
    tr.stops = list(range(0, len(tr.tok), 4))  # a quarter of the vocabulary ends a turn
    calls = iter(range(10**6))  # alternate rewards so GRPO advantages are not all zero
    tr.task.verify = lambda text, problem: float(next(calls) % 2)
    problems = [tr.train_set[i] for i in tr.batch_indices(0)]
    tr.train_step()
    (g,), ((ids, attn),) = grads, inputs
    pw = max(len(tr.student_prompts([p])[0]) for p in problems)  # left-padded prompt width
    n_comp = ids.shape[1] - pw
    offset = ids.shape[1] - g.shape[1]  # columns of the full sequence not returned (logits)
    predicts = torch.zeros(ids.shape, dtype=torch.bool)
    predicts[:, pw - 1 : pw - 1 + n_comp] = attn[:, pw:].bool()  # column j predicts token j+1
    predicts = predicts[:, offset:]
    assert not predicts.all()  # some rows stopped early: padding is present
    norms = g.abs().sum(-1)
    assert (norms[~predicts] == 0).all()
    assert (norms[predicts] > 0).all()


def test_fused_loss_matches_plain_loss(tmp_path):
    base = dict(method="opsd", steps=2, lr=3e-3, **FAST)
    a = Trainer(TrainConfig(out=str(tmp_path / "a"), fused_loss=True, **base))
    b = Trainer(TrainConfig(out=str(tmp_path / "b"), fused_loss=False, **base))
    ha, hb = a.train(), b.train()
    la = [r["loss"] for r in ha if r["kind"] == "train"]
    lb = [r["loss"] for r in hb if r["kind"] == "train"]
    assert la == pytest.approx(lb, rel=1e-4)  # fp32 chunked vs one-shot evaluation
    # weights move ~6e-3 (2 AdamW steps at lr 3e-3); gradients agree to fp32 roundoff, which
    # Adam's g/(|g| + eps) amplifies on near-zero gradients: measured 2.4e-5, allow 1e-4
    assert float((_params(a) - _params(b)).abs().max()) < 1e-4


def test_grpo_advantages_group_relative():
    r = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    g = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    a = grpo_advantages(r, g)
    # group 0: mean 0.25, sample std sqrt(0.25) = 0.5 -> (0.75/0.5, -0.25/0.5) up to eps = 1e-4
    assert torch.allclose(a[:4], torch.tensor([1.5, -0.5, -0.5, -0.5]), atol=1e-3)
    assert (a[4:] == 0).all()  # all-correct group: no signal
    assert torch.allclose(
        grpo_advantages(r, g, scale=False)[:4], torch.tensor([0.75, -0.25, -0.25, -0.25])
    )
    for gi in (0, 1):
        assert abs(float(a[g == gi].sum())) < 1e-6


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(method="ppo"), "method"),
        (dict(k=0), "k"),
        (dict(method="grpo", k=1), "k"),
        (dict(support="teacher_topk"), "topk"),
        (dict(rho=2.0), "rho"),
        (dict(view="hint"), "view"),
    ],
)
def test_config_rejects_bad_values(bad, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**bad)


# ----------------------------------------------------------------------------- user traps
def _nan_at(trainer, step, where="loss"):
    """Make step `step` (1-based) produce a NaN loss, or a NaN gradient with a finite loss."""
    orig = trainer.method.loss

    def loss(batch):
        value, metrics = orig(batch)
        if batch.step + 1 != step:
            return value, metrics
        if where == "loss":
            return value * float("nan"), metrics
        w = next(trainer.unwrapped.parameters())  # sqrt'(0) = inf: value + 0, gradient NaN
        return value + 0.0 * torch.sqrt((w - w.detach()).pow(2).sum()), metrics

    trainer.method.loss = loss


@pytest.mark.parametrize("where", ["loss", "gradient"])
def test_non_finite_step_stops_the_run_and_keeps_the_last_checkpoint(tmp_path, where):
    from sdtheory.lm.trainers import NonFiniteError

    cfg = TrainConfig(method="opsd", steps=4, lr=1e-2, save_every=1, out=str(tmp_path), **FAST)
    tr = Trainer(cfg)
    _nan_at(tr, 3, where)
    with pytest.raises(NonFiniteError, match=r"step 3: non-finite .* step 2\) is kept") as e:
        tr.train()
    assert ("loss (nan)" in str(e.value)) == (where == "loss")
    assert "gradient norm (nan)" in str(e.value)
    state = torch.load(tmp_path / "checkpoint" / "state.pt", weights_only=False)
    assert state["step"] == 2 and tr.step == 2
    for k, v in tr.unwrapped.state_dict().items():  # the NaN step was never applied
        assert torch.equal(v, state["model"][k]) and torch.isfinite(v).all()
    recs = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert recs[-1]["kind"] == "error" and recs[-1]["step"] == 3
    resumed = Trainer(TrainConfig(**{**cfg.to_dict(), "resume": True}))  # continues from step 2
    assert resumed.step == 2 and [r["step"] for r in resumed.train() if r["kind"] == "train"] == [
        3,
        4,
    ]


def test_non_finite_loss_ends_the_command_with_one_line(tmp_path, monkeypatch, capsys):
    from sdtheory.lm import train_cli
    from sdtheory.lm.methods.distill import OPSD

    orig = OPSD.loss

    def loss(self, batch):
        value, metrics = orig(self, batch)
        return (value * float("nan") if batch.step == 1 else value), metrics

    monkeypatch.setattr(OPSD, "loss", loss)
    argv = [
        "opsd",
        "--model",
        "tiny",
        "--hidden-size",
        "32",
        "--n-train",
        "8",
        "--n-eval",
        "0",
        "--batch-problems",
        "2",
        "--k",
        "2",
        "--max-new-tokens",
        "6",
        "--steps",
        "3",
        "--progress",
        "false",
        "--out",
        str(tmp_path),
    ]
    assert train_cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("sdtheory train: error: step 2: non-finite") and err.count("\n") == 1
    assert not (tmp_path / "checkpoint").exists()  # nothing was saved after the NaN


def test_grad_norm_is_logged_without_clipping(tmp_path):
    """`--grad-clip 0` logs the gradient norm (it was NaN); the logged norm is the one before
    clipping, so the first step logs the same norm with and without a clip."""
    runs = {}
    for clip in (0.0, 1e-6):
        cfg = TrainConfig(
            method="opsd",
            steps=1,
            grad_clip=clip,
            out=str(tmp_path / str(clip)),
            **{**FAST, "n_eval": 0},
        )
        runs[clip] = Trainer(cfg).train()[0]["grad_norm"]
    assert math.isfinite(runs[0.0]) and runs[0.0] > 1e-6
    assert runs[0.0] == pytest.approx(runs[1e-6], rel=1e-6)


def test_system_prompt_is_an_explicit_choice(tmp_path):
    """'template' keeps the chat template's own default (none for the tiny tokenizer); any
    other text is the system message of student and teacher prompts; prompts.txt shows both."""
    base = dict(method="opsd", steps=1, **{**FAST, "n_eval": 0})
    plain = Trainer(TrainConfig(out=str(tmp_path / "a"), **base))
    told = Trainer(TrainConfig(out=str(tmp_path / "b"), system_prompt="Be brief.", **base))
    p = plain.train_set[0]
    assert "system" not in plain.tok.decode(plain.student_prompts([p])[0])
    for ids in (told.student_prompts([p])[0], told.teacher.prompts([p])[0]):
        assert told.tok.decode(ids).startswith("<|im_start|>system\nBe brief.<|im_end|>")
    told.train()
    text = (tmp_path / "b" / "prompts.txt").read_text()
    assert text.count("Be brief.") == 2 and "teacher prompt" in text


def test_grpo_log_probs_use_the_sampling_temperature(tmp_path):
    """GRPO's per-token gradient is that of -A log softmax(z / T)(y), T the sampling temperature
    (TRL's convention), checked against a hand computation on the step's own logits."""
    from sdtheory.lm.methods.shared import grpo_advantages, grpo_loss

    cfg = TrainConfig(method="grpo", steps=1, temperature=0.7, out=str(tmp_path), **FAST)
    tr = Trainer(cfg)
    calls = iter(range(10**6))  # alternate rewards so the advantages are not all zero
    tr.task.verify = lambda text, problem: float(next(calls) % 2)
    batch = tr.make_batch(0)
    z = batch.student.logits()
    got = torch.autograd.grad(grpo_loss(batch, cfg), z, retain_graph=True)[0]
    adv = grpo_advantages(batch.rewards, batch.groups)
    lp = torch.log_softmax(z.float() / 0.7, -1).gather(-1, batch.rollouts.completions[..., None])
    ref_loss = -(adv[:, None] * lp.squeeze(-1) * batch.mask).sum() / batch.mask.sum()
    ref = torch.autograd.grad(ref_loss, z)[0]
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-7)
    lp1 = torch.log_softmax(z.float(), -1).gather(-1, batch.rollouts.completions[..., None])
    at_one = -(adv[:, None] * lp1.squeeze(-1) * batch.mask).sum() / batch.mask.sum()
    assert not torch.allclose(got, torch.autograd.grad(at_one, z)[0], atol=1e-6)  # T = 1 differs


def test_loss_mask_trains_on_a_subset_of_the_attended_tokens(tmp_path):
    """A source may mark completion tokens the model attends to but never trains on (tool
    outputs of a multi-turn rollout): `Rollouts.loss_mask`. The loss's gradient with respect to
    the student's hidden states vanishes there and not elsewhere; the teacher and the student
    still see every completion token."""
    tr = Trainer(TrainConfig(method="opsd", steps=1, out=str(tmp_path), **{**FAST, "n_eval": 0}))
    assert tr.method.ctx.student is tr.unwrapped and callable(tr.method.ctx.evaluate)
    batch = tr.make_batch(0)
    ro = batch.rollouts
    cols = torch.arange(ro.completions.shape[1])[None, :]
    ro.loss_mask = ro.completion_mask & (cols % 2 == 0)  # train on every other token
    h = batch.student.hidden()
    h.retain_grad()
    loss, _ = tr.method.loss(batch)
    loss.backward()
    g = h.grad.abs().sum(-1)
    assert (g[~ro.loss_mask] == 0).all() and (g[ro.loss_mask] > 0).all()
    assert (ro.completion_mask & ~ro.loss_mask).any()  # some attended tokens were left out
