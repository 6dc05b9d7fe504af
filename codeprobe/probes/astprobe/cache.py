"""Hidden-state cache: run the frozen model once, keep the pooled token hidden states of the
hidden states a run asks for on disk.

The reference re-ran the language model on every batch of every epoch; here the model runs once
per snippet, and each hidden state (0 = embeddings, h = output of the h-th transformer layer)
goes to its own raw float16 file, memory-mapped when read. A sweep over hidden states, a rank
sweep or a rerun then only reads the hidden state it needs. Only the hidden states asked for
(`cached_hidden_states(hidden_states=)`, e.g. the `astprobe.hidden_states` of a run) are
written: the cache's disk size grows with them, not with the model's depth. A cache that holds
every hidden state asked for is reopened (a rank sweep at one hidden state reads the sweep's
cache); one that lacks some is built again.

Layout of a cache directory:
    meta.json                 model provenance, snippet ids, their digests, tokens per snippet,
                              fingerprint
    hidden_state_00.f16 ...   (total tokens, hidden) float16, C order; 00 = embeddings; one file
                              per stored hidden state (meta.json's `indices`)

Format 4 renamed format 3's `layer_00.f16` files; a cache of another format is rebuilt (the
fingerprint holds codeprobe's source, so any other codeprobe rebuilds it anyway).

What a cache holds per snippet is a `codeprobe.model.ModelInput` (the text the model reads and
the spans its hidden states are pooled over), keyed by its `digest`.

One forward pass for two probes: a cache may be built from other caches of the same model (a
"store" that CAT-probing's pass wrote with `write_store`), copying the hidden states of every
snippet they hold (same text, same token spans, read whole) and running the model only on the
rest.

Concurrency: a cache is built in a private temporary directory (`codeprobe.files.temporary_dir`,
a name `remove_stale_temporaries` recognises once its writer died) and renamed into place once
complete, under a file lock (`filelock`), so two processes asking for the same cache build it
once, and a reader never sees a half-written one; files are never rewritten in place. The
temporary directory is removed on any error; a full disk is a `DiskFullError` naming the folder
and about how much more the cache needed.

Integrity: meta.json records each hidden-state file's size and crc32, computed as its bytes are
written (`files`), and has its own record beside it (`codeprobe.files.check`). A cache is reused
only when every file matches (`verified`: read once per process per (path, size, mtime)); a
damaged cache is logged as a WARNING naming the file and built again, a damaged store is ignored
(`reusable`: its hidden states are computed again). A cache or store without these records (an
older codeprobe's) is not reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
from filelock import FileLock

from codeprobe.errors import InputError
from codeprobe.files import (
    check,
    disk_full,
    is_disk_full,
    matches,
    remember,
    remove_stale_temporaries,
    temporary_dir,
    write_json,
)
from codeprobe.model import Extractor, ModelInput
from codeprobe.progress import progress
from codeprobe.provenance import source_hash

log = logging.getLogger("codeprobe.astprobe")

FORMAT_VERSION = 4


def default_cache_dir() -> Path:
    """Where token hidden states are cached: $CODEPROBE_CACHE_DIR, else
    ~/.cache/codeprobe/astprobe."""
    env = os.environ.get("CODEPROBE_CACHE_DIR")
    return Path(env) / "astprobe" if env else Path.home() / ".cache" / "codeprobe" / "astprobe"


@dataclass(frozen=True)
class HiddenStateCache:
    """An opened cache.

    Attributes:
        path: its directory.
        ids: ids of the snippets that have hidden states, in storage order (longest code first;
            skipped ones are absent).
        lengths: int64 (len(ids),), tokens per stored snippet.
        skipped: ids the model could not take whole (too long, or a token without subwords).
        n_states: hidden states of the model (n_layers + 1; 0 = embeddings).
        hidden: the model's hidden size.
        model: the model's provenance (`ModelInfo.as_dict()`).
        digests: the stored snippets' `ModelInput.digest`, in storage order.
        reused: how many of them were copied from another cache (`cached_hidden_states(reuse=)`)
            rather than computed when this one was built.
        indices: the hidden states stored (empty: all `n_states`, as an older cache has them).
    """

    path: Path
    ids: tuple[str, ...]
    lengths: np.ndarray
    skipped: tuple[str, ...]
    n_states: int
    hidden: int
    model: dict
    digests: tuple[str, ...] = ()
    reused: int = 0
    indices: tuple[int, ...] = ()

    @property
    def stored(self) -> tuple[int, ...]:
        """The hidden states this cache holds (0 = embeddings)."""
        return self.indices or tuple(range(self.n_states))

    @property
    def n_tokens(self) -> int:
        return int(self.lengths.sum())

    def rows(self) -> dict[str, slice]:
        """digest -> the snippet's rows in every hidden state's file."""
        ends = np.cumsum(self.lengths)
        return {d: slice(int(e - n), int(e)) for d, e, n in zip(self.digests, ends, self.lengths)}

    def hidden_state(self, index: int) -> np.ndarray:
        """float16 (n_tokens, hidden), read-only memory map of hidden state `index` (the
        model's `hidden_states[index]`, 0 = embeddings)."""
        if not 0 <= index < self.n_states:
            raise InputError(f"hidden state {index} is not in 0..{self.n_states - 1}")
        if index not in self.stored:
            raise InputError(f"hidden state {index} is not stored in {self.path} (it holds {list(self.stored)})")
        if self.n_tokens == 0:
            return np.zeros((0, self.hidden), np.float16)
        return np.memmap(
            _hidden_state_file(self.path, index), dtype=np.float16, mode="r", shape=(self.n_tokens, self.hidden)
        )

    @classmethod
    def open(cls, path: str | os.PathLike) -> HiddenStateCache:
        path = Path(path)
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT_VERSION:
            raise InputError(f"{path} is not a hidden-state cache of format {FORMAT_VERSION}")
        return cls(
            path=path,
            ids=tuple(meta["ids"]),
            lengths=np.asarray(meta["lengths"], dtype=np.int64),
            skipped=tuple(meta["skipped"]),
            n_states=int(meta["n_states"]),
            hidden=int(meta["hidden"]),
            model=meta["model"],
            digests=tuple(meta["digests"]),
            reused=int(meta.get("reused", 0)),
            indices=tuple(meta.get("indices", ())),
        )


def fingerprint(items: Sequence[ModelInput], extractor: Extractor, model_label: str | None = None) -> str:
    """sha256 over codeprobe's source, the model's identity and every item's id, code and token
    spans."""
    h = hashlib.sha256()
    info = extractor.info
    h.update(json.dumps([FORMAT_VERSION, source_hash(), info.as_dict(), extractor.max_subwords, model_label]).encode())
    for item in items:
        h.update(item.id.encode() + b"\0" + item.digest.encode())
    return h.hexdigest()


def cached_hidden_states(
    root: str | os.PathLike,
    items: Sequence[ModelInput],
    extractor: Extractor,
    *,
    model_label: str | None = None,
    reuse: Sequence[HiddenStateCache] = (),
    hidden_states: Sequence[int] | None = None,
) -> HiddenStateCache:
    """The cache of these items under this model: reopened if it exists, else built.

    Args:
        root: directory of caches; this one is `root/<fingerprint prefix>`, so the same model
            and snippets always find their cache again and anything else gets a new one.
        items: the snippets as the model reads them (string ids), with the spans of the tokens
            their hidden states are pooled over (`ModelInput.hidden_state_spans`).
        extractor: an `Extractor` with `hidden_states=True` (its length policy should be "skip":
            AST-Probe needs every token of a snippet).
        model_label: recorded with the model (e.g. "random weights"); part of the fingerprint.
        reuse: caches or stores of the same model (unlabelled) whose hidden states of the same items
            are copied instead of computed again (equal to float16 rounding: only the batch
            padding differs); a store of another model is ignored.
        hidden_states: the hidden states to keep (0 = embeddings; None: all n_layers + 1).

    Raises:
        InputError: a hidden state the model does not have.
    """
    n_states = extractor.info.n_layers + 1
    wanted = tuple(range(n_states)) if hidden_states is None else tuple(sorted(set(hidden_states)))
    if not wanted or not all(0 <= h < n_states for h in wanted):
        raise InputError(f"hidden states {list(wanted)} are not a non-empty subset of 0..{n_states - 1}")
    key = fingerprint(items, extractor, model_label)
    path = Path(root) / key[:24]
    if _complete(path, key, wanted):
        return HiddenStateCache.open(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if not _complete(path, key, wanted):  # another process may have built it while we waited
            remove_stale_temporaries(path.parent)  # a killed build's: only the lock's holder writes here
            _build(path, items, extractor, key, model_label, reuse, wanted)
    return HiddenStateCache.open(path)


def _complete(path: Path, key: str, wanted: Sequence[int]) -> bool:
    """Whether `path` is this key's cache, as written, holding every hidden state of `wanted`."""
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if meta.get("format") != FORMAT_VERSION or meta.get("fingerprint") != key:
        return False
    stored = meta.get("indices") or range(int(meta["n_states"]))
    return set(wanted) <= set(stored) and verified(path)


def verified(path: str | os.PathLike) -> bool:
    """Whether the cache or store `path` is as written: its meta.json matches its record and
    every hidden-state file the size and checksum meta.json records (`codeprobe.files.matches`,
    memoised per file). A damaged one is logged as a WARNING naming the file."""
    path = Path(path)
    meta_file = path / "meta.json"
    state = check(meta_file)  # warns itself when damaged
    if state != "ok":
        return False
    records = json.loads(meta_file.read_text(encoding="utf-8")).get("files")
    if not isinstance(records, dict):
        return False
    for name, record in records.items():
        if not matches(path / name, record):
            log.warning(
                "%s is damaged (its size or checksum differs from those recorded when it was written): "
                "not used, its hidden states computed again",
                path / name,
            )
            return False
    return True


def reusable(paths: Iterable[str | os.PathLike]) -> list[HiddenStateCache]:
    """The stores (or caches) of `paths` that exist and are as written (`verified`), opened; a
    damaged one is skipped with a warning naming it (its hidden states are computed again)."""
    return [HiddenStateCache.open(p) for p in paths if Path(p).is_dir() and verified(p)]


def _build(
    path: Path,
    items: Sequence[ModelInput],
    extractor: Extractor,
    key: str,
    model_label: str | None,
    reuse: Sequence[HiddenStateCache],
    wanted: Sequence[int],
) -> None:
    """Encode hidden states `wanted` of `items` into a temporary directory beside `path`, then
    rename it into place."""
    if not extractor.hidden_states:
        raise InputError("the extractor must compute hidden states")
    model = dict(extractor.info.as_dict())
    if model_label:
        model["label"] = model_label
    model = json.loads(json.dumps(model))  # as a store records it
    n_tokens = sum(len(item.hidden_state_spans[0]) for item in items)  # at most: skipped ones are not written
    expected = n_tokens * extractor.info.hidden_size * 2 * len(wanted)
    with _Writer(path, extractor.info.n_layers + 1, extractor.info.hidden_size, expected, indices=wanted) as writer:
        # a store of this model that lacks a hidden state asked for cannot stand in for the model
        stores = [c for c in reuse if c.model == model and set(wanted) <= set(c.stored)]
        _encode(writer, items, extractor, stores)
        writer.meta.update(fingerprint=key, model=model)


class _Writer:
    """Writes a cache into a private temporary directory beside `path` and, when its block
    ends without an error, renames it into place (replacing a stale one whole). The temporary
    directory is removed on any error; a full disk raises `DiskFullError`.

    Args:
        n_states: hidden states of the model (n_layers + 1).
        expected: about how many bytes the cache will hold (for `DiskFullError`'s message), or
            None; `expected_items`: else, how many snippets it will hold (the bytes are
            extrapolated from those written).
        indices: the hidden states written, each to a file of its own (None: all `n_states`).
    """

    def __init__(
        self,
        path: Path,
        n_states: int,
        hidden: int,
        expected: int | None = None,
        expected_items: int | None = None,
        indices: Sequence[int] | None = None,
    ) -> None:
        self.path, self.n_states, self.hidden = path, n_states, hidden
        self.indices = tuple(range(n_states)) if indices is None else tuple(indices)
        self.expected, self.expected_items = expected, expected_items
        self.ids: list[str] = []
        self.lengths: list[int] = []
        self.digests: list[str] = []
        self.skipped: list[str] = []
        self.meta: dict = {}
        self.sizes = [0] * len(self.indices)
        self.crcs = [0] * len(self.indices)

    def __enter__(self) -> _Writer:
        try:
            self.tmp = temporary_dir(self.path)
        except OSError as err:
            self._raise_if_full(err)
            raise
        self.files = []
        try:
            self.files = [open(_hidden_state_file(self.tmp, index), "wb") for index in self.indices]
        except BaseException as err:
            self._discard()
            self._raise_if_full(err)
            raise
        return self

    def add(self, item: ModelInput, hidden_states: np.ndarray | Sequence[np.ndarray] | dict[int, np.ndarray]) -> None:
        """hidden_states: (n_states, n, hidden), or an (n, hidden) array per hidden state (a
        sequence of all, or a dict holding at least those written); only `indices` are kept."""
        states = [np.asarray(hidden_states[index], np.float16) for index in self.indices]
        for state in states:
            if not np.isfinite(state).all():
                raise InputError(f"snippet {item.id}: hidden states exceed the float16 range of the cache")
        for index, (f, state) in enumerate(zip(self.files, states)):
            data = np.ascontiguousarray(state).tobytes()
            try:
                f.write(data)
            except OSError as err:
                self._raise_if_full(err)
                raise
            self.crcs[index] = zlib.crc32(data, self.crcs[index])
            self.sizes[index] += len(data)
        self.ids.append(item.id)
        self.lengths.append(int(states[0].shape[0]))
        self.digests.append(item.digest)

    def _raise_if_full(self, err: BaseException) -> None:
        if not is_disk_full(err):
            return
        written = sum(self.sizes)
        needed = self.expected
        if needed is None and self.expected_items and self.ids:
            needed = written * self.expected_items // len(self.ids)
        raise disk_full(self.path.parent, None if needed is None else needed - written, written) from err

    def _discard(self) -> None:
        for f in self.files:
            try:
                f.close()
            except OSError:
                pass  # a full disk again: the folder goes anyway
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if kind is None:
                try:
                    for f in self.files:
                        f.close()  # flushes: a full disk may show here
                except OSError as err:
                    self._raise_if_full(err)
                    raise
                names = [_hidden_state_file(self.tmp, index).name for index in self.indices]
                meta = {
                    "format": FORMAT_VERSION,
                    "n_states": self.n_states,
                    "indices": list(self.indices),
                    "hidden": self.hidden,
                    "dtype": "float16",
                    "ids": self.ids,
                    "lengths": self.lengths,
                    "digests": self.digests,
                    "skipped": self.skipped,
                    "files": {
                        name: {"size": size, "crc32": f"{crc:08x}"}
                        for name, size, crc in zip(names, self.sizes, self.crcs)
                    },
                    **self.meta,
                }
                write_json(self.tmp / "meta.json", meta, record=True)
                if self.path.exists():
                    shutil.rmtree(self.path)
                os.replace(self.tmp, self.path)
                for name, record in meta["files"].items():  # verified as written: not read again here
                    remember(self.path / name, record)
        finally:
            self._discard()


def write_store(
    path: str | os.PathLike,
    entries: Iterable[tuple[ModelInput, np.ndarray]],
    model: dict,
    key: str,
    expected_items: int | None = None,
) -> Path:
    """Write the hidden states another pass computed (e.g. CAT-probing's,
    `CATProbe(hidden_state_tokens=)`) as a cache that `cached_hidden_states(reuse=...)` copies
    from.

    Args:
        path: the store's directory (replaced whole, atomically).
        entries: (item, float (n_states, n, hidden) hidden states over the item's n token spans,
            `ModelInput.hidden_state_spans`), of snippets the model read whole.
        model: the model's provenance (`ModelInfo.as_dict()`); only caches of this model reuse it.
        key: recorded as the store's fingerprint.
        expected_items: about how many entries will come (for a full disk's message), or None.
    """
    entries = iter(entries)
    first = next(entries, None)
    n_states, hidden = (0, 0) if first is None else (first[1].shape[0], first[1].shape[2])
    with _Writer(Path(path), n_states, hidden, expected_items=expected_items) as writer:
        for item, hidden_states in chain([first] if first else [], entries):
            writer.add(item, hidden_states)
        writer.meta.update(fingerprint=key, model=model)
    return Path(path)


def _encode(
    writer: _Writer, items: Sequence[ModelInput], extractor: Extractor, reuse: Sequence[HiddenStateCache]
) -> None:
    found = {}
    for cache in reuse:
        for digest, rows in cache.rows().items():
            found.setdefault(digest, (cache, rows))
    # Longest first by characters: batches of similar lengths waste little on padding, and the
    # cache's order (which `ids` records) need not be the input order.
    ordered = sorted(items, key=lambda it: -len(it.code))
    todo = [it for it in ordered if it.digest not in found]
    results = extractor.extract(todo)
    states = {}  # a reused cache's memory-mapped hidden states, opened once
    for item in progress(ordered, total=len(ordered), desc="extracting hidden states", unit="snippet"):
        n = len(item.hidden_state_spans[0])
        if item.digest in found:
            cache, rows = found[item.digest]
            if id(cache) not in states:
                states[id(cache)] = {index: cache.hidden_state(index) for index in writer.indices}
            writer.add(item, {index: state[rows] for index, state in states[id(cache)].items()})
            continue
        result = next(results)
        if result.status != "ok" or result.hidden_states is None or result.hidden_state_tokens.shape[0] != n:
            writer.skipped.append(item.id)
            continue
        writer.add(item, result.hidden_states)
    writer.meta["reused"] = len(ordered) - len(todo)
    log.info(
        "cached %d of %d snippets' hidden states (%d of them copied from an earlier pass) in %s",
        len(writer.ids),
        len(items),
        writer.meta["reused"],
        writer.path,
    )


def _hidden_state_file(path: Path, index: int) -> Path:
    return path / f"hidden_state_{index:02d}.f16"
