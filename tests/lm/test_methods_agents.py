"""The multi-turn calculator environment, SOD and Skill-SD on hand-made inputs with known
answers (step weights and their telescoping, the clipped surrogate, the UCB bandit), and their
losses recomputed by hand on a trainer batch."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")
pytest.importorskip("reasoning_gym")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sdtheory.lm import models  # noqa: E402
from sdtheory.lm.env import CalculatorEnv, ToolTask, multiturn_sample, step_spans  # noqa: E402
from sdtheory.lm.methods.shared import grpo_advantages, token_logprobs  # noqa: E402
from sdtheory.lm.methods.skills import SkillMemory, summarize  # noqa: E402
from sdtheory.lm.methods.skillsd import skill_rewards  # noqa: E402
from sdtheory.lm.methods.sod import (  # noqa: E402
    clipped_surrogate,
    sod_token_weights,
    step_divergences,
    step_weights,
    telescoped_weights,
)
from sdtheory.lm.rollout import Rollouts  # noqa: E402
from sdtheory.lm.sources import DataSources  # noqa: E402
from sdtheory.lm.tasks import Problem, make_task  # noqa: E402
from sdtheory.lm.teachers import skill_messages  # noqa: E402
from sdtheory.lm.trainers import TrainConfig, Trainer  # noqa: E402
from tests.lm._tiny import tiny  # noqa: E402

FAST = tiny(max_new_tokens=8, steps=2, lr=1e-2)
P = Problem("What is 1 + 5?", "6", ("1 + 5 = 6", "The answer is 6."))


# ----------------------------------------------------------------------------- environment
def test_calculator_answers_and_refuses():
    env = CalculatorEnv()
    assert env.respond("1 + 5") == " = 6\n" and env.respond(" (2+3)*4 ") == " = 20\n"
    assert env.respond("7 / 2") == " = 3.5\n" and env.respond("-3 - 4") == " = -7\n"
    assert env.respond("3 + 4 = 7") == " = 7\n"  # GSM8K-style call with its own result
    for bad in ("2 ** 8", "x + 1", "1 / 0", "__import__('os')", "9" * 70, ""):
        assert env.respond(bad) == " = error\n", bad
    assert env.call("a <<1 + 2>> b <<3>>") == "1 + 2" and env.call("<<1 + 2") is None
    assert env.strip_outputs("<<1 + 5>> = 6\nThe answer is 6.") == "<<1 + 5>>The answer is 6."


def test_tool_task_prompt_and_verify():
    task = ToolTask(make_task("chain_sum"), CalculatorEnv())
    assert task.student_messages(P)[-1]["content"].endswith(CalculatorEnv.instructions)
    assert task.privileged_view(P, "answer") == "The final answer is 6."
    assert task.verify("<<1 + 5>> = 6\nThe answer is 6.", P) == 1.0
    # the tool output alone is not the assistant's answer (the last number left is 5)
    assert task.verify("<<1 + 5>> = 6\n", P) == 0.0


@pytest.mark.claim("methods.env-tool-outputs-masked")
def test_demonstrations_mask_exactly_the_tool_outputs():
    tok = models.tiny_tokenizer()
    env = CalculatorEnv()
    assert env.demonstration(P) == [
        ("<<1 + 5>>", True),
        (" = 6\n", False),
        ("The answer is 6.\n", True),
    ]
    run = TrainConfig(**{**FAST, "max_new_tokens": 64}).run
    prompts = lambda ps: [[1, 2]] * len(ps)  # noqa: E731
    src = DataSources(None, tok, prompts, run, 0, 0, [tok.eos_token_id], "cpu", env)
    ro = src.demonstrations([P])
    comp, lm = ro.completions[0], ro.loss_mask[0]
    assert ro.completion_mask[0].sum() == len(comp) and bool(ro.completion_mask[0][lm].all())
    assert tok.decode(comp[~lm].tolist()) == " = 6\n"
    assert tok.decode(comp[lm].tolist(), skip_special_tokens=True) == "<<1 + 5>>The answer is 6.\n"
    assert [b - a for a, b in step_spans(ro.loss_mask)[0]] == [
        len(tok("<<1 + 5>>", add_special_tokens=False)["input_ids"]),
        int(lm.sum()) - len(tok("<<1 + 5>>", add_special_tokens=False)["input_ids"]),
    ]


class _Script:
    """A turn sampler that emits scripted text: row r, turn t gets `script[r][t]` (then pads);
    records the prompts and row seeds it was given."""

    def __init__(self, tok, script, max_turns):
        self.tok, self.script, self.mt, self.calls = tok, script, max_turns, []

    def __call__(self, model, prompts, *, max_new_tokens, row_seeds, stop_token_ids, **kw):
        self.calls.append((list(map(list, prompts)), list(row_seeds), max_new_tokens))
        rows = []
        for s in row_seeds:
            r, t = divmod(s, self.mt + 1)
            ids = self.tok(self.script[r][t], add_special_tokens=False)["input_ids"]
            rows.append((ids + [stop_token_ids[0]])[:max_new_tokens])
        w = max(map(len, rows))
        comp = torch.zeros((len(rows), w), dtype=torch.long)
        mask = torch.zeros((len(rows), w), dtype=torch.bool)
        for i, ids in enumerate(rows):
            comp[i, : len(ids)], mask[i, : len(ids)] = torch.tensor(ids), True
        lp = -torch.arange(1, w + 1).float().expand(len(rows), w) * mask
        return Rollouts(list(map(list, prompts)), comp, mask, lp, lp / 2, torch.arange(len(rows)))


@pytest.mark.claim("methods.env-tool-outputs-masked")
def test_multiturn_rollout_assembly():
    """Row 0 calls twice then answers; row 1 answers at once; row 2 calls more often than
    max_turns allows. Tool outputs: attended, log-prob 0, never in the loss mask."""
    tok = models.tiny_tokenizer()
    net = models.small_model(tok, hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=1)
    script = [
        ["Let me <<2 + 3>> and", "then <<5 * 2>>", "The answer is 10."],
        ["The answer is 4.", "", ""],
        ["<<1 + 1>>", "<<2 + 2>>", "<<3 + 3>>"],
    ]
    sampler = _Script(tok, script, max_turns=2)
    eos = tok.eos_token_id
    ro = multiturn_sample(
        net, tok, CalculatorEnv(), [[5, 6], [7], [8, 9, 10]], max_new_tokens=40, max_turns=2,
        stop_token_ids=[eos], row_seeds=[0, 1, 2], sampler=sampler,
    )  # fmt: skip
    texts = ro.texts(tok)
    # the text sampled after a call (" and") is cut: generation pauses at the call
    assert texts[0] == "Let me <<2 + 3>> = 5\nthen <<5 * 2>> = 10\nThe answer is 10."
    assert texts[1] == "The answer is 4."
    assert texts[2] == "<<1 + 1>> = 2\n<<2 + 2>> = 4\n<<3 + 3>>"  # the last turn is not cut
    for i in range(3):
        lm, cm = ro.loss_mask[i], ro.completion_mask[i]
        tool = cm & ~lm
        assert bool((ro.logprobs[i][tool] == 0).all()) and bool((ro.logprobs[i][lm] < 0).all())
        outs = tok.decode(ro.completions[i][tool].tolist())
        assert outs == {0: " = 5\n = 10\n", 1: "", 2: " = 2\n = 4\n"}[i]
    assert [len(s) for s in step_spans(ro.loss_mask)] == [3, 1, 3]
    # turn t of row r is seeded r * (max_turns + 1) + t; finished rows are not sampled again
    assert [c[1] for c in sampler.calls] == [[0, 3, 6], [1, 7], [2, 8]]
    assert ro.prompts == [[5, 6], [7], [8, 9, 10]] and ro.group.tolist() == [0, 1, 2]


def test_multiturn_budget_counts_generated_tokens_only():
    tok = models.tiny_tokenizer()
    net = models.small_model(tok, hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=1)
    script = [["<<2 + 3>>", "The answer is 5.", ""]]
    n_call = len(tok("<<2 + 3>>", add_special_tokens=False)["input_ids"])
    ro = multiturn_sample(
        net, tok, CalculatorEnv(), [[5]], max_new_tokens=n_call + 3, max_turns=2,
        stop_token_ids=[tok.eos_token_id], sampler=_Script(tok, script, 2),
    )  # fmt: skip
    assert int(ro.loss_mask.sum()) == n_call + 3  # 3 tokens of the answer, then the budget
    assert ro.texts(tok)[0].startswith("<<2 + 3>> = 5\nThe")


# ----------------------------------------------------------------------------- SOD
@pytest.mark.claim("methods.sod-step-weights")
def test_sod_weights_hand_values():
    # steps of 2, 1 and 2 assistant tokens with tool outputs between them
    m = torch.tensor([[1, 1, 0, 0, 1, 0, 1, 1]]).bool()
    old = torch.tensor([[-1.0, -3.0, 0, 0, -0.5, 0, -2.0, -2.0]])
    teacher = torch.tensor([[-2.0, -2.0, -9, -9, -1.5, -9, -6.0, -2.0]])
    d = step_divergences(old, teacher, m)
    assert d == [[1.0, 1.0, 2.0]]
    w, _, wk = sod_token_weights(old, teacher, m, epsilon=0.0, delta=0.2)
    assert wk == [[1.0, 1.0, 0.5]]
    assert w.tolist() == [[1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.5, 0.5]]  # 0 on tool outputs
    # a step better aligned than the first is boosted, capped at 1 + delta
    assert step_weights([2.0, 0.5, 1.0], epsilon=0.0, delta=0.2) == [1.0, 1.2, 1.2]
    assert step_weights([2.0, 1.9], epsilon=0.0, delta=0.2) == [1.0, 2.0 / 1.9]
    assert step_weights([], 1e-6, 0.2) == [] and step_weights([3.0]) == [1.0]
    with pytest.raises(ValueError, match="epsilon"):
        step_weights([0.0, 1.0], epsilon=0.0)
    with pytest.raises(ValueError, match="delta"):
        step_weights([1.0], delta=-0.1)


@pytest.mark.claim("methods.sod-telescoping")
@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0.0, 50.0), min_size=1, max_size=12),
    st.floats(1e-8, 1.0),
    st.floats(0.0, 3.0),
)
def test_sod_weights_telescope(d, eps, delta):
    """The code's running product of adjacent ratios equals the closed form
    min((d_1+eps)/(d_k+eps), 1+delta) for any step divergences."""
    a, b = step_weights(d, eps, delta), telescoped_weights(d, eps, delta)
    assert len(a) == len(b) == len(d) and a[0] == 1.0
    np.testing.assert_allclose(a, b, rtol=1e-12)
    assert all(x <= 1 + delta for x in a)


def test_clipped_surrogate_binds_only_outside_the_band():
    lp = torch.log(torch.tensor([1.1, 1.5, 0.5, 0.5, 1.5], dtype=torch.float64)).requires_grad_()
    adv = torch.tensor([1.0, 1.0, 1.0, -1.0, -1.0], dtype=torch.float64)
    out = clipped_surrogate(lp, torch.zeros(5, dtype=torch.float64), adv, 0.2, 0.28)
    # rho = 1.1 inside; 1.5 > 1.28 with A > 0 clipped; 0.5 < 0.8 with A > 0 unclipped (min);
    # 0.5 with A < 0 clipped at 0.8; 1.5 with A < 0 unclipped
    assert torch.allclose(out, torch.tensor([-1.1, -1.28, -0.5, 0.8, 1.5], dtype=torch.float64))
    (g,) = torch.autograd.grad(out.sum(), lp)
    assert torch.allclose(g, torch.tensor([-1.1, 0.0, -0.5, 0.0, 1.5], dtype=torch.float64))


def _custom_steps(batch):
    """Give every rollout three assistant steps by marking two tokens as tool outputs."""
    lm = batch.rollouts.completion_mask.clone()
    for i in range(lm.shape[0]):
        n = int(lm[i].sum())
        if n >= 5:
            lm[i, 1] = lm[i, 3] = False
    batch.rollouts.loss_mask = lm
    return lm


@pytest.mark.claim("methods.sod-advantage")
def test_sod_loss_is_the_code_advantage_through_the_surrogate(tmp_path):
    cfg = TrainConfig(method="sod", teacher_model="tiny", sod_delta=0.5, distill_weight=0.7,
                      out=str(tmp_path), **FAST)  # fmt: skip
    tr = Trainer(cfg)
    batch = tr.make_batch(0)
    lm = _custom_steps(batch)
    loss, metrics = tr.method.loss(batch)
    ro = batch.rollouts
    lp = token_logprobs(batch.student.logits(), ro.completions).detach().double()
    old = ro.logprobs.double()
    lt = token_logprobs(tr.teacher.logits(batch.rows, ro.completions, ro.completion_mask),
                        ro.completions).double()  # fmt: skip
    a_grpo = grpo_advantages(batch.rewards, batch.groups).double()
    per_tok = torch.zeros_like(lp)
    for i, spans in enumerate(step_spans(lm)):
        d = [float((old[i, a:b] - lt[i, a:b]).abs().mean()) for a, b in spans]
        w = telescoped_weights(d, 1e-6, 0.5)
        for (a, b), wk in zip(spans, w, strict=True):
            adv = a_grpo[i] + 0.7 * wk * (lt[i, a:b] - old[i, a:b])
            rho = torch.exp(lp[i, a:b] - old[i, a:b])
            per_tok[i, a:b] = -torch.minimum(rho * adv, rho.clamp(0.8, 1.28) * adv)
    ref = per_tok[lm].sum() / lm.sum()
    assert math.isclose(float(loss.detach()), float(ref), rel_tol=1e-5, abs_tol=1e-7)
    assert metrics["sod_steps_mean"] == 3.0 and metrics["sod_clip_frac"] == 0.0


def test_sod_without_distillation_is_grpo_with_the_surrogate(tmp_path):
    cfg = TrainConfig(method="sod", distill_weight=0.0, out=str(tmp_path), **FAST)
    tr = Trainer(cfg)
    assert tr.teacher is None  # no teacher is built for c = 0
    batch = tr.make_batch(0)
    loss, metrics = tr.method.loss(batch)
    lp = batch.student.token_logprobs(1.0).detach().double()
    adv = grpo_advantages(batch.rewards, batch.groups).double()[:, None]
    rho = torch.exp(lp - batch.rollouts.logprobs.double())
    ref = -torch.minimum(rho * adv, rho.clamp(0.8, 1.28) * adv)[batch.mask].mean()
    assert math.isclose(float(loss.detach()), float(ref), rel_tol=1e-5, abs_tol=1e-7)
    assert "sod_weight_mean" not in metrics


# ----------------------------------------------------------------------------- Skill-SD
@pytest.mark.claim("methods.skillsd-ucb")
def test_ucb_hand_values_and_spreading():
    mem = SkillMemory(capacity=8, c=0.5)
    for t in ("a", "b", "c"):
        mem.add(t)
    mem.update([0, 0, 1], [1.0, 0.0, 2.0])  # means 0.5, 2.0; arm 2 never pulled
    u = mem.ucb()
    assert u[0] == 0.5 + 0.5 * math.sqrt(2 * math.log(3) / 2)
    assert u[1] == 2.0 + 0.5 * math.sqrt(2 * math.log(3) / 1) and u[2] == math.inf
    # first problem: unpulled arm 2, then arm 1; the second problem counts those two picks:
    # n = (2, 2, 1), N = 5, UCB = (1.134, 2.634, 0.897) -> arms 1 and 0
    picks = mem.select(2, 2)
    assert picks == [[2, 1], [1, 0]]
    assert mem.counts == [2, 1, 0]  # selecting does not count as pulls
    assert mem.select(3, 0) == [[], [], []]


@pytest.mark.claim("methods.skillsd-ucb")
def test_ucb_finds_the_best_arm():
    """UCB1 on Bernoulli arms with means 0.2, 0.5, 0.8 (2000 pulls): the best arm gets most
    pulls and the pull counts follow the means (UCB1's regret is logarithmic)."""
    rng = np.random.default_rng(0)
    means = [0.2, 0.5, 0.8]
    mem = SkillMemory(capacity=3, c=1.0)
    for t in "abc":
        mem.add(t)
    for _ in range(2000):
        (arm,) = mem.select(1, 1)[0]
        mem.update([arm], [float(rng.random() < means[arm])])
    assert mem.counts[2] > 0.75 * 2000 and mem.counts[0] < mem.counts[1] < mem.counts[2]
    assert abs(mem.means()[2] - 0.8) < 0.03


def test_skill_memory_add_evict_and_state():
    mem = SkillMemory(capacity=2)
    assert mem.add("a") and mem.add("b") and not mem.add("a")
    assert not mem.add("c")  # full of unpulled arms: the new skill is dropped
    mem.update([0, 1], [0.3, -0.2])
    assert mem.add("c") and mem.texts == ["a", "c"]  # the lowest mean (b) is evicted
    twin = SkillMemory(capacity=2)
    twin.load_state_dict(mem.state_dict())
    assert twin.state_dict() == mem.state_dict() and twin.ucb() == mem.ucb()
    with pytest.raises(ValueError, match="capacity"):
        SkillMemory(capacity=0)
    with pytest.raises(ValueError, match="finite"):
        mem.update([0], [math.nan])


def test_summaries():
    assert summarize("<<12 + 3>> = 15\nThe answer is 15.", 1.0, tool=True) == (
        "What worked: <<N + N>> = N The answer is N."
    )
    s = summarize("<<x>> = error\nhmm", 0.0, tool=True)
    assert s.startswith("Mistake to avoid (a calculator call that was not arithmetic, no final")
    assert summarize("The answer is 3.", 0.0).startswith("Mistake to avoid (a wrong answer)")
    assert len(summarize("7 " * 200, 1.0, max_chars=40)) == len("What worked: ") + 40


def test_skill_rewards_sign_follows_the_reward():
    lq = torch.tensor([[-1.0, -1.0], [-1.0, -1.0]])
    lp = torch.tensor([[-2.0, -2.0], [-2.0, -2.0]])
    m = torch.tensor([[True, True], [True, False]])
    assert skill_rewards(lq, lp, m, torch.tensor([1.0, 0.0])) == [1.0, -1.0]
    assert skill_rewards(lq, lp, torch.zeros(2, 2).bool(), torch.ones(2)) == [0.0, 0.0]


@pytest.mark.claim("methods.skillsd-teacher-prompt")
@pytest.mark.claim("methods.skillsd-iw-rkl")
def test_skillsd_loss_and_prompts_by_hand(tmp_path):
    """With skills in memory: the teacher prompt of each rollout holds its problem's picked
    skills and the student prompt none; the loss is GRPO + lambda * IW sampled reverse KL."""
    cfg = TrainConfig(method="skillsd", env="calculator", distill_weight=0.5,
                      skillsd_skills=1, out=str(tmp_path), **FAST)  # fmt: skip
    tr = Trainer(cfg)
    for s in ("What worked: <<N + N>> = N The answer is N.", "Mistake to avoid (x): y"):
        tr.method.memory.add(s)
    seen = {}
    orig = tr.teacher.prompts

    def spy(problems, messages=None):
        seen["prompts"] = orig(problems, messages)
        return seen["prompts"]

    tr.teacher.prompts = spy
    batch = tr.make_batch(0)
    loss, metrics = tr.method.loss(batch)
    picks = tr.method._picks
    assert picks == [[0], [1]]  # one unpulled arm per problem
    for i, g in enumerate(batch.groups.tolist()):
        teacher = tr.tok.decode(seen["prompts"][i])
        assert tr.method.memory.texts[picks[g][0]] in teacher
        assert "Skills learned" not in tr.tok.decode(batch.rollouts.prompts[i])
    ro = batch.rollouts
    lp = batch.student.token_logprobs(1.0).detach().double()
    msgs = [skill_messages(tr.task, p, [tr.method.memory.texts[picks[g][0]]])
            for p, g in zip(batch.rows, batch.groups.tolist(), strict=True)]  # fmt: skip
    lq = token_logprobs(tr.teacher.logits(batch.rows, ro.completions, ro.completion_mask, msgs),
                        ro.completions).double()  # fmt: skip
    rho = torch.exp(lp - ro.logprobs.double()).clamp(max=2.0)
    m = batch.mask
    sd = (-(rho * (lq - lp) * lp))[m].sum() / m.sum()
    adv = grpo_advantages(batch.rewards, batch.groups).double()[:, None].expand(m.shape)
    ref = 0.5 * sd + (-adv[m]).sum() / m.sum()
    assert math.isclose(float(loss.detach()), float(ref), rel_tol=1e-4, abs_tol=1e-6)
    assert math.isclose(metrics["distill_loss"], float(sd), rel_tol=1e-4, abs_tol=1e-6)


@pytest.mark.claim("methods.skillsd-memory")
def test_skillsd_after_step_updates_the_bandit_and_adds_skills(tmp_path):
    cfg = TrainConfig(method="skillsd", env="calculator", teacher_mode="live", skillsd_skills=2,
                      out=str(tmp_path), **FAST)  # fmt: skip
    tr = Trainer(cfg)
    tr.method.memory.add("seed skill")
    batch = tr.make_batch(0)
    tr.method.loss(batch)
    rewards = list(tr.method._rewards)
    out = tr.method.after_step(batch, {})
    mem = tr.method.memory
    assert mem.counts[0] == len(rewards)  # the one arm was picked for every rollout
    assert math.isclose(mem.sums[0], sum(rewards), rel_tol=1e-12)
    texts = batch.rollouts.texts(tr.tok)
    r = batch.rewards.tolist()
    new = [summarize(texts[next(j for j, x in enumerate(r) if (x >= 0.5) == w)], float(w), tool=True)
           for w in (True, False) if any((x >= 0.5) == w for x in r)]  # fmt: skip
    assert mem.texts[1:] == new and out["skillsd_memory_size_after"] == 1 + len(new)


def test_agent_configs_reject_bad_values():
    for bad, match in [
        (dict(method="sod", sod_delta=-1.0), "sod_delta"),
        (dict(method="sod", sod_clip_low=1.0), "sod_clip_low"),
        (dict(method="sod", k=1), "k must be >= 2"),
        (dict(method="skillsd", skillsd_memory=0), "skillsd_memory"),
        (dict(method="skillsd", skillsd_is_clip=0.0), "skillsd_is_clip"),
        (dict(env="abacus"), "env"),
        (dict(max_turns=-1), "max_turns"),
        (dict(method="skillsd", teacher_mode="ema"), "teacher_mode must be fixed or live"),
        (dict(method="skillsd", skillsd_sync_rate=0.0), "skillsd_sync_rate"),
    ]:
        with pytest.raises(ValueError, match=match):
            TrainConfig(**bad)
