"""Writing and reading a run's files: the one atomic writer and the one JSON encoder of codeprobe.

Every file codeprobe writes goes through `write_atomic` (a temporary file beside the target and a
rename), so a reader, or a run resumed after a kill, never sees half a file. JSON is written by
`write_json`, which turns numpy scalars and arrays into JSON values and NaN and infinities (which
JSON lacks) into null, and read by `read_json`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def write_atomic(path: str | os.PathLike, data: bytes | str | Callable[[Path], None]) -> Path:
    """Write `data` to `path` through a temporary file in the same folder and a rename.

    Args:
        path: the file to write; its folder is created.
        data: the bytes or text to write (text as UTF-8), or a function that writes the file
            it is given (for writers that take a path, e.g. `np.savez`, parquet).

    Returns:
        `path`, as a `Path`. The temporary file is removed on any error.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + "".join(path.suffixes), dir=path.parent)
    tmp = Path(name)
    try:
        if callable(data):
            os.close(fd)
            data(tmp)
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Write `arrays` as an uncompressed .npz (flat arrays, read back with `allow_pickle=False`),
    atomically."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a bare name
            np.savez(f, **arrays)

    return write_atomic(path, write)


def json_value(value: Any) -> Any:
    """`value` as plain JSON values: numpy scalars and arrays to numbers and lists, tuples to
    lists, NaN and infinities to None (JSON has neither), recursively through dicts and lists."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def write_json(path: str | os.PathLike, obj: Any, *, sort_keys: bool = True) -> Path:
    """Write `obj` as indented JSON, atomically; NaN and infinities become null (`json_value`)."""
    return write_atomic(path, json.dumps(json_value(obj), indent=1, sort_keys=sort_keys, allow_nan=False))


def read_json(path: str | os.PathLike) -> Any:
    """The JSON value in `path` (UTF-8)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
