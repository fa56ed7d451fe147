"""Data parallel: `accelerate launch --multi_gpu` with 2 CPU processes (gloo) reproduces one
process with the same global batch (each rank samples half the problems; losses normalised by
the global batch), also through the shipped DDP config file and with LoRA.

FSDP: accelerate (1.x) turns FSDP on only from a multi-accelerator distributed type
(`MULTI_GPU`, `MULTI_XPU`, `MULTI_NPU`, ...); CPU processes stay `MULTI_CPU`, so FSDP cannot run
on CPU through accelerate. On CPU the test checks that an FSDP launch is refused (instead of
silently running DDP); the FSDP equivalence and resume test needs CUDA (2 processes with 2 GPUs;
with one GPU, one FSDP process: the wrapping and the sharded checkpoints, not the cross-rank
sharding) and is skipped elsewhere."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")
pytest.importorskip("transformers")
pytest.importorskip("reasoning_gym")

ROOT = Path(__file__).resolve().parents[2]
ARGS = [
    "--model",
    "tiny",
    "--hidden-size",
    "32",
    "--num-layers",
    "2",
    "--n-train",
    "16",
    "--n-eval",
    "0",
    "--batch-problems",
    "4",
    "--k",
    "2",
    "--max-new-tokens",
    "8",
    "--steps",
    "3",
    "--lr",
    "3e-3",
    "--progress",
    "false",
    "--threads",
    "1",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(out: Path, nproc: int, method: str, extra=(), launch=None, check=True):
    """Train in `nproc` processes: plain `python -m` for one process without `launch`, else
    `accelerate launch` with the `launch` options (default `--multi_gpu`)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    train = ["-m", "sdtheory.lm.train_cli", *ARGS, "--method", method, *extra, "--out", str(out)]
    if nproc == 1 and launch is None:
        cmd = [sys.executable, *train]
    else:
        # `--cpu` with several processes goes through MPI in accelerate; `--multi_gpu` uses
        # torchrun, and on a machine without CUDA the Accelerator falls back to gloo on CPU.
        cmd = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            *(launch or ("--multi_gpu",)),
            "--num_processes",
            str(nproc),
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--main_process_port",
            str(_free_port()),
            *train,
        ]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


CONFIGS = ROOT / "sdtheory" / "lm" / "launch"


@pytest.mark.slow
@pytest.mark.parametrize(
    "method, extra, launch",
    [
        ("opsd", (), None),
        (
            "gkd",
            ("--teacher-model", "tiny", "--gkd-lambda", "0.5", "--estimator", "advantage"),
            None,
        ),
        ("pidistill", (), None),  # two forwards of one network (StudentOutputs.under) under DDP
        ("vpd", ("--vpd-e-every", "1"), None),  # and a reward shift from global class means
        # the shipped DDP config file (bf16 there; fp32 here, where gloo runs on CPU) and LoRA
        (
            "opsd",
            ("--lora-rank", "4", "--teacher-mode", "ema", "--ema-rate", "0.5"),
            ("--config_file", str(CONFIGS / "ddp.yaml")),
        ),
    ],
    ids=["opsd", "gkd", "pidistill", "vpd", "opsd-lora-ddp-config"],
)
def test_two_processes_reproduce_one(tmp_path, method, extra, launch):
    _run(tmp_path / "one", 1, method, extra)
    _run(tmp_path / "two", 2, method, extra, launch)
    recs = {}
    for name in ("one", "two"):
        lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        recs[name] = [json.loads(x) for x in lines if '"train"' in x]
    for a, b in zip(recs["one"], recs["two"], strict=True):
        assert a["reward"] == b["reward"] and a["completion_tokens"] == b["completion_tokens"]
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-6)  # fp32 reduction order
    assert {r["processes"] for r in recs["one"]} == {1}
    assert {r["processes"] for r in recs["two"]} == {2}
    sa = torch.load(tmp_path / "one" / "checkpoint" / "state.pt", weights_only=False)["model"]
    sb = torch.load(tmp_path / "two" / "checkpoint" / "state.pt", weights_only=False)["model"]
    from sdtheory.lm.models import build_model

    init = build_model("tiny", hidden_size=32, num_layers=2, seed=0)[0].state_dict()
    init = {k: init.get(k, torch.zeros(())) for k in sa}  # LoRA: adapters only (B starts at 0)
    assert max(float((sa[k] - init[k]).abs().max()) for k in sa) > 1e-3  # training moved it
    # Weights move by ~9e-3 (3 AdamW steps at lr 3e-3). The gradients agree to fp32 reduction
    # order (~1e-7 relative), but Adam's g/(|g| + eps) amplifies that for the near-zero gradients
    # of rarely used embedding rows: measured max difference 4e-5, so allow 1e-4 (~1%).
    for k in sa:
        assert torch.allclose(sa[k], sb[k], atol=1e-4, rtol=0), k


def test_fsdp_launch_on_cpu_is_refused(tmp_path):
    """accelerate keeps CPU processes on MULTI_CPU even with an FSDP config; the trainer says so
    instead of silently running plain data parallel."""
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: FSDP runs (see the GPU test)")
    res = _run(
        tmp_path / "fsdp",
        2,
        "opsd",
        launch=("--config_file", str(CONFIGS / "fsdp.yaml")),
        check=False,
    )
    assert res.returncode != 0, res.stderr[-2000:]  # torchrun reports the ranks' exit 2
    assert "FSDP was requested but accelerate runs" in res.stderr


def test_fsdp_refuses_an_ema_self_teacher(tmp_path):
    """Under FSDP the student's parameters are shards: an EMA of them is refused by name."""
    from sdtheory.lm.teachers import SelfTeacher
    from sdtheory.lm.trainers import TrainConfig, Trainer, _check_sharded

    cfg = TrainConfig(
        method="opsd", model="tiny", hidden_size=32, num_layers=2, n_train=4, n_eval=0,
        progress=False, out=str(tmp_path), teacher_mode="ema",
    )  # fmt: skip
    tr = Trainer(cfg)
    assert isinstance(tr.teacher, SelfTeacher) and tr.teacher.mode == "ema"
    with pytest.raises(ValueError, match="teacher_mode='ema'"):
        _check_sharded(tr.teacher)
    _check_sharded(Trainer(cfg.replace(teacher_mode="fixed")).teacher)  # fixed and live run
    _check_sharded(None)  # methods without a teacher


@pytest.mark.gpu
@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="FSDP needs CUDA: accelerate enables FSDP only on accelerators, never for CPU "
    "processes (it would run MULTI_CPU data parallel instead)",
)
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_fsdp_reproduces_one_process(tmp_path, lora):
    """FSDP2 through the shipped config (fp32) over 2 GPUs (one FSDP process on a one-GPU
    machine) against one plain process: same rewards, losses within fp32 reduction noise; an
    interrupted FSDP run resumes from its sharded checkpoint to the same losses."""
    nproc = min(2, torch.cuda.device_count())
    extra = ("--lora-rank", "4") if lora else ()
    launch = ("--config_file", str(CONFIGS / "fsdp.yaml"))
    _run(tmp_path / "one", 1, "opsd", extra)
    _run(tmp_path / "two", nproc, "opsd", extra, launch)
    _run(tmp_path / "part", nproc, "opsd", (*extra, "--steps", "2"), launch)
    _run(tmp_path / "part", nproc, "opsd", (*extra, "--resume", "true"), launch)
    recs = {}
    for name in ("one", "two", "part"):
        lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        recs[name] = [json.loads(x) for x in lines if '"train"' in x]
    assert {r["processes"] for r in recs["two"]} == {nproc}
    assert (tmp_path / "two" / "checkpoint" / "sharded").is_dir()  # FSDP ran, not plain DDP
    for a, b in zip(recs["one"], recs["two"], strict=True):
        assert a["reward"] == b["reward"] and a["completion_tokens"] == b["completion_tokens"]
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-3, abs=1e-6)
    for a, b in zip(recs["two"], recs["part"], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5, abs=1e-7)
