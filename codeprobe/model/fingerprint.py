"""One fingerprint of a model folder: every file `load_model` reads from it, by content.

A cached result is keyed on the model that made it (`ModelInfo.fingerprint`), so a model
replaced in place (new weights under the same file names, a retrained tokenizer beside the same
weights, an edited config) is probed again instead of being served its old results.

The files (`model_files`), all at the top of the folder:
- the weights `load_model` loads (`weight_files`): `model.safetensors`, or the shards named by
  `model.safetensors.index.json` and that index; without safetensors, `pytorch_model.bin` or
  its shards and `pytorch_model.bin.index.json`. Weights in a format it does not load
  (`pytorch_model.bin` beside `model.safetensors`, TF, Flax, ONNX) are left out;
- `config.json`;
- the tokenizer's files: `tokenizer*.json`, `special_tokens_map.json`, `added_tokens.json`, and
  the vocabulary files transformers' tokenizers name: `vocab*`, `*vocab*.json`, `merges.txt`,
  `*.model` (sentencepiece: `spiece.model`, `tokenizer.model`, `sentencepiece.bpe.model`, ...),
  `*.spm`, `*.tiktoken`, `bpe.codes`, `dict.txt`;
- `*.py`: a model's own code (run only with `trust_remote_code`).
Not included: README and other documents, Trainer state (optimizer.pt, trainer_state.json, ...),
sub-folders (sentence-transformers' pooling modules, which codeprobe does not use).

The fingerprint is sha256 over (name, size, sha256 of the content) of each file, by name. A
file's sha256 is computed by streaming it in 8 MiB blocks (about 1.3 GB/s with SHA extensions)
and memoised by (path, device, inode, size, mtime_ns, ctime_ns), in this process and on disk
(`memo_path()`: at most `MEMO_ENTRIES` entries, written atomically, best effort), so a model is
hashed once and later runs only stat its files. A file whose mtime and ctime both lie within
`RACY_SECONDS` of now is hashed but not memoised: file times tick coarsely, so another write in
the same tick would leave both as they are. A file in a Hugging Face cache is a link to a blob
named by its sha256, which is used as is.

`weights_fingerprint` is the same over the weight files alone (and a sharded checkpoint's
index): two folders with the same one hold byte-identical weights, whatever their config.json
and tokenizer files say. A checkpoint series uses it to tell a checkpoint that repeats an
earlier one's weights (`codeprobe.pipeline.series`).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import threading
import time
from pathlib import Path

from codeprobe.errors import ModelLoadError

FORMAT = "codeprobe-model-fingerprint/1"
WEIGHTS_FORMAT = "codeprobe-weights-fingerprint/1"
CONFIG_FILE = "config.json"
TOKENIZER_PATTERNS = (
    "tokenizer*.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab*",
    "*vocab*.json",
    "merges.txt",
    "*.model",
    "*.spm",
    "*.tiktoken",
    "bpe.codes",
    "dict.txt",
)
CODE_PATTERNS = ("*.py",)
MEMO_ENTRIES = 4096
RACY_SECONDS = 2.0
_BLOCK = 1 << 23
_HUB_BLOB = re.compile(r"[0-9a-f]{64}")
_memo: dict[str, str] = {}
_memo_loaded = False
_memo_lock = threading.Lock()


def weight_files(folder: Path) -> tuple[bool, list[Path]]:
    """(use_safetensors, weight files) of a model folder: safetensors preferred, a single file or
    the shards its index names (the index itself is not among them).

    Raises:
        ModelLoadError: no weights in the folder.
    """
    for use_safetensors, single, index in (
        (True, "model.safetensors", "model.safetensors.index.json"),
        (False, "pytorch_model.bin", "pytorch_model.bin.index.json"),
    ):
        if (folder / single).is_file():
            return use_safetensors, [folder / single]
        if (folder / index).is_file():
            try:
                shards = sorted(set(json.loads((folder / index).read_text())["weight_map"].values()))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ModelLoadError(f"unreadable weights index {folder / index}") from exc
            return use_safetensors, [folder / s for s in shards]
    raise ModelLoadError(
        f"no weights in {folder}: expected model.safetensors (or pytorch_model.bin, loaded with "
        f"weights_only) and their shard indexes"
    )


def model_files(folder: str | os.PathLike) -> list[Path]:
    """Every file of a model folder that loading it reads (see the module docstring), by name.

    Raises:
        ModelLoadError: no weights, or a shard the index names is missing.
    """
    folder = Path(folder)
    files = {w.name: w for w in _weights_and_index(folder)}
    patterns = (CONFIG_FILE, *TOKENIZER_PATTERNS, *CODE_PATTERNS)
    for path in folder.iterdir():
        if path.name not in files and any(fnmatch.fnmatchcase(path.name, p) for p in patterns) and path.is_file():
            files[path.name] = path
    return [files[name] for name in sorted(files)]


def _weights_and_index(folder: Path) -> list[Path]:
    """The weight files `load_model` loads from `folder` and, when sharded, their index.

    Raises:
        ModelLoadError: no weights, or a shard the index names is missing.
    """
    use_safetensors, weights = weight_files(folder)
    missing = [w.name for w in weights if not w.is_file()]
    if missing:
        raise ModelLoadError(f"{folder}: weight shards missing: {', '.join(missing[:3])}")
    single = "model.safetensors" if use_safetensors else "pytorch_model.bin"
    if single not in {w.name for w in weights}:  # sharded: the index says which shard holds which weight
        weights = [*weights, folder / f"{single}.index.json"]
    return weights


def folder_fingerprint(folder: str | os.PathLike) -> str:
    """The fingerprint of a model folder: sha256 over the name, size and sha256 of each of
    `model_files(folder)`.

    Raises:
        ModelLoadError: no weights in the folder.
    """
    h = hashlib.sha256(FORMAT.encode() + b"\0")
    for path in model_files(folder):
        h.update(f"{path.name}\0{path.stat().st_size}\0{file_sha256(path)}\0".encode())
    return h.hexdigest()


def weights_fingerprint(folder: str | os.PathLike) -> str:
    """The fingerprint of a model folder's weights alone: sha256 over the name, size and sha256 of
    each weight file `load_model` loads (`weight_files`) and, when sharded, of their index.
    config.json, the tokenizer's files and the model's code are left out.

    Raises:
        ModelLoadError: no weights in the folder, or a shard the index names is missing.
    """
    h = hashlib.sha256(WEIGHTS_FORMAT.encode() + b"\0")
    for path in sorted(_weights_and_index(Path(folder)), key=lambda p: p.name):
        h.update(f"{path.name}\0{path.stat().st_size}\0{file_sha256(path)}\0".encode())
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's content, memoised (see the module docstring)."""
    path = Path(path)
    if path.is_symlink():
        target = path.resolve()
        if _HUB_BLOB.fullmatch(target.name) and target.parent.name == "blobs":
            return target.name  # a Hugging Face cache blob: named by its sha256
    real = path.resolve()
    stat = real.stat()
    key = f"{real}\0{stat.st_dev}\0{stat.st_ino}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ctime_ns}"
    with _memo_lock:
        _load_memo()
        known = _memo.get(key)
    if known is not None:
        return known
    digest = hashlib.sha256()
    buffer = bytearray(_BLOCK)
    view = memoryview(buffer)
    with real.open("rb", buffering=0) as f:
        while n := f.readinto(buffer):
            digest.update(view[:n])
    value = digest.hexdigest()
    now = time.time()
    if not all(abs(now - ns / 1e9) < RACY_SECONDS for ns in (stat.st_mtime_ns, stat.st_ctime_ns)):
        with _memo_lock:
            _memo[key] = value
            _save_memo()
    return value


def memo_path() -> Path:
    """The on-disk memo: $CODEPROBE_CACHE_DIR/file-sha256.json, else
    ~/.cache/codeprobe/file-sha256.json."""
    root = os.environ.get("CODEPROBE_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "codeprobe") / "file-sha256.json"


def _load_memo() -> None:
    global _memo_loaded
    if _memo_loaded:
        return
    _memo_loaded = True
    try:
        stored = json.loads(memo_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(stored, dict):
        _memo.update(
            {k: v for k, v in stored.items() if isinstance(k, str) and isinstance(v, str) and _HUB_BLOB.fullmatch(v)}
        )


def _save_memo() -> None:
    from codeprobe.files import write_atomic

    try:  # merge with what other processes stored meanwhile; keep the newest entries
        stored = json.loads(memo_path().read_text(encoding="utf-8"))
        if isinstance(stored, dict):
            for k, v in stored.items():
                if isinstance(k, str) and isinstance(v, str) and _HUB_BLOB.fullmatch(v):
                    _memo.setdefault(k, v)
    except (OSError, ValueError):
        pass
    while len(_memo) > MEMO_ENTRIES:
        del _memo[next(iter(_memo))]
    try:
        write_atomic(memo_path(), json.dumps(_memo))
    except OSError:
        pass  # a read-only home: the memo lives in this process only
