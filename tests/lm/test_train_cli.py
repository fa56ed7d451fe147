"""`sdtheory train` as a user meets it: config levels and files, bad input as one error line, the
JSD at beta = 0 and 1 through the command on both loss paths, and extending a finished run."""

import dataclasses
import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")
pytest.importorskip("reasoning_gym")

from sdtheory.lm import train_cli  # noqa: E402
from sdtheory.lm.config import LossConfig, RunConfig, TrainConfig  # noqa: E402
from sdtheory.lm.methods import get_method  # noqa: E402
from sdtheory.lm.methods.shared import DivergenceLoss  # noqa: E402
from sdtheory.lm.models import build_model  # noqa: E402

TINY = dict(
    model="tiny",
    hidden_size=32,
    num_layers=2,
    n_train=8,
    n_eval=2,
    eval_k=1,
    batch_problems=2,
    k=2,
    max_new_tokens=8,
    progress=False,
    threads=1,
)


def _argv(d: dict) -> list[str]:
    out = []
    for k, v in d.items():
        out += ["--" + k.replace("_", "-"), str(v).lower() if isinstance(v, bool) else str(v)]
    return out


def _train_records(out):
    drop = ("time_generate", "time_teacher", "time_student", "time_step", "example")
    drop += ("tokens_per_s", "peak_memory_gib")  # measurements of the machine
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in drop} for r in recs if r["kind"] == "train"]


def _weights(out):
    return torch.load(out / "checkpoint" / "state.pt", weights_only=False)["model"]


# ----------------------------------------------------------------------------- config levels
def test_flat_names_route_to_their_level():
    cfg = TrainConfig(method="paced", steps=3, paced_alpha=2.0, view="answer", divergence="tvd")
    assert (cfg.run.steps, cfg.teacher.view, cfg.loss.divergence) == (3, "answer", "tvd")
    assert cfg.options.paced_alpha == 2.0 and cfg.steps == 3 and cfg.paced_alpha == 2.0
    assert RunConfig().model == "smollm2"  # the real model unless told otherwise
    assert TrainConfig(method="opsd").options is None


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(method="opsd", paced_alpha=2.0), "paced_alpha is an option of paced, not of opsd"),
        (dict(method="sdpo", gkd_lambda=0.5), "gkd_lambda is an option of gkd"),
        (dict(nonsense=1), "nonsense is unknown"),
        (dict(method="ppo"), "method must be one of"),
        (dict(task="nope"), "task must be one of"),
        (dict(model="/no/such/dir"), "model must be one of"),
        (dict(teacher_model="/no/such/dir"), "teacher_model"),
        (dict(beta=1.5), "beta"),
        (dict(distill_weight=0.0), "not both be 0"),
        (dict(grpo_weight=-1.0), "grpo_weight"),
        (dict(method="taid", grpo_weight=1.0), "grpo_weight must be 0 for taid"),
        (dict(method="atesd", distill_weight=0.0, grpo_weight=1.0), "distill_weight must be > 0"),
    ],
)
def test_bad_config_names_the_field(bad, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**bad)


def test_replace_derives_a_config():
    base = TrainConfig(method="paced", steps=3, paced_alpha=2.0, **TINY)
    same = base.replace(steps=5)
    assert same.steps == 5 and same.options.paced_alpha == 2.0 and same.model == "tiny"
    other = base.replace(method="taid", taid_t_start=0.2)  # PACED's options are dropped
    assert other.options.taid_t_start == 0.2 and other.steps == 3
    assert dataclasses.replace(base, loss=LossConfig(beta=0.25)).loss.beta == 0.25


def test_method_defaults_of_beta_and_weights():
    beta = {
        m: DivergenceLoss(TrainConfig(method=m), None, get_method(m).default_beta).beta
        for m in ("opsd", "paced", "grpo", "gkd", "sdpo", "atesd")
    }
    # OPSD v3 uses forward KL (authors, siyan-zhao/OPSD issue 14); PACED = OPSD + weights
    assert beta == dict(opsd=0.0, paced=0.0, grpo=0.0, gkd=0.5, sdpo=0.5, atesd=0.5)
    assert TrainConfig(method="grpo").weights == (0.0, 1.0)
    assert TrainConfig(method="srpo").weights == (1.0, 1.0)
    assert TrainConfig(method="opsd", beta=0.3).loss.beta == 0.3


def test_config_file_flags_override_and_the_run_config_round_trips(tmp_path):
    (tmp_path / "run.yaml").write_text("method: paced\nsteps: 3\npaced_alpha: 2.0\nmodel: tiny\n")
    cfg = train_cli.config_from_argv(["--config", str(tmp_path / "run.yaml"), "--steps", "5"])
    assert (cfg.method, cfg.steps, cfg.options.paced_alpha, cfg.model) == ("paced", 5, 2.0, "tiny")
    with pytest.raises(ValueError, match="--paced-alpha: not an option of opsd"):
        train_cli.config_from_argv(["opsd", "--config", str(tmp_path / "run.yaml")])  # METHOD wins
    (tmp_path / "run.yaml").write_text("method: opsd\nsteps: 3\nmodel: tiny\n")
    cfg = train_cli.config_from_argv(["--config", str(tmp_path / "run.yaml")])
    (tmp_path / "config.json").write_text(json.dumps(cfg.to_dict()))  # what a run saves
    assert train_cli.config_from_argv(["--config", str(tmp_path / "config.json")]) == cfg
    (tmp_path / "bad.yaml").write_text("stepz: 3\n")
    with pytest.raises(ValueError, match="unknown fields"):
        train_cli.config_from_argv(["--config", str(tmp_path / "bad.yaml")])


def test_help_is_grouped_by_level_and_method():
    text = train_cli.build_parser().format_help()
    for group in ("run:", "teacher", "loss", "paced", "taid", "sdpo, srpo", "avsd", "atesd", "gkd"):
        assert f"\n{group}" in text, group


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "argv, match",
    [
        (["opsd", "--model", "/no/such/dir"], "model"),
        (["opsd", "--task", "nope"], "task"),
        (["opsd", "--paced-alpha", "2"], "--paced-alpha: not an option of opsd"),
        (["opsd", "--lr", "-1"], "lr"),
        (["opsd", "--config", "/no/such.yaml"], "config"),
    ],
)
def test_bad_input_is_one_error_line(argv, match, capsys):
    assert train_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("sdtheory train: error:") and err.count("\n") == 1 and match in err


# ----------------------------------------------------------------------------- the beta ends
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("beta, kl", [(0.0, "forward_kl"), (1.0, "reverse_kl")])
def test_jsd_at_the_ends_trains_as_the_kl(tmp_path, fused, beta, kl):
    """`--beta 0` / `--beta 1` train exactly as forward / reverse KL (records and weights bit for
    bit), with a non-zero loss and gradient; near the end the loss is continuous in beta."""
    flags = dict(TINY, steps=2, lr=1e-2, fused_loss=fused)
    runs = {"jsd": ["--beta", str(beta)], kl: ["--divergence", kl]}
    near = 1e-3 if beta == 0.0 else 1 - 1e-3
    runs["near"] = ["--beta", str(near)]
    for name, extra in runs.items():
        assert train_cli.main(["opsd", *_argv(flags), "--out", str(tmp_path / name), *extra]) == 0
    a, b = _train_records(tmp_path / "jsd"), _train_records(tmp_path / kl)
    assert [r.pop("divergence") for r in b] == [kl, kl]
    assert [r.pop("divergence") for r in a] == [kl, kl]  # the label of jsd at an end
    assert a == b
    assert all(r["distill_loss"] > 0 and r["grad_norm"] > 0 for r in a)
    wa, wb = _weights(tmp_path / "jsd"), _weights(tmp_path / kl)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    init = build_model("tiny", hidden_size=32, num_layers=2, seed=0)[0].state_dict()
    assert max(float((wa[k] - init[k]).abs().max()) for k in wa) > 1e-4  # it trained
    first = _train_records(tmp_path / "near")[0]["distill_loss"]
    assert first == pytest.approx(a[0]["distill_loss"], rel=0.02)  # continuous at the end


# ----------------------------------------------------------------------------- extension
def test_extending_a_finished_run(tmp_path, capsys):
    """`--steps 4 --resume true` after a 2-step run continues it (constant schedule: the same as
    one 4-step run); with a cosine schedule it is refused in one line."""
    flags = _argv(dict(TINY, lr=3e-3))
    assert train_cli.main(["opsd", *flags, "--steps", "4", "--out", str(tmp_path / "one")]) == 0
    two = ["opsd", *flags, "--out", str(tmp_path / "two")]
    assert train_cli.main([*two, "--steps", "2"]) == 0
    assert train_cli.main([*two, "--steps", "4", "--resume", "true"]) == 0
    assert _train_records(tmp_path / "one") == _train_records(tmp_path / "two")
    wa, wb = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    cos = ["opsd", *flags, "--schedule", "cosine", "--out", str(tmp_path / "cos")]
    assert train_cli.main([*cos, "--steps", "2"]) == 0
    capsys.readouterr()
    assert train_cli.main([*cos, "--steps", "4", "--resume", "true"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "steps changed from 2 to 4" in err and "constant" in err


# ----------------------------------------------------------------------------- tasks, devices
def test_task_file_runs_the_problems_of_the_file(tmp_path, capsys):
    """`--task-file` trains and evaluates on the file's problems (`taskfile.FileTask`), with
    the file's verifier; a missing file is one error line naming the field."""
    from sdtheory.lm import taskfile
    from sdtheory.lm.tasks import make_task
    from sdtheory.lm.trainers import Trainer

    path = tmp_path / "basic.jsonl"
    taskfile.write_task_set(path, make_task("basic_arithmetic"), 12, seed=5)
    want = taskfile.read_task_set(path).problems
    cfg = train_cli.config_from_argv(
        ["opsd", *_argv({**TINY, "task_file": str(path), "steps": 1, "seed": 5})]
    )
    assert cfg.run.task_file == str(path) and cfg.run.device == "auto"
    t = Trainer(cfg)
    assert type(t.task).__name__ == "FileTask" and t.task.name == "basic_arithmetic"
    assert t.train_set + t.eval_set == list(want[:10])  # n_train 8 + n_eval 2, the file's order
    argv = _argv({**TINY, "task_file": str(path), "steps": 1, "out": str(tmp_path / "run")})
    assert train_cli.main(["opsd", *argv]) == 0
    capsys.readouterr()
    assert train_cli.main(["opsd", "--model", "tiny", "--task-file", str(tmp_path / "no")]) == 2
    assert "task_file must be an existing file" in capsys.readouterr().err


def test_device_and_precision_flags(tmp_path, capsys):
    """`--device cpu --precision bf16` trains under bf16 autocast (weights stay fp32) and logs
    throughput and memory per step; a bad device or precision is one error line."""
    from sdtheory.lm.trainers import Trainer

    out = tmp_path / "bf16"
    cfg = TrainConfig(method="opsd", device="cpu", precision="bf16", steps=1, out=str(out), **TINY)
    t = Trainer(cfg)
    assert t.precision == "bf16" and t.acc.device.type == "cpu"
    (rec,) = [r for r in t.train() if r["kind"] == "train"]
    assert rec["tokens"] > 0 and rec["tokens_per_s"] > 0 and rec["peak_memory_gib"] > 0
    assert all(p.dtype == torch.float32 for p in t.unwrapped.parameters())
    with pytest.raises(ValueError, match="device must be one of"):
        TrainConfig(method="opsd", device="tpu")
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainConfig(method="opsd", precision="fp8")
    if not torch.cuda.is_available():
        assert train_cli.main(["opsd", "--model", "tiny", "--device", "cuda"]) == 2
        assert "torch sees no CUDA device" in capsys.readouterr().err
