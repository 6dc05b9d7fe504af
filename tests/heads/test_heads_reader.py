"""The run's shard reader against `codeprobe heads` on each snippet alone: the same relations,
scorable edges and per-head hits, whether the snippets are read in batches (the run) or one at
a time (the command); and the shard file's round trip."""

from __future__ import annotations

import inspect
import textwrap
from collections import defaultdict

import numpy as np
import pytest
from astprobe.tiny_model import tiny_model, tiny_model_dir  # noqa: F401  (session fixtures)

from codeprobe.cli.heads import score_name, snippet_heads
from codeprobe.pipeline.methods.heads.reader import ShardReader, load_shards
from codeprobe.pipeline.methods.heads.steps import _probe, _read
from codeprobe.probes.heads import SCORES
from codeprobe.syntax import keywords


def _functions(n: int) -> list[tuple[str, str]]:
    """`n` functions of the standard library's `textwrap` and `shlex` (real code)."""
    import ast
    import shlex

    out = []
    for module in (textwrap, shlex):
        source = inspect.getsource(module)
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef):
                out.append((f"{module.__name__}.{node.name}", textwrap.dedent(ast.get_source_segment(source, node))))
    return out[:n]


SETTINGS = {
    "ks": [1, 3],
    "causal": False,
    "max_offset": 4,
    "keywords": list(keywords("python")),
    "seed": 0,
    "max_subwords": 128,  # some functions are cut: edges past the cut are dropped, both ways
    "allow_parse_errors": False,
    "extraction": {"batch_size": 4, "device": "cpu", "dtype": "float32", "shard_size": 8},
}


@pytest.fixture(scope="module")
def shard(tiny_model, tmp_path_factory):  # noqa: F811
    from types import SimpleNamespace

    snippets = [SimpleNamespace(id=i, code=c, language="python") for i, c in _functions(12)]
    reader = ShardReader(SETTINGS, "python")
    probe = _probe(SETTINGS)
    _read(reader, snippets, probe.extractor(tiny_model), "python", probe)
    path = reader.save(tmp_path_factory.mktemp("shard") / "shard-0000.npz", "a-key")
    return snippets, reader, path


def test_batched_shard_equals_the_command_on_each_snippet(shard, tiny_model):  # noqa: F811
    snippets, reader, _ = shard
    names = {code: name for name, code in reader.codes.items()}
    t = reader.acc.tables()
    n_layers, n_heads = reader.acc.shape
    ids = reader.acc.sample_ids
    assert len(ids) + len(reader.skipped) == len(snippets)
    for snippet in snippets:
        if snippet.id not in ids:
            continue  # skipped: the model read nothing of it (the command refuses it too)
        index = ids.index(snippet.id)
        obj, _ = snippet_heads(snippet.code, "python", model=tiny_model, ks=(1, 3), max_subwords=128)
        hits = defaultdict(lambda: np.zeros((len(SCORES), 2, n_layers, n_heads), dtype=np.int64))
        scorable = defaultdict(lambda: np.zeros(len(SCORES), dtype=np.int64))
        for edge in obj["edges"]:
            counts = hits[edge["relation"]]  # every relation with an edge, hit or not
            for s in range(len(SCORES)):
                sc = edge["scores"][score_name(s)]
                scorable[edge["relation"]][s] += sc["scorable"]
                for j, k in enumerate(("1", "3")):
                    for layer, head in sc["hits"][k]:
                        counts[s, j, layer, head] += 1
        rows = np.flatnonzero(t["q_sample"] == index)
        assert sorted(names[int(c)] for c in t["q_relation"][rows]) == sorted(hits), snippet.id
        for r in rows:
            name = names[int(t["q_relation"][r])]
            np.testing.assert_array_equal(t["q_scorable"][r], scorable[name], err_msg=f"{snippet.id} {name}")
            np.testing.assert_array_equal(t["q_hits"][r], hits[name], err_msg=f"{snippet.id} {name}")
    assert reader.dropped_edges > 0 and reader.truncated > 0  # the 128-subword cut was exercised


def test_shard_file_round_trip(shard):
    _, reader, path = shard
    loaded = load_shards([path])
    assert loaded.names == tuple(sorted(reader.codes))
    assert loaded.dropped_edges == reader.dropped_edges and loaded.truncated == reader.truncated
    position = {name: i for i, name in enumerate(loaded.names)}
    codes = np.asarray([position[name] for name in reader.codes], dtype=np.int64)
    expected = reader.acc.relabelled(codes).to_arrays()
    for name, x in loaded.scores.to_arrays().items():
        np.testing.assert_array_equal(x, expected[name], err_msg=name)
