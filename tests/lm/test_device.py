"""`sdtheory.lm.device`: device and precision names, autocast, memory; strict JSON files."""

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sdtheory import simio  # noqa: E402
from sdtheory.lm import device as D  # noqa: E402


def test_device_names_and_precision():
    assert D.resolve_device("cpu") == torch.device("cpu")
    assert D.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("tpu", "cpu:1", "", "gpu"):
        with pytest.raises(ValueError, match="device must be one of"):
            D.resolve_device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            D.resolve_device("cuda:0")
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert (
        D.resolve_precision("auto", cpu) == "fp32" and D.resolve_precision("auto", cuda) == "bf16"
    )
    assert (
        D.resolve_precision("bf16", cpu) == "bf16" and D.resolve_precision("fp32", cuda) == "fp32"
    )
    with pytest.raises(ValueError, match="precision must be one of"):
        D.resolve_precision("fp16", cpu)


def test_autocast_runs_matrix_products_in_bf16_only_when_asked():
    a, b = torch.randn(4, 8), torch.randn(8, 3)
    with D.autocast(torch.device("cpu"), "fp32"):
        assert (a @ b).dtype == torch.float32
    with D.autocast(torch.device("cpu"), "bf16"):
        assert (a @ b).dtype == torch.bfloat16
        # the package's losses upcast bf16 logits themselves (CPU autocast would not)
        from sdtheory.lm.losses import distillation_loss

        z = a @ b
        loss = distillation_loss(z[None], z[None].flip(-1), torch.ones(1, 4, dtype=torch.bool))
        assert z.dtype == torch.bfloat16 and loss.dtype == torch.float32
    D.configure(torch.device("cpu"))  # a no-op on the CPU
    mem = D.memory_stats(torch.device("cpu"))
    assert 0.01 < mem["peak_memory_gib"] < 1024  # this process holds torch: tens of MiB at least
    assert D.describe(torch.device("cpu")).startswith("CPU (")


def test_save_json_writes_strict_json(tmp_path):
    obj = {"a": float("nan"), "b": np.array([1.0, np.inf]), "c": (np.float32(-np.inf), 2), "d": 1}
    p = simio.save_json(tmp_path / "x.json", obj)

    def bad(c):
        raise ValueError(c)

    got = json.loads(p.read_text(), parse_constant=bad)
    assert got == {"a": "nan", "b": [1.0, "inf"], "c": ["-inf", 2], "d": 1}
    assert math.isnan(float(got["a"]))  # the strings read back as the numbers


def test_atesd_controller_stays_fp32_under_bf16_autocast():
    """The ATESD controller draws Beta samples (no bf16 kernel on the CPU): its policy runs in
    fp32 inside a bf16 autocast region, where the trainer calls it under `--precision bf16`."""
    from sdtheory.lm.methods.atesd import ExposureController

    ctrl = ExposureController(seed=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        dist = ctrl.policy(torch.tensor([0.0, 0.5, 0.0, 0.0]))
        rho = ctrl.current(0.0)
    assert dist.concentration1.dtype == torch.float32 and 0.0 <= rho <= 1.0
