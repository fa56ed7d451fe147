"""The public test helpers and the sim plumbing."""

import csv
import dataclasses

import numpy as np
import pytest
from hypothesis import given

from sdtheory import simio
from sdtheory.testing import strategies as sst
from sdtheory.testing.asserts import assert_close, tolerance


@given(sst.psd_kernels(condition=100.0))
def test_psd_kernels_have_the_requested_spectrum(k):
    np.testing.assert_allclose(k, k.T, atol=0)
    eig = np.linalg.eigvalsh(k)
    assert eig.min() > 0
    assert eig.max() / eig.min() <= 100.0 * (1 + 1e-8)


@given(sst.log_probs(degenerate=True))
def test_degenerate_log_probs_still_normalise(lp):
    assert np.all(lp <= 0)
    np.testing.assert_allclose(np.exp(lp).sum(-1), 1.0, atol=1e-12)


def test_tolerance_table():
    assert tolerance(np.float64)["rtol"] == 1e-12
    assert tolerance("float32")["atol"] == 1e-5
    with pytest.raises(ValueError, match="dtype must be one of"):
        tolerance("int8")
    with pytest.raises(AssertionError):
        assert_close(1.0, 1.0 + 1e-9)


@dataclasses.dataclass(frozen=True)
class _Cfg:
    n: int = dataclasses.field(default=3, metadata={"help": "points"})
    rate: float = 0.5
    flag: bool = False
    grid: tuple[float, ...] = (0.1, 0.2)
    name: str | None = None


def test_parse_builds_config_and_run_dir(tmp_path):
    cfg, out = simio.parse(
        _Cfg, ["--n", "7", "--flag", "true", "--grid", "1", "2", "3", "--out", str(tmp_path)], "t"
    )
    assert cfg == _Cfg(n=7, flag=True, grid=(1.0, 2.0, 3.0))
    assert out == tmp_path and (out / "config.json").exists() and (out / "env.json").exists()
    with pytest.raises(SystemExit):
        simio.parse(_Cfg, ["--n", "x"], "t")


def test_save_table_columns_and_rows(tmp_path):
    simio.save_table(tmp_path / "a.csv", {"x": np.arange(3), "y_theory": np.ones(3)})
    rows = list(csv.DictReader(open(tmp_path / "a.csv")))
    assert [r["x"] for r in rows] == ["0", "1", "2"]
    simio.save_table(tmp_path / "b.csv", [{"a": 1}, {"a": 2, "b": 3}])
    rows = list(csv.DictReader(open(tmp_path / "b.csv")))
    assert rows[1] == {"a": "2", "b": "3"}
    with pytest.raises(ValueError, match="different lengths"):
        simio.save_table(tmp_path / "c.csv", {"x": [1, 2], "y": [1]})


def test_load_sim_rejects_unknown_name():
    with pytest.raises(ValueError, match="name must be one of the sims"):
        simio.load_sim("does_not_exist")
