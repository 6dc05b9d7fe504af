"""The probing pipeline's tasks. Each takes small keys and paths and writes its output to a file
under the run folder, atomically, and returns that file's path.

That makes them cheap to cache with Prefect (inputs + task source) and safe to resume: a task
killed half way leaves no output file, and a finished shard is never redone nor counted twice,
because the reduce steps read exactly one file per shard.
"""

from __future__ import annotations

import json
import os
import threading
import zipfile
from collections import deque
from contextlib import contextmanager
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from codeprobe.pipeline.config import DEFAULT_MODEL
from codeprobe.pipeline.views import heads_path, write_head_rows
from codeprobe.prefetch import threaded_map

KEY_FIELD = "_key"  # the step key recorded inside each output (see `is_done`)
SPLITS_FILE = "splits.json"

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


# ---------------------------------------------------------------- helpers


def write_atomic(path: Path, data: bytes | str) -> Path:
    """Write `data` to `path` via a temporary file and a rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    os.replace(tmp, path)
    return path


def write_json(path: Path, obj: Any) -> Path:
    return write_atomic(path, json.dumps(obj, indent=1, sort_keys=True, default=str))


def read_json(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def recorded_key(path: str | Path) -> str | None:
    """The step key a finished output records (`KEY_FIELD` inside the .json or .npz itself, so
    that the output and its key land on disk in one rename); None if absent or unreadable."""
    path = Path(path)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return str(z[KEY_FIELD]) if KEY_FIELD in z.files else None
        return read_json(path).get(KEY_FIELD)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None


def is_done(path: str | Path, key: str) -> bool:
    """A finished, verified output is the record that a step is done, whatever state an
    orchestrator's own result record was left in (a kill -9 can land between the two)."""
    return recorded_key(path) == key


def model_arg(model: str) -> str | None:
    """The model layer's name for a config model name (None = the packaged default)."""
    return None if model == DEFAULT_MODEL else model


def loaded_model(model: str, device: str | None, dtype: str = "float32"):
    """One LoadedModel per (model, device, dtype) per process, loaded again when the model's
    files change (`codeprobe.model.shared_model`): shards reuse it instead of reloading."""
    from codeprobe.model import shared_model

    return shared_model(model_arg(model), device=device, dtype=dtype)


def settings_model(model: str, settings: dict[str, Any]):
    """The LoadedModel a step's settings name (their device and dtype)."""
    return loaded_model(model, settings.get("device"), settings.get("dtype", "float32"))


@contextmanager
def device_lock(device: str | None):
    """Serialise model work per device: one forward pass or probe fit at a time per device.

    Inside a Dask worker the lock is a cluster-wide `distributed.Lock`; otherwise a process lock
    (the thread task runner).
    """
    name = f"codeprobe-device-{device or 'auto'}"
    try:
        from distributed import Lock, get_worker

        get_worker()
        lock = Lock(name)
    except (ImportError, ValueError):
        with _LOCKS_GUARD:
            lock = _LOCKS.setdefault(name, threading.Lock())
    with lock:
        yield


def read_snippets(data_dir: str) -> list:
    """The snippets a `prepare_data` task wrote, in its order (train, valid, test)."""
    from codeprobe.datasets import Snippet

    lines = Path(data_dir, "snippets.jsonl").read_text(encoding="utf-8").splitlines()
    return [Snippet(**json.loads(line)) for line in lines]


def read_splits(data_dir: str) -> dict[str, list[str]]:
    splits = read_json(Path(data_dir, SPLITS_FILE))
    return {name: splits[name] for name in ("train", "valid", "test")}


# ---------------------------------------------------------------- data


def prepare_data(dataset: str, language: str, n_snippets: int, seed: int, out_dir: str, key: str) -> str:
    """Load, filter (parse errors, duplicates, size), sample and split one dataset in one
    language; write snippets.jsonl, report.json (the skip counts) and, last, splits.json
    (which records `key`) to `out_dir`.

    Returns:
        `out_dir`.
    """
    from codeprobe.datasets import load_splits

    out = Path(out_dir)
    if is_done(out / SPLITS_FILE, key):
        return str(out)
    parts, report = load_splits(dataset, language, n_snippets=n_snippets, seed=seed)
    chosen = [*parts.train, *parts.valid, *parts.test]
    write_atomic(out / "snippets.jsonl", "".join(json.dumps(asdict(s)) + "\n" for s in chosen))
    write_json(out / "report.json", report.to_dict())
    write_json(out / SPLITS_FILE, {**{name: [s.id for s in getattr(parts, name)]
                                      for name in ("train", "valid", "test")}, KEY_FIELD: key})
    return str(out)


# ---------------------------------------------------------------- CAT-probing


def cat_probe(settings: dict[str, Any]):
    from functools import partial

    from codeprobe.probes.astprobe.tuples import tuple_tokens
    from codeprobe.probes.cat.probe import CATProbe

    shared = settings.get("vector_tokens")
    return CATProbe(
        types=settings["types"],
        distance=settings["distance"],
        quantile=settings["quantile"],
        random_state=settings["seed"],
        max_subwords=settings["max_subwords"],
        batch_size=settings["batch_size"],
        per_head=settings["per_head"] and settings["head_pooling"] == "mean",
        model_input=settings["model_input"],
        head_pooling=settings["head_pooling"],
        vector_tokens=None if shared is None else partial(tuple_tokens, **shared),
    )


def vector_store_path(shard_path: str | Path) -> Path:
    """Where a CAT shard keeps the AST-Probe token vectors its forward pass also computed."""
    return Path(shard_path).with_suffix(".vectors")


def cat_shard(model: str, language: str, data_dir: str, shard: int, shard_size: int,
              settings: dict[str, Any], out_path: str, key: str) -> str:
    """Pass 1 of CAT-probing on one shard: parse, one forward pass per batch, distances and,
    where the kept types are known up front (`paper`, `all`), the scores.

    Adds the shard's samples, in the data's order, to a `CATAccumulator` and saves it (flat
    arrays, no pickle) with `key` (`KEY_FIELD`); a shard whose file already records `key` is not
    recomputed. Under `paper` and `all` each sample is scored as the forward pass yields it, so
    the shard holds one window's attention at a time and its file keeps the head-mean rows and
    the type-rate table (per-head rows go to a file beside it, `heads_path`). Under `topk` the
    kept types come from the whole dataset's rates, so the file keeps every sample's inputs with
    head-mean attention for the reduce. With `settings["vector_tokens"]` the same forward pass
    also pools AST-Probe's token vectors of every snippet read whole, into a store beside the
    shard (`vector_store_path`) that the AST-Probe sweep copies from instead of running the
    model again.
    """
    from codeprobe.probes.astprobe.cache import CacheItem, write_store
    from codeprobe.probes.cat.dataset import SkippedSample
    from codeprobe.probes.cat.results import MEAN_HEAD
    from codeprobe.probes.cat.scorer import CATAccumulator

    if is_done(out_path, key):
        return out_path
    shard_snippets = read_snippets(data_dir)[shard * shard_size : (shard + 1) * shard_size]
    # Read shortest first, so that each length bucket of the extractor holds similar lengths
    # (less padding); the shard keeps the data's order.
    order = sorted(range(len(shard_snippets)), key=lambda i: len(shard_snippets[i].code))
    snippets = [shard_snippets[i] for i in order]
    probe = cat_probe(settings)
    scorer = CATAccumulator(language=language, types=settings["types"], quantile=settings["quantile"],
                            random_state=settings["seed"], head_rows=False)
    outcomes: list = []  # per snippet, in reading order: its first pass, or why it was skipped

    def outcome(x):  # on a worker thread
        return scorer.first_pass(x if isinstance(x, SkippedSample) else x.sample)

    def vector_entries():  # streamed: a shard never holds its hidden states, nor its attention
        for x, out in threaded_map(lambda x: (x, outcome(x)), probe.inputs(snippets, extractor, language=language)):
            outcomes.append(out)
            if getattr(x, "vectors", None) is not None:
                yield CacheItem(x.sample.sample_id, x.code, *x.vector_spans), x.vectors

    with device_lock(settings.get("device")):
        extractor = probe.extractor(settings_model(model, settings))
        if probe.vector_tokens is None:
            deque(vector_entries(), maxlen=0)  # no store to write: run the stream for its outcomes
        else:
            write_store(vector_store_path(out_path), vector_entries(), extractor.info.as_dict(), key)
    outcomes = [outcomes[k] for k in np.argsort(order, kind="stable")]
    for x in outcomes:
        scorer.add(x)
    rows = [x.rows for x in outcomes if getattr(x, "rows", None) is not None]  # scored up front, every head
    del outcomes  # under topk, the attention: the scorer keeps its own copy
    if rows and np.any(rows[0]["head"] != MEAN_HEAD):
        write_head_rows(rows, out_path)
    else:  # an earlier run's, with other settings, must not stay beside this shard
        heads_path(out_path).unlink(missing_ok=True)
    return str(scorer.save(out_path, **{KEY_FIELD: np.array(key)}))


def cat_reduce(model: str, language: str, shard_paths: list[str], settings: dict[str, Any], out_dir: str,
               key: str) -> str:
    """Pass 2 of CAT-probing over all shards: type rates, strategy, scores, baselines and their
    bootstrap intervals.

    Writes samples.parquet (per sample and layer), layers.parquet (per-layer summary),
    rates.parquet (the frequent-type table) and, last, summary.json (recording `key`); returns
    the summary's path.
    """
    import pyarrow.parquet as pq

    from codeprobe.probes.cat.scorer import CATAccumulator

    done = Path(out_dir) / "summary.json"
    if is_done(done, key):
        return str(done)

    extractor_info = settings_model(model, settings).info
    # The shards' accumulators, merged in shard order: under `paper` and `all` their rows and
    # rate tables add up; under `topk` their inputs are scored here, with the merged rates.
    scorer = CATAccumulator(language=language, types=settings["types"], quantile=settings["quantile"],
                            random_state=settings["seed"], head_rows=False)
    with scorer:
        for path in shard_paths:
            scorer.merge(CATAccumulator.load(path))
        result = scorer.result({
            "distance": settings["distance"],
            "max_subwords": settings["max_subwords"],
            "model": extractor_info.as_dict(),
            "grammar": settings["grammar"],
            "versions": settings["versions"],
        })
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = result.metadata()
    result.samples.to_parquet(out / "samples.parquet", meta)
    pq.write_table(result.summary.to_arrow(meta), out / "layers.parquet")
    pq.write_table(result.rates.to_arrow(), out / "rates.parquet")
    summary = result.summary
    layers = []
    for i in range(len(summary)):
        row = {name: _json_value(getattr(summary, name)[i]) for name in
               ("layer", "head", "n_used", "n_skipped", "score", "score_std", "random_baseline",
                "positional_baseline", "skip_reasons", "minus_positional", "minus_random")}
        for name in ("score_ci", "random_ci", "positional_ci", "minus_positional_ci", "minus_random_ci"):
            row[name] = [_json_value(x) for x in getattr(summary, name)[i]]
        layers.append(row)
    return str(write_json(done, {"method": "CAT-probing", "language": language,
                                 "model": extractor_info.as_dict(), "layers": layers, "settings": meta,
                                 KEY_FIELD: key}))


def _json_value(v):
    """numpy scalars to JSON values; NaN to None (JSON has no NaN)."""
    v = v.item() if hasattr(v, "item") else v
    return None if isinstance(v, float) and v != v else v


# ---------------------------------------------------------------- AST-Probe


def astprobe_sweep(model: str, language: str, data_dir: str, points: list[tuple[int, int]], weights: str,
                   settings: dict[str, Any], out_path: str, key: str) -> str:
    """Fit an AST-Probe at every (layer, rank) of `points` for every seed of `settings["seeds"]`
    on the train split, early-stopped on valid, and score each on valid (for selection) and on
    test (for reporting); write them as one JSON file recording `key`, and save the probes
    beside it (real weights only).

    Args:
        weights: "pretrained" (the model as loaded) or "random" (the same architecture with
            random weights, the paper's baseline).

    Token vectors come from a per-layer fp16 cache under the run folder, so the model runs once
    per (model, weights, snippet); with pretrained weights, the vectors CAT-probing's pass
    already computed (the stores in `settings["reuse"]`) are copied, not computed again.
    """
    from codeprobe.model import Extractor
    from codeprobe.probes.astprobe.cache import VectorCache
    from codeprobe.probes.astprobe.data import ensure_nonempty, prepare_split
    from codeprobe.probes.astprobe.sweeps import sweep

    if is_done(out_path, key):
        return out_path
    splits = read_splits(data_dir)
    device = settings.get("device")
    with device_lock(device):
        loaded = settings_model(model, settings)
        label = None
        if weights == "random":
            loaded = _random_model(model, device, settings.get("dtype", "float32"), settings["seed"])
            label = loaded.info.name
        extractor = Extractor(loaded, batch_size=settings["batch_size"], attention=False, vectors=True,
                              length_policy="skip")
        by_id = {snippet.id: snippet for snippet in read_snippets(data_dir)}
        reuse = [] if weights == "random" else [VectorCache.open(p) for p in settings.get("reuse", [])
                                                 if Path(p).is_dir()]
        prepared = [
            prepare_split([by_id[i] for i in splits[name]], language, extractor,
                          Path(settings["cache_dir"]), model_label=label, reuse=reuse,
                          **settings["preprocessing"])
            for name in ("train", "valid", "test")
        ]
        ensure_nonempty(prepared, ["training", "validation", "test"])
        out = Path(out_path)
        save_dir = out.parent / "probes" if weights == "pretrained" else None
        results = sweep(*prepared, points, config=train_config(settings), seeds=settings["seeds"],
                        save_dir=save_dir, model=model_arg(model))
    return str(write_json(out, {
        "weights": weights,
        "model": loaded.info.as_dict(),
        "test_ids": list(prepared[2].ids),
        "splits": {name: len(p) for name, p in zip(("train", "valid", "test"), prepared)},
        "dropped": {name: p.dropped for name, p in zip(("train", "valid", "test"), prepared)},
        "vectors_reused": sum(p.cache.reused for p in prepared),
        "points": [r.as_dict() for r in results],
        KEY_FIELD: key,
    }))


def train_config(settings: dict[str, Any]):
    """The probes' optimisation settings of a run."""
    from codeprobe.probes.astprobe.train_config import TrainConfig

    return TrainConfig(**settings["train"])


def _random_model(model: str, device: str | None, dtype: str, seed: int):
    return _random_copy(loaded_model(model, device, dtype), seed)


@lru_cache(maxsize=2)
def _random_copy(loaded, seed: int):
    """The random-weights copy of a LoadedModel (by identity: a model loaded again after its
    files changed gets a new copy, its embeddings from the new weights)."""
    from codeprobe.probes.astprobe.sweeps import random_weights

    return random_weights(loaded, seed)
