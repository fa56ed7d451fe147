"""The method family's own pieces on hand-made inputs with known answers (weights, schedules,
routing, gates, exposure), and a short CPU run of each method that logs its quantities."""

import json
import math
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")
pytest.importorskip("reasoning_gym")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sdtheory.lm import teachers  # noqa: E402
from sdtheory.lm.losses import fused_linear_distillation_loss  # noqa: E402
from sdtheory.lm.methods import method_names  # noqa: E402
from sdtheory.lm.methods.atesd import ExposureController, learning_progress, prefix_view  # noqa: E402
from sdtheory.lm.methods.avsd import avsd_target  # noqa: E402
from sdtheory.lm.methods.paced import PassRateTable, paced_weights  # noqa: E402
from sdtheory.lm.methods.sdpo import importance_weights, successful_siblings  # noqa: E402
from sdtheory.lm.methods.shared import kl_direction  # noqa: E402
from sdtheory.lm.methods.srpo import entropy_weights, srpo_routes  # noqa: E402
from sdtheory.lm.methods.taid import taid_loss  # noqa: E402
from sdtheory.lm.tasks import Problem, make_task  # noqa: E402
from sdtheory.lm.trainers import TrainConfig, Trainer  # noqa: E402
from sdtheory.theory.taid import TAIDSchedule  # noqa: E402
from tests.lm._tiny import EvenTask, tiny  # noqa: E402

FAST = tiny(steps=3, lr=1e-2)


# ----------------------------------------------------------------------------- PACED
def test_paced_weights_known_values():
    # p = S/K = (0, 1/4, 1/2, 1): w = p(1-p) = (0, 3/16, 1/4, 0) [v3 default a = b = 1]
    p, w = paced_weights([0, 1, 2, 4], 4)
    assert np.allclose(p, [0, 0.25, 0.5, 1]) and np.allclose(w, [0, 3 / 16, 1 / 4, 0])
    _, w2 = paced_weights([1], 4, alpha=2.0, beta=0.5)
    assert math.isclose(float(w2[0]), 0.25**2 * 0.75**0.5)


def test_pass_rate_table_reestimates():
    t = PassRateTable(memory=0.25)
    assert t.update([0, 1], [0.5, 1.0]).tolist() == [0.5, 1.0]  # first sight: the estimate
    assert t.update([1], [0.0]).tolist() == [0.25]  # 0.25 * 1 + 0.75 * 0
    t0 = PassRateTable(memory=0.0)
    t0.update([3], [1.0])
    assert t0.update([3], [0.0]).tolist() == [0.0]  # memory 0: current rollouts only
    with pytest.raises(ValueError, match="memory"):
        PassRateTable(memory=1.0)


def test_two_stage_switch():
    assert [kl_direction(s, 3, "jsd") for s in (0, 2, 3, 9)] == [
        "forward_kl",
        "forward_kl",
        "reverse_kl",
        "reverse_kl",
    ]
    assert kl_direction(0, 0, "jsd") == "reverse_kl"  # switch at 0 = reverse KL only
    assert kl_direction(7, -1, "tvd") == "tvd"


# ----------------------------------------------------------------------------- TAID
@pytest.mark.parametrize("t", [0.0, 0.4, 1.0])
def test_taid_fused_target_is_the_interpolation(t):
    """The trainer's fused TAID target, [(1-t) h_s, t h_T] @ [W_s, W_T]^T, gives `taid_loss` on
    the logits h_s W_s^T and h_T W_T^T: value and student gradients to 1e-12 in float64."""
    g = torch.Generator().manual_seed(0)
    hs = torch.randn(3, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    ws = torch.randn(11, 4, generator=g, dtype=torch.float64, requires_grad=True)
    ht, wt = (
        torch.randn(3, 5, 6, generator=g, dtype=torch.float64),
        torch.randn(11, 6, generator=g, dtype=torch.float64),
    )
    mask = torch.rand(3, 5, generator=g) > 0.3
    h = torch.cat([(1 - t) * hs.detach(), t * ht], -1)
    w = torch.cat([ws.detach(), wt], -1)
    fused = fused_linear_distillation_loss(hs, ws, h, w, mask, divergence="forward_kl")
    ref = taid_loss(hs @ ws.T, ht @ wt.T, t, mask)
    ga, gb = (torch.autograd.grad(x, (hs, ws)) for x in (fused, ref))
    torch.testing.assert_close(fused, ref, rtol=1e-12, atol=1e-14)
    for a, b in zip(ga, gb, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)
    if t == 0.0:
        assert float(ref.detach()) == 0.0  # exactly: the target is the student


def test_taid_schedule_stepped_once_per_optimizer_step(tmp_path):
    """The logged t of each step is the schedule replayed on the logged losses (t_{n+1} from
    loss n at step n), starting at t_start; large alpha so the adaptive part moves."""
    cfg = TrainConfig(
        method="taid",
        teacher_model="tiny",
        taid_t_start=0.2,
        taid_alpha=0.5,
        taid_beta=0.5,
        out=str(tmp_path),
        **{**FAST, "steps": 4},
    )
    hist = [r for r in Trainer(cfg).train() if r["kind"] == "train"]
    ref = TAIDSchedule(0.2, 1.0, 0.5, 0.5)
    for n, r in enumerate(hist):
        assert math.isclose(r["taid_t"], ref.t, rel_tol=1e-12), (n, r["taid_t"], ref.t)
        ref.update(r["distill_loss"], n, cfg.steps)
        assert math.isclose(r["taid_t_next"], ref.t, rel_tol=1e-12)
    assert hist[0]["taid_t"] == 0.2 and hist[-1]["taid_t"] > 0.2


# ----------------------------------------------------------------------------- SDPO / SRPO
def test_successful_siblings_rules():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    g = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2])
    # group 0: one success (row 0) -> demo for rows 1, 2; the lone success itself gets none
    # group 1: two successes -> each other's demo; group 2: all fail -> none
    assert successful_siblings(r, g) == [None, 0, 0, 4, 3, 3, None, None]
    assert successful_siblings(r, g, exclude_self=False)[:3] == [0, 0, 0]
    assert successful_siblings(torch.tensor([0.4, 0.6]), torch.tensor([0, 0])) == [1, None]


def test_sdpo_messages_show_demo_and_feedback():
    p = Problem("1 + 2", "3")
    text = teachers.reprompt_messages(p, "1 + 2 = 3. The answer is 3.", "wrong")[0]["content"]
    assert text.startswith("1 + 2") and "The answer is 3." in text and "wrong" in text
    assert text.endswith(teachers.REPROMPT_OUTRO)
    assert "Correct solution" not in teachers.reprompt_messages(p, None)[0]["content"]


def test_importance_weights_clip():
    w = importance_weights(torch.tensor([0.0, 2.0, -30.0]), torch.zeros(3), clip=2.0)
    assert torch.allclose(w, torch.tensor([1.0, 2.0, math.exp(-20.0)]))  # clamp at -20
    assert not w.requires_grad
    with pytest.raises(ValueError, match="clip"):
        importance_weights(torch.zeros(1), torch.zeros(1), clip=0.0)


def test_srpo_routing_table():
    r = torch.tensor([1.0, 1.0, 0.0, 0.0])
    has = torch.tensor([True, False, True, False])
    # correct -> GRPO whatever the teacher; failed+teacher -> distill; failed alone -> GRPO
    assert srpo_routes(r, has).tolist() == [False, False, True, False]


def test_entropy_weights_mean_one_and_order():
    z = torch.tensor([[[0.0, 0.0, 0.0], [5.0, 0.0, 0.0], [50.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    m = torch.tensor([[True, True, True, False]])
    w, h = entropy_weights(z, m, beta_h=1.0)
    assert math.isclose(float(w[m].mean()), 1.0, rel_tol=1e-6)
    assert float(w[0, 3]) == 0.0 and w[0, 0] < w[0, 1] < w[0, 2]  # high entropy, low weight
    assert math.isclose(float(h[0, 0]), math.log(3), rel_tol=1e-6)
    raw = torch.exp(-h[0, :3].double())  # normalisation by hand
    assert torch.allclose(w[0, :3].double(), raw * 3 / raw.sum(), atol=1e-6)
    w0, _ = entropy_weights(z, m, beta_h=0.0)
    assert torch.allclose(w0[m], torch.ones(3))


# ----------------------------------------------------------------------------- AVSD
def test_avsd_target_hand_values():
    # views agree in sign: delta = (2, 1), c = 1.5, alignment 1
    out = avsd_target(torch.tensor([[-1.0], [-2.0]]), torch.tensor([-3.0]))
    j = math.log((math.exp(-1) + math.exp(-2)) / 2) + 1.5
    prop = 1.5 / (1.5 + j)
    assert math.isclose(float(out["jensen"]), j, rel_tol=1e-9)
    assert math.isclose(float(out["alignment"]), 1.0, rel_tol=1e-6)
    assert math.isclose(float(out["gate"]), prop, rel_tol=1e-6)
    assert math.isclose(float(out["target"]), -1.5 + prop * j, rel_tol=1e-6)
    # views disagree symmetrically: c = 0 -> gate 0 -> target = geometric mean -2
    out = avsd_target(torch.tensor([[-1.0], [-3.0]]), torch.tensor([-2.0]))
    assert float(out["gate"]) == 0.0 and math.isclose(float(out["target"]), -2.0)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(-30, 0), min_size=2, max_size=4),
    st.floats(-30, 0),
)
def test_avsd_target_bounds(views, student):
    out = avsd_target(torch.tensor(views, dtype=torch.float64)[:, None], torch.tensor([student]))
    gm, am = np.mean(views), np.log(np.mean(np.exp(views)))
    assert -1e-9 <= float(out["jensen"]) and 0 <= float(out["gate"]) <= 1 + 1e-9
    # the target lies between the geometric and arithmetic means
    assert gm - 1e-9 <= float(out["target"]) <= am + 1e-9


# ----------------------------------------------------------------------------- ATESD
def test_prefix_view_keeps_answer():
    task = make_task("chain_sum")
    p = Problem("1 + 2 + 3 + 4", "10", steps=("1 + 2 = 3", "3 + 3 = 6", "6 + 4 = 10"))
    assert prefix_view(task, p, 0.0) == "The final answer is 10."
    assert prefix_view(task, p, 1.0) == "1 + 2 = 3\n3 + 3 = 6\n6 + 4 = 10"
    assert prefix_view(task, p, 0.67) == "1 + 2 = 3\n3 + 3 = 6\n...\nThe final answer is 10."
    with pytest.raises(ValueError, match="rho"):
        prefix_view(task, p, 1.5)


def test_learning_progress_hand_value():
    # gamma^0 * (3-2) + gamma^1 * 0 (a rise counts 0) + gamma^2 * (2.5-1.5)
    assert learning_progress([3.0, 2.0, 2.5, 1.5], 0.5) == 1.0 + 0.25 * 1.0
    assert learning_progress([1.0], 0.9) == 0.0


def test_exposure_controller_holds_and_learns():
    c = ExposureController(hold=3, lr=0.5, entropy_coef=0.0, rho_min=0.1, rho_max=0.9, seed=3)
    rhos = [c.current(0.0)]
    for i in range(2):
        assert c.observe(3.0 - i, 0.5) == {}  # mid-hold: no update
        rhos.append(c.current(0.1))
    assert len(set(rhos)) == 1 and 0.1 <= rhos[0] <= 0.9  # held for H = 3 steps
    first = c.observe(1.0, 0.5)  # end of hold: losses 3, 2, 1 -> reward 1 + 0.9 * 1; adv 0
    assert math.isclose(first["atesd_reward"], 1.9) and first["atesd_advantage"] == 0
    # REINFORCE direction: a positive advantage raises the log-probability of the drawn rho
    c.current(0.5)
    c.baseline = 0.0
    state, raw = torch.tensor(c.state_vec), torch.tensor(c.raw)
    before = float(c.policy(state).log_prob(raw).detach())
    for loss in (2.0, 1.0, 0.0):
        out = c.observe(loss, 0.5)
    assert out["atesd_advantage"] > 0
    assert float(c.policy(state).log_prob(raw).detach()) > before
    twin = ExposureController(hold=3, lr=0.5, entropy_coef=0.0, rho_min=0.1, rho_max=0.9, seed=3)
    assert twin.current(0.0) == rhos[0]  # same seed, same draw


# ----------------------------------------------------------------------------- trainer runs
def _per_step(task, n_steps, rows):
    r = torch.tensor(task.rewards, dtype=torch.float64).reshape(n_steps, rows)
    g = torch.arange(FAST["batch_problems"]).repeat_interleave(FAST["k"])
    return r, g


@pytest.mark.parametrize("method", ["paced", "sdpo", "srpo"])
def test_routing_and_weights_follow_rewards(tmp_path, method):
    task = EvenTask()
    cfg = TrainConfig(method=method, out=str(tmp_path), **FAST)
    hist = [r for r in Trainer(cfg, task=task).train() if r["kind"] == "train"]
    rows = FAST["batch_problems"] * FAST["k"]
    rewards, g = _per_step(task, cfg.steps, rows)
    assert 0 < rewards.mean() < 1  # the rigged verifier gives mixed rewards
    for rec, r in zip(hist, rewards, strict=True):
        sib = successful_siblings(r, g)
        has = torch.tensor([s is not None for s in sib])
        if method == "paced":
            p = r.reshape(-1, FAST["k"]).mean(1).numpy()
            assert math.isclose(rec["pass_rate_mean"], float(p.mean()), rel_tol=1e-9)
            assert math.isclose(rec["paced_weight_mean"], float((p * (1 - p)).mean()), rel_tol=1e-9)
        elif method == "sdpo":
            assert math.isclose(rec["sdpo_frac_with_teacher"], float(has.double().mean()))
            if not has.any():
                assert rec["distill_loss"] == 0.0 and rec["grad_norm"] == 0.0
        else:
            frac = float(srpo_routes(r, has).double().mean())
            assert math.isclose(rec["srpo_frac_distill"], frac)
            assert math.isclose(rec["srpo_frac_grpo"], 1 - frac)


def test_paced_two_stage_switch_in_run(tmp_path):
    cfg = TrainConfig(method="paced", kl_switch_step=2, out=str(tmp_path), **{**FAST, "steps": 3})
    hist = [r for r in Trainer(cfg, task=EvenTask()).train() if r["kind"] == "train"]
    assert [r["divergence"] for r in hist] == ["forward_kl", "forward_kl", "reverse_kl"]


def test_two_stage_switch_in_opsd_run(tmp_path):
    cfg = TrainConfig(method="opsd", kl_switch_step=1, out=str(tmp_path), **{**FAST, "steps": 2})
    hist = [r for r in Trainer(cfg).train() if r["kind"] == "train"]
    assert [r["divergence"] for r in hist] == ["forward_kl", "reverse_kl"]


_LOGGED = {
    "opsd": ("distill_loss", "divergence"),
    "gkd": ("distill_loss", "on_policy"),
    "grpo": ("grpo_loss",),
    "paced": ("pass_rate_mean", "paced_weight_mean", "paced_zero_frac", "divergence"),
    "taid": ("taid_t", "taid_t_next"),
    "sdzero": ("sdzero_phase", "distill_loss", "sdzero_teacher_synced"),
    "pidistill": ("pid_pg_loss", "pid_kl", "pid_is_ratio_mean"),
    "piopsd": ("distill_loss", "grpo_loss", "divergence"),
    "effopd": ("effopd_checkpoint", "effopd_val_rollouts", "effopd_total_rollouts"),
    "unisd": ("unisd_weight_mean", "unisd_clipped_frac", "unisd_match_loss", "unisd_teacher_ema"),
    "vpd": ("vpd_estep", "distill_loss", "divergence"),
    "sdpo": ("sdpo_frac_with_teacher", "is_ratio_mean", "is_clipped_frac"),
    "srpo": ("srpo_frac_distill", "srpo_frac_grpo", "teacher_entropy", "grpo_loss"),
    "avsd": ("avsd_gate", "avsd_alignment", "avsd_proportionality", "avsd_jensen"),
    "atesd": ("atesd_rho",),
    "sod": ("sod_weight_mean", "sod_steps_mean", "sod_clip_frac", "grpo_loss"),
    "skillsd": ("skillsd_memory_size", "skillsd_memory_size_after", "is_ratio_mean", "grpo_loss"),
    "curiosft": ("curio_nll", "curio_tau_mean", "student_entropy", "curio_synced"),
    "pskd": ("pskd_alpha", "pskd_stored_frac", "pskd_label_mass"),
}
# per-method flags of the CLI and resume runs: a tiny separate teacher, short ATESD holds
_EXTRA = {
    "gkd": dict(teacher_model="tiny", gkd_lambda=0.5),
    "taid": dict(teacher_model="tiny", taid_alpha=0.5),
    "sdzero": dict(sdzero_srt_steps=2, sdzero_sync_every=1),  # both phases, a sync each step
    "effopd": dict(effopd_val_problems=2, effopd_candidates=2),
    "unisd": dict(unisd_ema_every=2, unisd_clip=0.0, unisd_clip_quantile=0.5),
    "vpd": dict(vpd_e_every=2),
    "sdpo": dict(teacher_mode="ema"),
    "srpo": dict(teacher_mode="ema"),
    "paced": dict(paced_memory=0.5),
    "atesd": dict(atesd_hold=2, teacher_mode="ema"),
    "sod": dict(teacher_model="tiny", env="calculator", max_turns=2),
    "skillsd": dict(env="calculator", skillsd_sync_every=2),
    "curiosft": dict(curio_sync_every=2, curio_topk=8),
    "pskd": dict(n_train=4, pskd_topk=8),  # epoch 1 (steps 3-4) trains on stored predictions
}


def _flags(d: dict) -> list[str]:
    return [
        x
        for k, v in d.items()
        for x in ("--" + k.replace("_", "-"), str(v).lower() if isinstance(v, bool) else str(v))
    ]


@pytest.mark.parametrize("method", method_names())
def test_each_method_runs_and_logs(tmp_path, method):
    """`sdtheory train METHOD` runs 4 steps of every registered method on a tiny model."""
    from sdtheory import cli

    argv = ["train", method, "--out", str(tmp_path)]  # `sdtheory train <method> ...`
    argv += _flags({**FAST, "n_eval": 2, "steps": 4, **_EXTRA.get(method, {})})
    t0 = time.perf_counter()
    assert cli.main(argv) == 0
    recs = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in recs if r["kind"] == "train"]
    assert len(train) == 4 and all(math.isfinite(r["loss"]) for r in train)
    for key in _LOGGED[method]:
        assert all(key in r for r in train), key
    if method == "atesd":  # held for 2 steps, then the controller updates
        rho = [r["atesd_rho"] for r in train]
        assert rho[0] == rho[1] and rho[2] == rho[3] and "atesd_reward" in train[1]
    assert (tmp_path / "eval.csv").is_file()
    assert json.loads((tmp_path / "config.json").read_text())["method"] == method
    assert time.perf_counter() - t0 < 60


def _same(a, b) -> bool:
    """Nested state dicts equal, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.parametrize("method", method_names())
def test_every_method_resumes_exactly(tmp_path, method):
    """Interrupted after step 3 of 4 (mid-hold for ATESD) and resumed: the same weights,
    teacher, method state and training records as one uninterrupted run."""
    base = dict(FAST, steps=4, **_EXTRA.get(method, {}), method=method)
    full = Trainer(TrainConfig(out=str(tmp_path / "full"), **base))
    full.train()
    part = Trainer(TrainConfig(out=str(tmp_path / "part"), **base))
    part.train(until=3)
    resumed = Trainer(TrainConfig(out=str(tmp_path / "part"), resume=True, **base))
    assert resumed.step == 3
    resumed.train()
    for a, b in zip(full.unwrapped.parameters(), resumed.unwrapped.parameters(), strict=True):
        assert torch.equal(a, b)
    if full.teacher is not None:
        assert _same(full.teacher.model.state_dict(), resumed.teacher.model.state_dict())
    assert _same(full.method.state_dict(), resumed.method.state_dict())
    stateful = {"paced": "table", "taid": "schedule", "atesd": "controller"}
    stateful |= {"effopd": "extrapolation", "vpd": "shift", "skillsd": "memory", "pskd": "store"}
    assert list(full.method.state_dict()) == ([stateful[method]] if method in stateful else [])
    drop = ("time_generate", "time_teacher", "time_student", "time_step", "example")
    drop += ("tokens_per_s", "peak_memory_gib")  # measurements of the machine

    def records(run):
        lines = (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(x).items() if k not in drop} for x in lines]

    a = [r for r in records("full") if r["kind"] == "train"]
    b = [r for r in records("part") if r["kind"] == "train"]
    assert json.dumps(a) == json.dumps(b)  # NaN-safe comparison


def test_help_lists_every_method_flag():
    from sdtheory.lm.train_cli import build_parser

    text = build_parser().format_help()
    for name in method_names():
        assert name in text
    for flag in (
        "--kl-switch-step",
        "--paced-alpha",
        "--taid-t-start",
        "--is-clip",
        "--srpo-entropy-beta",
        "--avsd-views",
        "--atesd-hold",
        "--atesd-gamma",
        "--env",
        "--max-turns",
        "--sod-delta",
        "--skillsd-skills",
        "--curio-tau-min",
        "--pskd-alpha-max",
    ):
        assert flag in text


@pytest.mark.parametrize("method", method_names())
def test_train_method_help(method, capsys):
    """`sdtheory train METHOD --help` exits 0 and shows the method's own flag group."""
    from sdtheory import cli
    from sdtheory.lm.methods import get_method

    with pytest.raises(SystemExit) as e:
        cli.main(["train", method, "--help"])
    assert e.value.code == 0
    group = getattr(get_method(method).Config, "_argument_group_name", None)
    assert group is None or f"{group}:" in capsys.readouterr().out


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(method="paced", k=1), "k must be >= 2"),
        (dict(method="sdpo", k=1), "k must be >= 2"),
        (dict(paced_alpha=-1.0), "paced_alpha"),
        (dict(is_clip=0.0), "is_clip"),
        (dict(avsd_views="solution,nope"), "avsd_views"),
        (dict(atesd_rho_min=0.8, atesd_rho_max=0.2), "atesd_rho_min"),
        (dict(kl_switch_step=-2), "kl_switch_step"),
        (dict(taid_t_start=1.0), "t_start"),
        (dict(atesd_hold=0), "atesd_hold"),
    ],
)
def test_config_rejects_bad_method_values(bad, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**bad)


def test_sdpo_teacher_sees_the_sibling_and_the_student_does_not(tmp_path):
    """The teacher prompt of each rollout with a successful sibling contains that sibling's
    decoded completion; the student prompt never does."""
    task = EvenTask()
    tr = Trainer(TrainConfig(method="sdpo", out=str(tmp_path), **{**FAST, "steps": 1}), task=task)
    seen = {}
    orig = tr.teacher.prompts

    def spy(problems, messages=None):
        seen["prompts"] = orig(problems, messages)
        return seen["prompts"]

    tr.teacher.prompts = spy
    batch = tr.make_batch(0)
    tr.method.loss(batch)
    ro, prompts = batch.rollouts, seen["prompts"]
    sib = successful_siblings(batch.rewards, ro.group.cpu())
    texts = ro.texts(tr.tok)
    assert any(s is not None for s in sib) and all(texts[s].strip() for s in sib if s is not None)
    for i, s in enumerate(sib):
        teacher = tr.tok.decode(prompts[i])
        if s is not None:
            assert "Correct solution:\n" + texts[s].strip() in teacher
        else:
            assert "Correct solution" not in teacher
        assert "Correct solution" not in tr.tok.decode(ro.prompts[i])


def test_sdpo_feedback_gives_every_failed_rollout_a_teacher(tmp_path):
    task = EvenTask()
    cfg = TrainConfig(method="sdpo", sdpo_feedback=True, out=str(tmp_path), **FAST)
    hist = [r for r in Trainer(cfg, task=task).train() if r["kind"] == "train"]
    rewards, g = _per_step(task, cfg.steps, FAST["batch_problems"] * FAST["k"])
    for rec, r in zip(hist, rewards, strict=True):
        has = torch.tensor([s is not None for s in successful_siblings(r, g)]) | (r < 0.5)
        assert math.isclose(rec["sdpo_frac_with_teacher"], float(has.double().mean()))


def test_the_contributing_recipe_adds_a_method(tmp_path, monkeypatch):
    """The example of CONTRIBUTING.md, "Adding a method", as written: one module plus one
    registry line give a method that `sdtheory train` runs, with its own flag and --help group."""
    import re
    import sys
    import types
    from pathlib import Path

    from sdtheory.lm import methods, train_cli

    text = (Path(__file__).resolve().parents[2] / "CONTRIBUTING.md").read_text()
    code = re.search(r"```python\n(# sdtheory/lm/methods/mymethod.py\n.*?)```", text, re.S)[1]
    mod = types.ModuleType("sdtheory.lm.methods.mymethod")
    mod.__package__ = "sdtheory.lm.methods"
    exec(compile(code, "CONTRIBUTING.md", "exec"), mod.__dict__)
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setitem(methods.REGISTRY, "mymethod", "mymethod:MyMethod")  # the one line
    assert "mymethod (one line: what it is):" in train_cli.build_parser().format_help()
    argv = ["mymethod", "--my-scale", "2", "--out", str(tmp_path)]
    argv += [
        x for k, v in {**FAST, "steps": 2}.items() for x in ("--" + k.replace("_", "-"), str(v))
    ]
    assert train_cli.main([a.lower() if a in ("False", "True") else a for a in argv]) == 0
    recs = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in recs if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2]
    assert all(r["loss"] == pytest.approx(2 * r["distill_loss"]) and r["loss"] > 0 for r in train)


def test_one_small_file_per_method_and_a_loop_without_method_names():
    """Every file of `sdtheory/lm/methods/` stays within 250 lines, and the trainer's step
    names no method: what differs between methods is the method's."""
    import inspect
    import re
    from pathlib import Path

    from sdtheory.lm import methods

    for path in Path(methods.__file__).parent.glob("*.py"):
        n = len(path.read_text().splitlines())
        assert n <= 250, f"{path.name} has {n} lines"
    for fn in (Trainer.train_step, Trainer.make_batch, Trainer.__init__):
        source = inspect.getsource(fn)
        named = [m for m in method_names() if re.search(rf"\b{m}\b", source, re.I)]
        assert not named, (fn.__name__, named)
