"""The entry script of an air-gapped bundle (copied into it as `run.py`; standard library only).

    python run.py --check                       # which files are there, which are missing
    python run.py --out SMOKE --smoke           # install, then every code path (tiny model)
    python run.py --out RESULTS [--cache DIR]   # install, reassemble, convert, validate
    python run.py --out RESULTS --budget-s 240  # the same within 240 s from the start

Steps, each skipped when its result is already in the cache (default `<bundle>/cache`):

1. **check** every file of `manifest.json` (size and sha256). Missing files are named one by one
   (model shards as "model shard 2 of 2"), with the transfer that carries them, and the script
   stops (exit 2); a corrupt file stops it too (exit 3).
2. **install** the package source and the wheels offline into a private directory
   (`pip install --no-index --no-deps --target`; a pure-Python wheel is unzipped where pip is
   missing). Nothing is installed into the machine's Python.
3. **reassemble** the model from its shards and check the whole file's sha256; **convert** it once
   (GGUF -> fp32 safetensors, `sdtheory.lm.models`) and check the converted weights against the
   content hash recorded when the bundle was made.
4. **validate**: `sdtheory validate` at the bundle's scale, with every task set read from the
   bundle's files (reasoning-gym and champ are never imported), results into `--out`. Every
   result file must be at most 16 MiB (exit 5 names any that is larger); `bundle_run.json` in
   `--out` records the stages' times, versions and paths. At `--scale gpu` the run has a
   wall-clock budget (`--budget-s`, default 300 s) counted from the start of `run.py`: the
   check, install, reassembly and conversion are spent from it and validate gets the rest
   (`run.py` passes its start time as `--budget-from`, so validate's start-up counts too).

`--smoke` skips step 3 (so it runs before the model's shards have arrived: step 1 lists them
as not yet here) and runs `sdtheory validate --smoke` instead (the tiny model: each
method, the losses in bf16 and fp32, fused vs plain vs Liger, every experiment's fast version),
with the smoke's task sets from the bundle.

Arguments after `--` go to `sdtheory validate` unchanged (e.g. `-- --size opsd=40`).
`gpu_session.sh`, beside this script, runs a whole GPU session: the smoke test, then the
budgeted run, then the losses benchmark, each with a time limit (`docs/lm/gpu.md`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

MANIFEST = "manifest.json"
MiB = 1 << 20
RESULT_LIMIT = 16 * MiB
GPU_BUDGET_S = 300.0  # = sdtheory.lm.validate.cli.GPU_BUDGET_S (this file imports no sdtheory)


# --- helpers shared with the builder (sdtheory.lm.bundle imports them) ------------------------
def sha256_file(path: str | os.PathLike, chunk: int = 4 * MiB) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def shard_name(name: str, i: int, n: int) -> str:
    """Name of shard `i` (0-based) of `n` of the file `name`: `name.part02of03` for i=1, n=3."""
    return f"{name}.part{i + 1:02d}of{n:02d}"


def join_shards(parts: list[Path], out: Path, sha256: str) -> Path:
    """Concatenate `parts` into `out`, checking the whole file's sha256 (atomic rename)."""
    h = hashlib.sha256()
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "wb") as f:
        for part in parts:
            with open(part, "rb") as g:
                while block := g.read(4 * MiB):
                    h.update(block)
                    f.write(block)
    if h.hexdigest() != sha256:
        tmp.unlink()
        raise RuntimeError(f"reassembled {out.name} has sha256 {h.hexdigest()}, want {sha256}")
    tmp.replace(out)
    return out


def describe(entry: dict) -> str:
    """How a manifest file entry is named to a person (shards by number)."""
    size = f"{entry['bytes'] / MiB:.1f} MiB"
    if entry["kind"] == "model-shard":
        return f"model shard {entry['shard'] + 1} of {entry['shards']}: {entry['path']} ({size})"
    return f"{entry['kind']}: {entry['path']} ({size})"


def check_files(manifest: dict, root: Path, *, hashes: bool = True) -> tuple[list, list]:
    """`(missing, corrupt)` manifest entries under `root` (size always, sha256 when `hashes`)."""
    missing, corrupt = [], []
    for e in manifest["files"]:
        p = root / e["path"]
        if not p.is_file():
            missing.append(e)
        elif p.stat().st_size != e["bytes"] or (hashes and sha256_file(p) != e["sha256"]):
            corrupt.append(e)
    return missing, corrupt


def extract_tar(path: Path, dest: Path) -> None:
    """Unpack a tar archive (regular files and directories only where Python can enforce it)."""
    with tarfile.open(path) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
        else:  # pragma: no cover - Python < 3.11.4
            tar.extractall(dest)


def oversized(out: Path, limit: int = RESULT_LIMIT) -> list[tuple[str, int]]:
    """Files under `out` larger than `limit` bytes, as `(relative path, bytes)`."""
    return [
        (str(p.relative_to(out)), p.stat().st_size)
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.stat().st_size > limit
    ]


# --- the stages --------------------------------------------------------------------------------
def _say(msg: str) -> None:
    print(f"[bundle] {msg}", flush=True)


def _report_check(manifest: dict, root: Path, *, need_model: bool = True) -> int:
    missing, corrupt = check_files(manifest, root)
    if not need_model:  # the smoke test: the model's shards may still be on their way
        later = [e for e in missing if e["kind"] == "model-shard"]
        for e in later:
            _say(f"not yet here (the smoke test does not need it): {describe(e)}")
        missing = [e for e in missing if e["kind"] != "model-shard"]
        if later and not missing and not corrupt:
            return 0
    if not missing and not corrupt:
        total = sum(e["bytes"] for e in manifest["files"])
        _say(f"all {len(manifest['files'])} files present and verified ({total / MiB:.1f} MiB)")
        return 0
    by_path = {p: i + 1 for i, t in enumerate(manifest.get("transfers", [])) for p in t["paths"]}
    for e in missing:
        where = f" (transfer {by_path[e['path']]})" if e["path"] in by_path else ""
        _say(f"MISSING {describe(e)}{where}")
    for e in corrupt:
        _say(f"CORRUPT {describe(e)}: wrong size or sha256; copy it again")
    _say(
        f"{len(missing)} missing and {len(corrupt)} corrupt of {len(manifest['files'])} files "
        f"under {root}; stopping"
    )
    return 2 if missing else 3


def _install(manifest: dict, root: Path, cache: Path) -> Path:
    """Extract the source and install the wheels into `cache/env-<id>`; returns that directory."""
    env = cache / f"env-{manifest['id'][:12]}"
    stamp = env / ".installed"
    if stamp.is_file():
        _say(f"packages already installed in {env}")
        return env
    if env.exists():
        shutil.rmtree(env)
    lib = env / "lib"
    lib.mkdir(parents=True)
    extract_tar(root / manifest["source"]["path"], env / "src")
    wheels = [root / w["path"] for w in manifest["wheels"]]
    if wheels:
        cmd = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps"]
        cmd += ["--disable-pip-version-check", "--quiet", "--target", str(lib), *map(str, wheels)]
        try:
            subprocess.run(cmd, check=True)
        except (subprocess.CalledProcessError, FileNotFoundError) as e:
            _say(f"pip failed ({e}); unzipping the (pure-Python) wheels instead")
            for w in wheels:
                _unzip_wheel(w, lib)
    stamp.write_text(json.dumps({"wheels": [w.name for w in wheels]}))
    _say(f"installed the package source and {len(wheels)} wheels into {env}")
    return env


def _unzip_wheel(wheel: Path, lib: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        z.extractall(lib)
    for data in lib.glob("*.data"):
        for kind in ("purelib", "platlib"):
            if (data / kind).is_dir():
                shutil.copytree(data / kind, lib, dirs_exist_ok=True)
        shutil.rmtree(data)


def _child_env(env: Path, cache: Path) -> dict:
    e = dict(os.environ)
    paths = [str(env / "src"), str(env / "lib")]
    if e.get("PYTHONPATH"):
        paths.append(e["PYTHONPATH"])
    e["PYTHONPATH"] = os.pathsep.join(paths)
    e["SDTHEORY_CACHE"] = str(cache / "models")
    e.setdefault("MPLCONFIGDIR", str(cache / "matplotlib"))
    e.setdefault("MPLBACKEND", "Agg")
    e.setdefault("TQDM_DISABLE", "1")  # the GGUF conversion's per-tensor bar, in every log
    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS"):
        e[k] = "1"
    return e


def _stage(stage: str, args: list[str], env: dict) -> int:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--stage", stage, *args]
    return subprocess.run(cmd, env=env).returncode


def _model(manifest: dict, root: Path, cache: Path, env: dict, allow_mismatch: bool) -> None:
    model = manifest["model"]
    gguf = cache / "models" / model["file"]
    if not gguf.is_file() or gguf.stat().st_size != model["bytes"]:
        parts = [root / e["path"] for e in manifest["files"] if e["kind"] == "model-shard"]
        t0 = time.perf_counter()
        join_shards(parts, gguf, model["sha256"])
        _say(f"reassembled {gguf.name} from {len(parts)} shards in {time.perf_counter() - t0:.1f}s")
    args = [str(root), str(gguf)] + (["--allow-model-mismatch"] if allow_mismatch else [])
    if _stage("convert", args, env):
        raise SystemExit("[bundle] model conversion failed (see above)")


def stage_convert(root: Path, gguf: Path, allow_mismatch: bool) -> int:
    """(Inside the private environment.) GGUF -> fp32 safetensors in the cache, once, checked."""
    from sdtheory.lm import bundle, models  # import-graph: separate process (the private env)

    manifest = json.loads((root / MANIFEST).read_text())
    out = models.cache_dir() / manifest["model"]["cache_name"]
    if (out / bundle.CONVERTED_STAMP).is_file():
        _say(f"model already converted in {out}")
        return 0
    if out.exists():  # an interrupted or rejected conversion: start again
        shutil.rmtree(out)
    tok = models.cache_dir() / "tokenizer"
    extract_tar(root / manifest["model"]["tokenizer"], tok)
    t0 = time.perf_counter()
    models._convert_smollm2(gguf, out, tokenizer_dir=tok)
    got = bundle.weights_sha256(out / "model.safetensors")
    want = manifest["model"]["converted_sha256"]
    ok = got == want
    _say(
        f"converted {gguf.name} -> {out} in {time.perf_counter() - t0:.1f}s; weights "
        + ("match the bundle's" if ok else f"DIFFER from the bundle's ({got[:12]} vs {want[:12]})")
    )
    if not ok and not allow_mismatch:
        shutil.rmtree(out)
        _say("stopping: pass --allow-model-mismatch to run on these weights anyway")
        return 4
    (out / bundle.CONVERTED_STAMP).write_text(json.dumps({"weights_sha256": got, "match": ok}))
    return 0


def validate_args(
    manifest: dict,
    out: Path,
    only: list[str] | None,
    rest: list[str],
    *,
    smoke: bool = False,
    budget_s: float | None = None,
    budget_from: float | None = None,
) -> list:
    """The `sdtheory validate` arguments for this bundle: `budget_s` is the whole budget and
    `budget_from` the wall-clock time (`time.time()`) at which it started (run.py's start)."""
    scale = manifest["scale"]
    if smoke:
        args = ["validate", "--smoke"]
    elif scale == "fast":
        args = ["validate", "--scale", "cpu", "--fast"]
    else:
        args = ["validate", "--scale", scale]
    if budget_s is not None and not smoke:
        args += ["--budget-s", f"{budget_s:.1f}"]
        if budget_from is not None:
            args += ["--budget-from", f"{budget_from:.3f}"]
    args += ["--out", str(out)]
    names = only or manifest.get("only")
    if names:
        args += ["--only", *names]
    return args + list(rest)


def stage_validate(root: Path, args: list[str], env_dir: Path) -> int:
    """(Inside the private environment.) `sdtheory validate` with the bundle's task files."""
    import sdtheory
    from sdtheory.cli import main  # import-graph: separate process (the private env)
    from sdtheory.lm import taskfile

    where = Path(sdtheory.__file__).resolve()
    if env_dir.resolve() not in where.parents:
        raise SystemExit(f"[bundle] sdtheory imported from {where}, not from {env_dir}")
    info = {"sdtheory": str(where.parent), "python": sys.version.split()[0]}
    try:
        import torch

        info["torch"] = torch.__version__
        info["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover
        pass
    out = Path(args[args.index("--out") + 1])
    out.mkdir(parents=True, exist_ok=True)
    (out / "bundle_env.json").write_text(json.dumps(info, indent=1))
    with taskfile.use_task_dir(root / "tasks"):
        return int(main(args) or 0)


def main(argv: list[str] | None = None) -> int:
    t_all, epoch0 = time.perf_counter(), time.time()  # the budget counts from here
    argv = list(sys.argv[1:] if argv is None else argv)
    rest = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, help="results directory (required unless --check)")
    p.add_argument("--cache", type=Path, default=None, help="work directory (<bundle>/cache)")
    p.add_argument("--check", action="store_true", help="only check the files and stop")
    p.add_argument("--only", nargs="+", default=None, help="run only these experiments")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="run `sdtheory validate --smoke` (every code path, tiny model; no model conversion)",
    )
    p.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help=f"wall-clock budget from the start of run.py, conversion included (default "
        f"{GPU_BUDGET_S:.0f} at scale gpu, none otherwise; 0 = none)",
    )
    p.add_argument("--allow-model-mismatch", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--stage", default=None, help=argparse.SUPPRESS)
    p.add_argument("stage_args", nargs="*", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.stage_args and not a.stage:
        p.error(f"unexpected arguments {a.stage_args}; the results directory goes after --out")
    root = Path(__file__).resolve().parent
    if a.stage == "convert":
        return stage_convert(Path(a.stage_args[0]), Path(a.stage_args[1]), a.allow_model_mismatch)
    if a.stage == "validate":
        return stage_validate(root, rest, Path(a.stage_args[0]))
    manifest = json.loads((root / MANIFEST).read_text())
    times = {}
    t0 = time.perf_counter()
    rc = _report_check(manifest, root, need_model=not a.smoke or a.check)
    times["check"] = time.perf_counter() - t0
    if rc or a.check:
        return rc
    if a.out is None:
        p.error("--out is required (the results directory)")
    budget = a.budget_s
    if budget is None and manifest["scale"] == "gpu":
        budget = GPU_BUDGET_S
    if budget is not None and budget <= 0:
        budget = None
    for e in manifest.get("task_errors", []):
        _say(f"WARNING: no task set for {e['experiment']}: {e['error']}")
    out = a.out.resolve()
    cache = (a.cache or root / "cache").resolve()
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    env_dir = _install(manifest, root, cache)
    times["install"] = time.perf_counter() - t0
    env = _child_env(env_dir, cache)
    _say(f"to run more with these packages: PYTHONPATH={env['PYTHONPATH']} (benchmarks/ in src/)")
    if manifest.get("model") and not a.smoke:
        t0 = time.perf_counter()
        _model(manifest, root, cache, env, a.allow_model_mismatch)
        times["model"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if budget is not None and time.perf_counter() - t_all >= 0.95 * budget:
        _say(f"the budget of {budget:.0f} s is spent before validate could start")
    vargs = validate_args(
        manifest, out, a.only, rest, smoke=a.smoke, budget_s=budget, budget_from=epoch0
    )
    _say("sdtheory " + " ".join(vargs))
    rc = _stage("validate", [str(env_dir), "--", *vargs], env)
    times["validate"] = time.perf_counter() - t0
    big = oversized(out)
    for path, size in big:
        _say(f"RESULT TOO LARGE: {path} is {size / MiB:.1f} MiB (limit {RESULT_LIMIT // MiB} MiB)")
    record = {
        "bundle": manifest["id"],
        "scale": manifest["scale"],
        "smoke": a.smoke,
        "budget_s": budget,
        "validate": vargs,
        "exit_code": rc,
        "seconds": {**times, "total": time.perf_counter() - t_all},
        "oversized": big,
    }
    env_json = out / "bundle_env.json"
    if env_json.is_file():
        record.update(json.loads(env_json.read_text()))
        env_json.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / "bundle_run.json").write_text(json.dumps(record, indent=1))
    _say(f"validate exited {rc} after {record['seconds']['total']:.0f}s; results in {out}")
    return 5 if big else rc


if __name__ == "__main__":
    raise SystemExit(main())
