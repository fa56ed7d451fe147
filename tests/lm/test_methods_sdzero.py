"""SD-Zero on hand-made inputs: the reviser context, the self-revision rows and loss, the teacher
re-synchronisation and the mixed top-k KL."""

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")
pytest.importorskip("reasoning_gym")

from sdtheory.lm import teachers  # noqa: E402
from sdtheory.lm.losses import token_divergence  # noqa: E402
from sdtheory.lm.methods.sdzero import attempt_tokens, revision_rows  # noqa: E402
from sdtheory.lm.models import tiny_tokenizer  # noqa: E402
from sdtheory.lm.trainers import TrainConfig, Trainer  # noqa: E402
from tests.lm._tiny import EvenTask, tiny  # noqa: E402

FAST = tiny(k=4, lr=1e-2)


@pytest.mark.claim("methods.sdzero-reviser-context")
def test_revision_prompt_ids_layout():
    tok = tiny_tokenizer()
    prompt, attempt = [11, 12, 13], tok("1 + 2 = 4", add_special_tokens=False)["input_ids"]
    for reward, cue in ((0.0, teachers.REVISION_CUES[0]), (1.0, teachers.REVISION_CUES[1])):
        ids = teachers.revision_prompt_ids(tok, prompt, attempt, reward)
        delim = tok(f"\n\n{cue}\n\n", add_special_tokens=False)["input_ids"]
        assert ids == prompt + list(attempt) + delim  # prompt, attempt, cue: nothing else
        assert tok.decode(ids[3:]) == f"1 + 2 = 4\n\n{cue}\n\n"
    # the code's rule: reward > 0.5 is correct [distillation.py, _phase2_select_p_r]
    assert teachers.REVISION_CUES[0] in tok.decode(teachers.revision_prompt_ids(tok, [], [], 0.5))
    assert teachers.REVISION_CUES[1] in tok.decode(teachers.revision_prompt_ids(tok, [], [], 0.6))
    assert teachers.REVISION_CUES[0] == "Wait, this response is wrong. Let me correct it."


def test_attempt_tokens_and_rows():
    m = torch.tensor([True, True, True, False])
    assert attempt_tokens(torch.tensor([5, 6, 2, 0]), m, [2]) == [5, 6]  # stop token dropped
    assert attempt_tokens(torch.tensor([5, 6, 7, 0]), m, [2]) == [5, 6, 7]  # cut: nothing to drop
    assert attempt_tokens(torch.tensor([2, 6, 7, 0]), m, [2]) == [2, 6, 7]  # only at the end
    gp, gc, rp, rc = revision_rows([1], [7, 8], [9, 9], [4, 2])
    assert (gp, gc, rp, rc) == ([1], [7, 8, 9, 9, 4, 2], [1, 7, 8, 9, 9], [4, 2])
    assert gp + gc == rp + rc  # the same token stream, split at a different point


@pytest.mark.claim("methods.sdzero-reviser-context")
def test_teacher_scores_the_attempt_after_the_reviser_context(tmp_path):
    """Phase 2: each rollout's teacher prompt = its own prompt + its attempt (no end-of-turn)
    + the cue of its reward; the completion block scored is the rollout itself."""
    cfg = TrainConfig(method="sdzero", sdzero_srt_steps=0, out=str(tmp_path), steps=1, **FAST)
    tr = Trainer(cfg, task=EvenTask())
    seen = {}
    orig = tr.teacher._score

    def spy(fn, problems, completions, mask, messages, prompt_ids):
        seen.update(prompt_ids=prompt_ids, completions=completions.clone())
        return orig(fn, problems, completions, mask, messages, prompt_ids)

    tr.teacher._score = spy
    batch = tr.make_batch(0)
    tr.method.loss(batch)
    ro, tok = batch.rollouts, tr.tok
    assert 0 < float(batch.rewards.mean()) < 1 and torch.equal(seen["completions"], ro.completions)
    for i, ids in enumerate(seen["prompt_ids"]):
        cue = teachers.REVISION_CUES[int(batch.rewards[i] > 0.5)]
        toks = ro.completions[i][ro.completion_mask[i]].tolist()
        attempt = toks[:-1] if toks[-1] in tr.stops else toks
        assert ids[: len(ro.prompts[i])] == ro.prompts[i]
        assert ids[len(ro.prompts[i]) : len(ro.prompts[i]) + len(attempt)] == attempt
        assert tok.decode(ids).endswith(f"\n\n{cue}\n\n")
        assert cue not in tok.decode(ro.prompts[i])  # the student never sees it


@pytest.mark.claim("methods.sdzero-srt-rows")
def test_srt_batch_rows_and_loss(tmp_path, monkeypatch):
    """Phase 1 (every attempt revised): the collected rows are the kept tuples, rebuilt here from
    the attempts and revisions the step sampled (revision rows; generation rows for failed
    attempts only); the loss is the two token-mean cross-entropies, recomputed by hand."""
    from sdtheory.lm.sources import DataSources

    cfg = TrainConfig(method="sdzero", sdzero_revise_correct=True, out=str(tmp_path), **FAST)
    tr = Trainer(cfg, task=EvenTask())
    gens, orig = [], DataSources.generate

    def spy(self, prompts, row_ids, stream=1):
        gens.append((prompts, orig(self, prompts, row_ids, stream)))
        return gens[-1][1]

    monkeypatch.setattr(DataSources, "generate", spy)
    for step in range(8):  # until a step keeps the revision of a failed attempt
        gens.clear()
        batch = tr.make_batch(step)
        if any(tr.method._srt.get("gen", [])):
            break
    gen = tr.method._srt["gen"]
    (att_p, att), (rev_p, rev) = gens
    task, tok = EvenTask(), tr.tok
    exp_p, exp_c, exp_gen = [], [], []
    for n, rp in enumerate(rev_p):  # revise_correct: revision n is of attempt n
        if task.verify(rev.texts(tok)[n], None) < 0.5:
            continue
        a = attempt_tokens(att.completions[n], att.completion_mask[n], tr.stops)
        r_ids = rev.completions[n][rev.completion_mask[n]].tolist()
        assert rp[: len(att_p[n]) + len(a)] == att_p[n] + a  # reviser context of attempt n
        delim = rp[len(att_p[n]) + len(a) :]
        if task.verify(att.texts(tok)[n], None) < 0.5:
            exp_p, exp_c, exp_gen = exp_p + [att_p[n]], exp_c + [a + delim + r_ids], exp_gen + [1]
        exp_p, exp_c, exp_gen = exp_p + [rp], exp_c + [r_ids], exp_gen + [0]
    ro = batch.rollouts
    assert ro.prompts == exp_p and gen == [bool(x) for x in exp_gen] and any(gen)
    rows = [c[m].tolist() for c, m in zip(ro.completions, ro.completion_mask, strict=True)]
    assert rows == exp_c
    loss, metrics = tr.method.loss(batch)
    lp = batch.student.token_logprobs(1.0).detach().double()
    g = torch.tensor(gen)[:, None] & ro.completion_mask
    r = ~torch.tensor(gen)[:, None] & ro.completion_mask
    by_hand = -(lp * g).sum() / g.sum() - (lp * r).sum() / r.sum()
    assert math.isclose(float(loss.detach()), float(by_hand), rel_tol=1e-5)
    assert metrics["sdzero_kept"] == exp_gen.count(0) and metrics["sdzero_revised"] == len(rev_p)


@pytest.mark.claim("methods.sdzero-teacher-sync")
def test_teacher_is_the_srt_model_and_resyncs(tmp_path):
    cfg = TrainConfig(
        method="sdzero", sdzero_srt_steps=2, sdzero_sync_every=2, out=str(tmp_path), steps=5, **FAST
    )
    tr = Trainer(cfg, task=EvenTask())

    def same():
        return all(
            torch.equal(a, b)
            for a, b in zip(tr.teacher.model.parameters(), tr.unwrapped.parameters(), strict=True)
        )

    flags = []
    for _ in range(5):
        before = [p.clone() for p in tr.teacher.model.parameters()]
        rec = tr.train_step()
        flags.append(rec["sdzero_teacher_synced"])
        moved = any(
            not torch.equal(a, b)
            for a, b in zip(before, tr.teacher.model.parameters(), strict=True)
        )
        assert moved == rec["sdzero_teacher_synced"]
        if rec["sdzero_teacher_synced"]:
            assert same()  # bit for bit the student after this step's update
    assert flags == [False, True, False, True, False]  # end of SRT (2), then every 2 steps


@pytest.mark.claim("methods.sdzero-mixed-topk-kl")
def test_distill_loss_is_mixed_kl_on_teacher_topk(tmp_path):
    """w FKL + (1 - w) RKL, both renormalised on the teacher's top-k: recomputed from the
    teacher's and student's logits with explicit top-k (independent of the library's support)."""
    k, w = 7, 0.3
    cfg = TrainConfig(
        method="sdzero",
        sdzero_srt_steps=0,
        sdzero_topk=k,
        sdzero_forward_weight=w,
        fused_loss=False,
        out=str(tmp_path),
        steps=1,
        **FAST,
    )
    tr = Trainer(cfg, task=EvenTask())
    batch = tr.make_batch(0)
    loss, _ = tr.method.loss(batch)
    ro = batch.rollouts
    zt = tr.teacher.logits(
        batch.rows, ro.completions, ro.completion_mask, prompt_ids=tr.method.teacher_prompts(batch)
    ).double()
    zs = batch.student.logits().detach().double()
    idx = zt.topk(k, -1).indices
    lt = torch.log_softmax(zt.gather(-1, idx), -1)
    ls = torch.log_softmax(zs.gather(-1, idx), -1)
    fkl = (lt.exp() * (lt - ls)).sum(-1)
    rkl = (ls.exp() * (ls - lt)).sum(-1)
    m = ro.completion_mask
    by_hand = ((w * fkl + (1 - w) * rkl) * m).sum() / m.sum()
    assert math.isclose(float(loss.detach()), float(by_hand), rel_tol=1e-4)
    full = token_divergence(zs, zt, divergence="reverse_kl")
    assert not math.isclose(float((full * m).sum() / m.sum()), float(by_hand), rel_tol=1e-3)


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(sdzero_forward_weight=1.5), "sdzero_forward_weight"),
        (dict(sdzero_srt_steps=-1), "sdzero_srt_steps"),
        (dict(sdzero_topk=5, support="teacher_topk", topk=5), "sdzero_topk"),
        (dict(estimator="k3", sdzero_topk=0), "estimator"),
    ],
)
def test_config_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(method="sdzero", **bad)
