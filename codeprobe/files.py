"""Writing and reading a run's files: the one atomic writer and the one JSON encoder of codeprobe,
the record that lets a reader tell a file is whole, and the names of its temporary files.

Every file codeprobe writes goes through `write_atomic` (a temporary file beside the target and a
rename), so a reader, or a run resumed after a kill, never sees half a file. JSON is written by
`write_json`, which turns numpy scalars and arrays into JSON values and NaN and infinities (which
JSON lacks) into null, and read by `read_json`.

**Integrity record.** A file written with `record=True` (every step output: `write_npz`,
`codeprobe.pipeline.runfolder.write_step_json` and the files a step reads back) gets a sidecar
`.<name>.sum` beside it: `{"size": bytes, "crc32": "8 hex digits"}` of the bytes written
(`zlib.crc32`, computed on the data given, or on the file a writer function made). The new
record is written before the file is renamed into place, so a kill in between leaves the old file
(or none) beside a record it does not match: the step is not done, and the file counts as whole
exactly when it is in place. `check(path)` compares a file with its record ("ok", "damaged", "unrecorded", "missing"),
memoised per process by (path, size, mtime) so a file is read once however often it is asked
about; a damaged file is logged once, as a WARNING naming it. Directories of many large files
(AST-Probe's hidden-state caches and stores) record each file's size and checksum in their
meta.json instead (`file_record`, `matches`), computed as the bytes are written.

**A full disk.** An `OSError` ENOSPC (or EDQUOT) while writing becomes a `DiskFullError` naming
the folder, how much more the write needed (where known) and what is free (`disk_full`); the
temporary file is removed on any error.

**Temporary names.** A temporary file is `.<name>.<host>-<pid>-<random>.tmp<suffixes>`, a
temporary folder (`temporary_dir`) `.<name>.<host>-<pid>-<random>.tmp`: `<host>` is 6 hex digits
of this machine's name, `<pid>` the writing process. `remove_stale_temporaries(root)` removes the
ones under `root` whose process, on this machine, is dead (a killed run's); a live writer's (in
this process or another) and another machine's are kept. Nothing else is ever removed.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import math
import os
import re
import shutil
import socket
import tempfile
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from codeprobe.errors import DiskFullError

log = logging.getLogger("codeprobe.files")

_CHUNK = 1 << 20
_FULL = (errno.ENOSPC, errno.EDQUOT)
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]
_TEMPORARY = re.compile(r"^\..+\.(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-[A-Za-z0-9_]+\.tmp(\..*)?$")


def _temporary_prefix(path: Path) -> str:
    return f".{path.name}.{_HOST}-{os.getpid()}-"


def _umask() -> int:
    """This process's umask, read without changing it (os.umask sets it, which would race with
    other threads creating files); 0o022 where /proc does not say."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def published(tmp: Path, folder: bool = False) -> None:
    """Give a temporary file (or folder) the permissions a plain `open` (or `mkdir`) would:
    mkstemp and mkdtemp make them private (0600, 0700), which would keep a run's results from
    the colleagues the umask lets read them."""
    os.chmod(tmp, (0o777 if folder else 0o666) & ~_umask())


def temporary_dir(path: str | os.PathLike) -> Path:
    """A new private temporary folder beside `path` (for writing a folder whole, then renaming
    it into place), named so that `remove_stale_temporaries` recognises it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_temporary_prefix(path), suffix=".tmp", dir=path.parent))
    published(tmp, folder=True)
    return tmp


def is_temporary(name: str) -> bool:
    """Whether `name` is one of codeprobe's temporary files or folders."""
    return _TEMPORARY.match(name) is not None


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would end the process there: keep its files
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(root: str | os.PathLike) -> list[Path]:
    """Remove, under `root` (recursively), the temporary files and folders codeprobe's writers
    left when their process died on this machine (`write_atomic`, `temporary_dir`). Returns what
    it removed."""
    removed = []
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            m = _TEMPORARY.match(name)
            if m is None or m["host"] != _HOST or _alive(int(m["pid"])):
                continue
            path = Path(folder, name)
            if name in dirs:
                shutil.rmtree(path, ignore_errors=True)
                dirs.remove(name)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    if removed:
        log.info("removed %d temporary files a killed run left under %s", len(removed), root)
    return removed


def format_bytes(n: float) -> str:
    """`n` bytes as "340 MiB", "12 KiB", "0 B"."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" or n >= 10 else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # not reached


def is_disk_full(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in _FULL


def disk_full(folder: str | os.PathLike, needed: int | None = None, written: int | None = None) -> DiskFullError:
    """The error to raise for a full disk while writing into `folder`.

    Args:
        needed: about how many more bytes the write needed, where known.
        written: else, how many it wrote before the disk filled (it needed more).
    """
    try:
        free = format_bytes(shutil.disk_usage(folder).free)
    except OSError:
        free = "unknown"
    if needed is not None:
        need = f"the step needed about {format_bytes(max(needed, 0))} more"
    elif written is not None:
        need = f"the step needed more than the {format_bytes(written)} it wrote"
    else:
        need = "the step needed more"
    return DiskFullError(f"no space left on device in {folder} ({need}; {free} free)")


def file_record(path: str | os.PathLike) -> dict[str, Any]:
    """{"size", "crc32"} of the file `path` as it is now (read in 1 MiB chunks)."""
    crc, size = 0, 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
    return {"size": size, "crc32": f"{crc:08x}"}


def bytes_record(data: bytes) -> dict[str, Any]:
    return {"size": len(data), "crc32": f"{zlib.crc32(data):08x}"}


_MEMO: dict[tuple, bool] = {}
_MEMO_LOCK = threading.Lock()


def _memo_key(path: Path, st: os.stat_result, record: dict[str, Any]) -> tuple:
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino, record.get("crc32"))


def remember(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Note that file `path`, as it is now, matches `record` (its writer computed it from the
    bytes it wrote): `matches` need not read it again in this process."""
    path = Path(path)
    with _MEMO_LOCK:
        _MEMO[_memo_key(path, path.stat(), record)] = True


def matches(path: str | os.PathLike, record: dict[str, Any]) -> bool:
    """Whether file `path` has the size and checksum of `record` (`file_record`); memoised per
    process by (path, size, mtime, record), so each file is read once. False if it is missing."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_size != record.get("size"):
        return False
    memo = _memo_key(path, st, record)
    with _MEMO_LOCK:
        if memo in _MEMO:
            return _MEMO[memo]
    try:
        ok = file_record(path) == {"size": record.get("size"), "crc32": record.get("crc32")}
    except OSError:
        return False
    with _MEMO_LOCK:
        _MEMO[memo] = ok
    return ok


def record_path(path: str | os.PathLike) -> Path:
    """The sidecar holding `path`'s integrity record: `.<name>.sum` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.sum")


_WARNED: set[tuple] = set()


def check(path: str | os.PathLike) -> str:
    """Whether file `path` is as written: "ok" (its size and checksum match its record),
    "damaged" (they do not: logged once as a WARNING naming the file), "unrecorded" (no record,
    e.g. written by an older codeprobe, or killed between the rename and the record) or
    "missing"."""
    path = Path(path)
    if not path.is_file():
        return "missing"
    try:
        record = json.loads(record_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "unrecorded"
    if not isinstance(record, dict):
        return "damaged"
    if matches(path, record):
        return "ok"
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _WARNED:
        _WARNED.add(key)
        log.warning(
            "%s is damaged (its size or checksum differs from those recorded when it was written): "
            "not used, computed again",
            path,
        )
    return "damaged"


def write_atomic(
    path: str | os.PathLike,
    data: bytes | str | Callable[[Path], None],
    *,
    record: bool = False,
    size_hint: int | None = None,
) -> Path:
    """Write `data` to `path` through a temporary file in the same folder and a rename.

    Args:
        path: the file to write; its folder is created.
        data: the bytes or text to write (text as UTF-8), or a function that writes the file
            it is given (for writers that take a path, e.g. `np.savez`, parquet).
        record: also record the file's size and checksum beside it (`check`).
        size_hint: about how many bytes a writer function writes (for `DiskFullError`'s message).

    Returns:
        `path`, as a `Path`. The temporary file is removed on any error.

    Raises:
        DiskFullError: the disk (or quota) is full.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(
            prefix=_temporary_prefix(path), suffix=".tmp" + "".join(path.suffixes), dir=path.parent
        )
    except OSError as err:
        if is_disk_full(err):
            raise disk_full(path.parent, size_hint) from err
        raise
    tmp = Path(name)
    try:
        if callable(data):
            os.close(fd)
            data(tmp)
            sums = file_record(tmp) if record else None
        else:
            raw = data.encode("utf-8") if isinstance(data, str) else data
            size_hint = len(raw)
            with os.fdopen(fd, "wb") as f:
                f.write(raw)
            sums = bytes_record(raw) if record else None
        published(tmp)
        sidecar = record_path(path)
        if sums is None:
            sidecar.unlink(missing_ok=True)  # an older record describes another content
        else:
            # The record first: a kill before the rename leaves the old file (or none) beside a
            # record it does not match, so the step is not done; after it, the file is whole.
            write_atomic(sidecar, json.dumps(sums))
        os.replace(tmp, path)
        if sums is not None:
            remember(path, sums)
    except BaseException as err:
        written = tmp.stat().st_size if tmp.exists() else None
        tmp.unlink(missing_ok=True)
        if is_disk_full(err):
            needed = None if size_hint is None or written is None else size_hint - written
            raise disk_full(path.parent, needed, written) from err
        raise
    return path


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray], *, record: bool = True) -> Path:
    """Write `arrays` as an uncompressed .npz (flat arrays, read back with `allow_pickle=False`),
    atomically, recording its size and checksum (`check`)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a bare name
            np.savez(f, **arrays)

    hint = sum(np.asarray(a).nbytes for a in arrays.values())
    return write_atomic(path, write, record=record, size_hint=hint)


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


def write_json(path: str | os.PathLike, obj: Any, *, sort_keys: bool = True, record: bool = False) -> Path:
    """Write `obj` as indented JSON, atomically; NaN and infinities become null (`json_value`);
    `record`: as `write_atomic`'s."""
    text = json.dumps(json_value(obj), indent=1, sort_keys=sort_keys, allow_nan=False)
    return write_atomic(path, text, record=record)


def read_json(path: str | os.PathLike) -> Any:
    """The JSON value in `path` (UTF-8)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
