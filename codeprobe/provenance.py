"""What shapes a result, as a key: cached work is reused only when every one of these matches.

A cached result is stale when anything that made it changed. The key of every pipeline step is
`step_key(step, inputs)`, which hashes its inputs together with `environment()`:
- codeprobe's version and a hash of its own source (`source_hash`): a fix anywhere in the
  package (not only in the task function, which is all Prefect's TASK_SOURCE sees) recomputes;
- the Python version and the versions of the libraries that shape the numbers (torch,
  transformers, tokenizers, tree-sitter and every grammar wheel, numpy, scipy);
- the dataset's content (`dataset_fingerprint`) and the model's fingerprint (over all its
  files: `codeprobe.model.fingerprint`), which the steps pass in as inputs.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import codeprobe

_LIBRARIES = (
    "codeprobe",
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
    "tree-sitter",
    "numpy",
    "scipy",
    "numba",
    "prefect",
)


def versions() -> dict[str, str]:
    """Versions of everything that shapes the numbers (the interpreter included), recorded with
    every run."""
    from codeprobe.syntax import grammar_packages

    out = {"python": platform.python_version()}
    for name in (*_LIBRARIES, *grammar_packages()):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


@lru_cache(maxsize=1)
def source_hash() -> str:
    """sha256 over every .py file of the installed codeprobe package (paths and bytes)."""
    root = Path(codeprobe.__file__).parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


@lru_cache(maxsize=1)
def environment() -> dict[str, str]:
    """Everything outside a step's own inputs that shapes its result."""
    return {**versions(), "codeprobe_source": source_hash()}


def dataset_fingerprint(dataset: str, language: str) -> str:
    """sha256 of what the loaders read for `dataset` in `language`: a file's bytes; for a
    directory (or "stdlib", the running interpreter's standard library) the relative path and
    bytes of every source file they read, in order. An edited file, or another Python, gives
    another fingerprint."""
    from codeprobe.datasets.loader import STDLIB_NAMES
    from codeprobe.datasets.sources import source_files, stdlib_root

    h = hashlib.sha256()
    if dataset.strip().lower() in STDLIB_NAMES:
        h.update(sys.version.encode() + b"\0")
        files = source_files(stdlib_root(), ["python"], stdlib=True)
    elif Path(dataset).is_dir():
        files = source_files(Path(dataset), [language])
    else:
        files = [(Path(dataset).name, Path(dataset))]
    for rel, path in files:
        h.update(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def step_key(step: str, inputs: dict[str, Any]) -> str:
    """The cache key of one pipeline step: its name, its inputs and the `environment()`."""
    blob = json.dumps({"step": step, "inputs": inputs, "environment": environment()}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()
