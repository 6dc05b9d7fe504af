"""Token-vector cache: run the frozen model once, keep every layer's pooled token vectors on disk.

The reference re-ran the language model on every batch of every epoch; here the model runs once
per snippet, and each hidden-states layer goes to its own raw float16 file, memory-mapped when
read. A layer sweep, a rank sweep or a rerun then only reads the layer it needs.

Layout of a cache directory:
    meta.json          model provenance, snippet ids, tokens per snippet, fingerprint
    layer_00.f16 ...   (total tokens, hidden) float16, C order; 00 = embeddings

Concurrency: a cache is built in a private temporary directory and renamed into place once
complete, under a file lock (`filelock`), so two processes asking for the same cache build it
once, and a reader never sees a half-written one; files are never rewritten in place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock

from codeprobe.errors import InputError
from codeprobe.model import Extractor, Snippet
from codeprobe.provenance import source_hash
from codeprobe.progress import progress

log = logging.getLogger("codeprobe.astprobe")

FORMAT_VERSION = 2


@dataclass(frozen=True)
class CacheItem:
    """One snippet to encode: its id, the code the model sees, and its code tokens' character
    spans (int64 (n,) each; e.g. `CodeTokens.start_char` / `end_char`)."""

    id: str
    code: str
    token_starts: np.ndarray
    token_ends: np.ndarray


@dataclass(frozen=True)
class VectorCache:
    """An opened cache.

    Attributes:
        path: its directory.
        ids: ids of the snippets that have vectors, in storage order (longest code first;
            skipped ones are absent).
        lengths: int64 (len(ids),), tokens per stored snippet.
        skipped: ids the model could not take whole (too long, or a token without subwords).
        n_states: hidden-states layers stored (n_layers + 1; 0 = embeddings).
        hidden: vector width.
        model: the model's provenance (`ModelInfo.as_dict()`).
    """

    path: Path
    ids: tuple[str, ...]
    lengths: np.ndarray
    skipped: tuple[str, ...]
    n_states: int
    hidden: int
    model: dict

    @property
    def n_tokens(self) -> int:
        return int(self.lengths.sum())

    def layer(self, layer: int) -> np.ndarray:
        """float16 (n_tokens, hidden), read-only memory map of `hidden_states[layer]`."""
        if not 0 <= layer < self.n_states:
            raise InputError(f"layer {layer} is not in 0..{self.n_states - 1}")
        if self.n_tokens == 0:
            return np.zeros((0, self.hidden), np.float16)
        return np.memmap(_layer_file(self.path, layer), dtype=np.float16, mode="r",
                         shape=(self.n_tokens, self.hidden))

    @classmethod
    def open(cls, path: str | os.PathLike) -> VectorCache:
        path = Path(path)
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT_VERSION:
            raise InputError(f"{path} is not a vector cache of format {FORMAT_VERSION}")
        return cls(
            path=path,
            ids=tuple(meta["ids"]),
            lengths=np.asarray(meta["lengths"], dtype=np.int64),
            skipped=tuple(meta["skipped"]),
            n_states=int(meta["n_states"]),
            hidden=int(meta["hidden"]),
            model=meta["model"],
        )


def fingerprint(items: Sequence[CacheItem], extractor: Extractor, model_label: str | None = None) -> str:
    """sha256 over codeprobe's source, the model's identity and every item's id, code and token
    spans."""
    h = hashlib.sha256()
    info = extractor.info
    h.update(json.dumps([FORMAT_VERSION, source_hash(), info.as_dict(), extractor.max_subwords,
                         model_label]).encode())
    for item in items:
        h.update(item.id.encode() + b"\0" + item.code.encode() + b"\0")
        h.update(np.asarray(item.token_starts, np.int64).tobytes())
        h.update(np.asarray(item.token_ends, np.int64).tobytes())
    return h.hexdigest()


def cached_vectors(
    root: str | os.PathLike,
    items: Sequence[CacheItem],
    extractor: Extractor,
    *,
    model_label: str | None = None,
) -> VectorCache:
    """The cache of these items under this model: reopened if it exists, else built.

    Args:
        root: directory of caches; this one is `root/<fingerprint prefix>`, so the same model
            and snippets always find their cache again and anything else gets a new one.
        items: the snippets, with their code tokens' spans.
        extractor: an `Extractor` with `vectors=True` (its length policy should be "skip":
            AST-Probe needs every token of a snippet).
        model_label: recorded with the model (e.g. "random weights"); part of the fingerprint.
    """
    key = fingerprint(items, extractor, model_label)
    path = Path(root) / key[:24]
    if _complete(path, key):
        return VectorCache.open(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if not _complete(path, key):  # another process may have built it while we waited
            _build(path, items, extractor, key, model_label)
    return VectorCache.open(path)


def _complete(path: Path, key: str) -> bool:
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return meta.get("format") == FORMAT_VERSION and meta.get("fingerprint") == key


def _build(path: Path, items: Sequence[CacheItem], extractor: Extractor, key: str,
           model_label: str | None) -> None:
    """Encode `items` into a temporary directory beside `path`, then rename it into place."""
    if not extractor.vectors:
        raise InputError("the extractor must compute vectors")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        _encode(tmp, items, extractor, key, model_label)
        if path.exists():  # a stale or interrupted cache under this name: replace it whole
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _encode(path: Path, items: Sequence[CacheItem], extractor: Extractor, key: str,
            model_label: str | None) -> None:
    info = extractor.info
    n_states, hidden = info.n_layers + 1, info.hidden_size
    capacity = int(sum(len(it.token_starts) for it in items))
    files = [open(_layer_file(path, layer), "wb") for layer in range(n_states)]
    ids, lengths, skipped = [], [], []
    # Longest first by characters: batches of similar lengths waste little on padding, and the
    # cache's order (which `ids` records) need not be the input order.
    ordered = sorted(items, key=lambda it: -len(it.code))
    try:
        snippets = (Snippet(it.id, it.code, np.asarray(it.token_starts, np.int64),
                            np.asarray(it.token_ends, np.int64)) for it in ordered)
        for item, result in progress(zip(ordered, extractor.extract(snippets)), total=len(ordered),
                                     desc="extracting vectors", unit="snippet"):
            n = len(item.token_starts)
            if result.status != "ok" or result.vectors is None or result.tokens.shape[0] != n:
                skipped.append(item.id)
                continue
            vectors = result.vectors.astype(np.float16)
            if not np.isfinite(vectors).all():
                raise InputError(
                    f"snippet {item.id}: hidden states exceed the float16 range of the cache"
                )
            for layer in range(n_states):
                files[layer].write(np.ascontiguousarray(vectors[layer]).tobytes())
            ids.append(item.id)
            lengths.append(n)
    finally:
        for f in files:
            f.close()
    log.info("cached %d of %d snippets' vectors (%d of at most %d tokens) in %s",
             len(ids), len(items), sum(lengths), capacity, path)
    model = dict(info.as_dict())
    if model_label:
        model["label"] = model_label
    meta = {
        "format": FORMAT_VERSION,
        "fingerprint": key,
        "n_states": n_states,
        "hidden": hidden,
        "dtype": "float16",
        "ids": ids,
        "lengths": lengths,
        "skipped": skipped,
        "model": model,
    }
    (path / "meta.json").write_text(json.dumps(meta), encoding="utf-8")


def _layer_file(path: Path, layer: int) -> Path:
    return path / f"layer_{layer:02d}.f16"
