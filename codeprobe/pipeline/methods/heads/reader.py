"""One shard's heads scores, read from a forward pass's per-head token attention: what both the
shared pass (CAT-probing's) and the method's own pass feed, and the file a shard step writes.

Relation codes are the shard's own (the order in which its snippets, in the data's order, first
show a relation), and the file keeps their names; the reduce moves every shard into one
vocabulary (`load_shards`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codeprobe.files import write_npz
from codeprobe.pipeline.runfolder import KEY_FIELD
from codeprobe.probes.cat import SkippedSample
from codeprobe.probes.heads import HeadsAccumulator, HeadsSample, on_kept_tokens
from codeprobe.syntax import relation_edges


def accumulator(settings: dict[str, Any]) -> HeadsAccumulator:
    """The heads scorer a shard's settings describe (`steps.shard_settings`)."""
    return HeadsAccumulator(
        ks=settings["ks"],
        causal=settings["causal"],
        max_offset=settings["max_offset"],
        keywords=settings["keywords"],
        random_state=settings["seed"],
    )


@dataclass(frozen=True)
class _Scored:
    names: tuple[str, ...]
    tables: Any  # SampleTables, codes into `names`
    dropped: int  # edges with a token the model did not read
    truncated: bool  # the model read the snippet cut at its input limit


@dataclass(frozen=True)
class _Skipped:
    sample_id: str
    reason: str


class ShardReader:
    """Scores each snippet's relation edges on its per-head token attention, as a forward pass
    streams them; `save` writes the shard's file.

    `first_pass(x)` takes what `CATProbe.inputs` yields (per-head attention: `per_head=True`)
    and runs on worker threads; `add` folds the results in, in the data's order.
    """

    def __init__(self, settings: dict[str, Any], language: str):
        self.language = language
        self.acc = accumulator(settings)
        self.codes: dict[str, int] = {}
        self.skipped: list[_Skipped] = []
        self.dropped_edges = 0
        self.truncated = 0

    def first_pass(self, x: Any) -> _Scored | _Skipped:
        if isinstance(x, SkippedSample):  # the model read nothing of it
            return _Skipped(x.sample_id, x.reason)
        tokens = x.tokens
        edges = relation_edges(tokens)
        kept, keep = on_kept_tokens(edges, x.sample.positions, len(tokens))
        sample = HeadsSample(x.sample.sample_id, np.asarray(x.sample.attention), kept, x.labels)
        return _Scored(edges.names, self.acc.first_pass(sample), int((~keep).sum()), x.status == "truncated")

    def add(self, x: _Scored | _Skipped) -> None:
        if isinstance(x, _Skipped):
            self.skipped.append(x)
            return
        codes = np.asarray([self.codes.setdefault(name, len(self.codes)) for name in x.names], dtype=np.int64)
        self.acc.add(x.tables.relabelled(codes))
        self.dropped_edges += x.dropped
        self.truncated += x.truncated

    def save(self, path: str | Path, key: str) -> Path:
        """The shard's file: the scorer's arrays, its relation names, the skipped snippets and
        the dropped edges, recording `key`."""
        return write_npz(
            path,
            {
                **self.acc.to_arrays(),
                "relation_names": np.asarray(list(self.codes), dtype=np.str_).reshape(-1),
                "skipped_ids": np.asarray([s.sample_id for s in self.skipped], dtype=np.str_).reshape(-1),
                "skipped_reasons": np.asarray([s.reason for s in self.skipped], dtype=np.str_).reshape(-1),
                "dropped_edges": np.asarray(self.dropped_edges, dtype=np.int64),
                "truncated": np.asarray(self.truncated, dtype=np.int64),
                KEY_FIELD: np.asarray(key),
            },
        )


@dataclass(frozen=True)
class Shards:
    """Every shard of a dataset in one relation vocabulary.

    Attributes:
        scores: one accumulator of all snippets scored, in the data's order; relation code c is
            `names[c]`.
        names: the relation names, sorted.
        skipped: sample id -> why the model read nothing of it.
        dropped_edges: edges left out because a token of theirs was not read (the input limit).
        truncated: snippets the model read cut at its input limit.
    """

    scores: HeadsAccumulator
    names: tuple[str, ...]
    skipped: dict[str, str]
    dropped_edges: int
    truncated: int


def load_shards(paths: list[str | Path]) -> Shards:
    """The shards' files (`ShardReader.save`) merged in order, in one vocabulary."""
    parts = []
    for p in paths:
        with np.load(p, allow_pickle=False) as z:
            parts.append(dict(z))
    names = tuple(sorted({str(n) for z in parts for n in z["relation_names"]}))
    position = {n: i for i, n in enumerate(names)}
    merged: HeadsAccumulator | None = None
    skipped: dict[str, str] = {}
    dropped = truncated = 0
    for z in parts:
        codes = np.asarray([position[str(n)] for n in z["relation_names"]], dtype=np.int64)
        part = HeadsAccumulator.from_arrays(z).relabelled(codes)
        merged = part if merged is None else merged.merge(part)
        skipped.update(zip((str(s) for s in z["skipped_ids"]), (str(r) for r in z["skipped_reasons"])))
        dropped += int(z["dropped_edges"])
        truncated += int(z["truncated"])
    if merged is None:
        raise ValueError("no shard to load")
    return Shards(merged, names, skipped, dropped, truncated)
