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
from contextlib import contextmanager
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from codeprobe.pipeline.config import DEFAULT_MODEL
from codeprobe.pipeline.views import write_head_scores

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


def model_arg(model: str) -> str | None:
    """The model layer's name for a config model name (None = the packaged default)."""
    return None if model == DEFAULT_MODEL else model


@lru_cache(maxsize=4)
def loaded_model(model: str, device: str | None):
    """One LoadedModel per (model, device) per process: shards reuse it instead of reloading."""
    from codeprobe.model import load_model

    return load_model(model_arg(model), device=device)


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
    return json.loads(Path(data_dir, "splits.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------- data


def prepare_data(dataset: str, language: str, n_snippets: int, seed: int, out_dir: str) -> str:
    """Load, filter (parse errors, duplicates, size), sample and split one dataset in one
    language; write snippets.jsonl, splits.json and report.json (the skip counts) to `out_dir`.

    Returns:
        `out_dir`.
    """
    from codeprobe.probes.astprobe.runner import load_splits

    parts, report = load_splits(dataset, language, n_snippets=n_snippets, seed=seed)
    out = Path(out_dir)
    chosen = [*parts.train, *parts.valid, *parts.test]
    write_atomic(out / "snippets.jsonl", "".join(json.dumps(asdict(s)) + "\n" for s in chosen))
    write_json(out / "report.json", report.to_dict())
    write_json(out / "splits.json", {name: [s.id for s in getattr(parts, name)] for name in ("train", "valid", "test")})
    return str(out)


# ---------------------------------------------------------------- CAT-probing


def cat_probe(settings: dict[str, Any]):
    from codeprobe.probes.cat.probe import CATProbe

    return CATProbe(
        types=settings["types"],
        distance=settings["distance"],
        quantile=settings["quantile"],
        random_state=settings["seed"],
        max_subwords=settings["max_subwords"],
        batch_size=settings["batch_size"],
        per_head=settings.get("per_head", False),
    )


def cat_shard(model: str, language: str, data_dir: str, shard: int, shard_size: int,
              settings: dict[str, Any], out_path: str) -> str:
    """Pass 1 of CAT-probing on one shard: parse, one forward pass per batch, distances.

    Writes an .npz of the shard's samples (flat arrays, no pickle) plus their skip reasons.
    """
    from codeprobe.probes.cat.dataset import SkippedSample

    if Path(out_path).exists():  # written atomically (heads first) by a run killed before Prefect recorded it
        return out_path
    snippets = read_snippets(data_dir)[shard * shard_size : (shard + 1) * shard_size]
    probe = cat_probe(settings)
    with device_lock(settings.get("device")):
        extractor = probe.extractor(loaded_model(model, settings.get("device")))
        inputs = list(probe.inputs(snippets, extractor, language=language))
    samples = [x.sample for x in inputs if not isinstance(x, SkippedSample)]
    samples = write_head_scores(samples, language, settings, out_path)  # per-head rows; shard keeps the mean
    skipped = [x for x in inputs if isinstance(x, SkippedSample)]
    arrays = shard_arrays(samples, skipped)
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return str(path)


def shard_arrays(samples: list, skipped: list) -> dict[str, np.ndarray]:
    """CAT samples as flat arrays for an .npz (no pickle): per-sample sizes index the
    concatenated types, positions, distances and attentions."""
    def flat(arrays, dtype):
        return np.concatenate([np.asarray(a, dtype).ravel() for a in arrays]) if arrays else np.zeros(0, dtype)

    return {
        "ids": np.array([s.sample_id for s in samples], dtype=str),
        "sizes": np.array([len(s.types) for s in samples], dtype=np.int64),
        "types": np.array([t for s in samples for t in s.types], dtype=str),
        "positions": flat([s.positions for s in samples], np.int64),
        "distance": flat([s.distance for s in samples], np.int32),
        "attention": flat([s.attention for s in samples], np.float32),
        "attention_shape": np.array(samples[0].attention.shape[:-2] if samples else (), dtype=np.int64),
        "skipped_ids": np.array([s.sample_id for s in skipped], dtype=str),
        "skipped_reasons": np.array([s.reason for s in skipped], dtype=str),
    }


def load_cat_shard(path: str):
    """The samples (and skipped samples) a `cat_shard` task wrote, in their original order."""
    from codeprobe.probes.cat.dataset import CATSample, SkippedSample

    with np.load(path, allow_pickle=False) as npz:
        z = {k: npz[k] for k in npz.files}  # NpzFile re-reads an array on every access
        lead = tuple(int(x) for x in z["attention_shape"])
        a_off = d_off = t_off = 0
        for sample_id, n in zip(z["ids"].tolist(), z["sizes"].tolist()):
            a_size = int(np.prod(lead)) * n * n
            yield CATSample(
                sample_id,
                tuple(z["types"][t_off : t_off + n].tolist()),
                z["positions"][t_off : t_off + n],
                z["distance"][d_off : d_off + n * n].reshape(n, n),
                z["attention"][a_off : a_off + a_size].reshape(*lead, n, n),
            )
            t_off += n
            d_off += n * n
            a_off += a_size
        for sample_id, reason in zip(z["skipped_ids"].tolist(), z["skipped_reasons"].tolist()):
            yield SkippedSample(sample_id, reason)


def cat_reduce(model: str, language: str, shard_paths: list[str], settings: dict[str, Any], out_dir: str) -> str:
    """Pass 2 of CAT-probing over all shards: type rates, strategy, scores and baselines.

    Writes samples.parquet (per sample and layer), layers.parquet (per-layer summary),
    rates.parquet (the frequent-type table) and summary.json; returns the summary's path.
    """
    import pyarrow.parquet as pq

    from codeprobe.probes.cat.dataset import score_samples

    extractor_info = loaded_model(model, settings.get("device")).info
    result = score_samples(
        (sample for path in shard_paths for sample in load_cat_shard(path)),
        language=language,
        types=settings["types"],
        quantile=settings["quantile"],
        random_state=settings["seed"],
        settings={
            "distance": settings["distance"],
            "max_subwords": settings["max_subwords"],
            "model": extractor_info.as_dict(),
            "grammar": settings["grammar"],
            "versions": settings["versions"],
        },
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = result.metadata()
    result.samples.to_parquet(out / "samples.parquet", meta)
    pq.write_table(result.summary.to_arrow(meta), out / "layers.parquet")
    pq.write_table(result.rates.to_arrow(), out / "rates.parquet")
    summary = result.summary.columns()
    layers = [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in zip(summary, row)}
        for row in zip(*summary.values())
    ]
    return str(
        write_json(
            out / "summary.json",
            {"method": "CAT-probing", "language": language, "model": extractor_info.as_dict(),
             "layers": layers, "settings": meta},
        )
    )


# ---------------------------------------------------------------- AST-Probe


def astprobe_point(model: str, language: str, data_dir: str, layer: int, rank: int, random_weights: bool,
                   settings: dict[str, Any], out_path: str) -> str:
    """Fit one AST-Probe at (layer, rank) on the train split, early-stopped on valid, scored on
    test; write its sweep point as JSON (and the probe itself next to it, for the real model).

    Token vectors come from a per-layer fp16 cache under the run folder, so only the first
    point per (model, language, dataset) runs the model.
    """
    from codeprobe.probes.astprobe.data import ensure_nonempty, prepare_split
    from codeprobe.probes.astprobe.sweeps import sweep
    from codeprobe.probes.astprobe.training import TrainConfig

    splits = read_splits(data_dir)
    device = settings.get("device")
    with device_lock(device):
        loaded = loaded_model(model, device)
        label = None
        if random_weights:
            loaded = _random_model(model, device, settings["seed"])
            label = loaded.info.name
        from codeprobe.model import Extractor

        extractor = Extractor(loaded, batch_size=settings["batch_size"], attention=False, vectors=True,
                              length_policy="skip")
        by_id = {snippet.id: snippet for snippet in read_snippets(data_dir)}
        prepared = [
            prepare_split([by_id[i] for i in splits[name]], language, extractor,
                          Path(settings["cache_dir"]), model_label=label)
            for name in ("train", "valid", "test")
        ]
        ensure_nonempty(prepared, ["training", "validation", "test"])
        config = TrainConfig(max_epochs=settings["max_epochs"], patience=settings["patience"])
        out = Path(out_path)
        save_dir = None if random_weights else out.parent / "probes"
        point = sweep(*prepared, [(layer, rank)], config=config, random_state=settings["seed"],
                      save_dir=save_dir, model=model_arg(model))[0]
    return str(write_json(out, {**point.as_dict(), "random_weights": random_weights,
                                "model": (loaded.info.as_dict())}))


@lru_cache(maxsize=2)
def _random_model(model: str, device: str | None, seed: int):
    from codeprobe.probes.astprobe.sweeps import random_weights

    return random_weights(loaded_model(model, device), seed)


def read_json(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))
