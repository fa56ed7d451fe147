"""Air-gapped GPU runs: `sdtheory bundle OUT` writes what a stock CUDA image lacks.

Research GPU nodes are often air-gapped: no package index, no model hub, a size limit per file
transfer. A bundle carries, for `sdtheory validate --scale gpu` (or `cpu`, or the CI `fast`):

| file | what |
|---|---|
| `model/SmolLM2-135M-Instruct.Q4_1.gguf.partNNofMM` | the model, split into shards (<= 48 MiB) |
| `tokenizer.tar.gz` | its tokenizer (saved from the GGUF conversion) |
| `tasks/*.jsonl` | every task set the experiments ask for (`sdtheory.lm.taskfile` format) |
| `wheels/*.whl` | pure-Python wheels the image lacks: `gguf` (to read the model), `liger-kernel` |
| `sdtheory-<version>-src.tar.gz` | the package, the benchmarks, pyproject.toml |
| `run.py` | the entry script (`sdtheory.lm.bundle.entry`, standard library only) |
| `gpu_session.sh` | one GPU session with time limits: smoke, budgeted validate, losses benchmark |
| `manifest.json`, `README.txt` | sizes, sha256, versions, task sets, a transfer plan |

On the GPU machine `python run.py --out RESULTS` checks the files (naming any that are missing),
installs the package and wheels into a private directory, reassembles and converts the model once,
and runs `sdtheory validate` with the task sets read from the bundle. See `docs/lm/gpu.md`.
"""

from ._build import (
    CONVERTED_STAMP,
    DEFAULT_WHEELS,
    build_bundle,
    plan_transfers,
    split_file,
    weights_sha256,
)
from ._requests import REQUESTS, TaskRequest, smoke_task_requests, validate_task_requests

__all__ = [
    "CONVERTED_STAMP",
    "DEFAULT_WHEELS",
    "REQUESTS",
    "TaskRequest",
    "build_bundle",
    "plan_transfers",
    "smoke_task_requests",
    "split_file",
    "validate_task_requests",
    "weights_sha256",
]
