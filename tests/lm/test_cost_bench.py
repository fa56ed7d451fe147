"""Smoke test of `benchmarks/bench_cost_model.py` on the tiny model (every measurement runs)."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_cost_model.py"


def test_every_measurement_runs_and_uses_the_cost_model(tmp_path, capsys):
    from sdtheory.lm import cost

    spec = importlib.util.spec_from_file_location("bench_cost_model", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = "--model tiny --reps 1 --batch 1 --context 16 --decode-batch 2 --prompt 8 --new 3"
    out = bench.main(args.split() + ["--out", str(tmp_path / "c.json")])
    assert (tmp_path / "c.json").is_file() and out["device"] == "cpu"
    tr, dec = out["train"], out["decode"]
    model, _ = bench._model("tiny", __import__("torch").device("cpu"))
    shape = bench._shape(model)
    assert tr["flops_per_token"] == cost.train_flops_per_token(shape, 16)
    assert dec["bytes_per_step"] == cost.decode_bytes_per_step(
        shape, 2, 8 + 1, weight_bytes=4, kv_bytes=4
    )
    # saved activations: more than the logits, a few dozen H-sized fp32 vectors per layer
    assert tr["saved_bytes_per_token"] > 4 * shape.vocab
    assert 10 < tr["saved_bytes_per_token_layer_over_H"] < 1000
    assert all(
        v > 0 for v in (out["matmul_flops"], out["bandwidth_bytes_per_s"], dec["seconds_per_step"])
    )
    assert out["dispatch"]["layers"] == shape.n_layers
