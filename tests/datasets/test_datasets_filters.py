"""Filters, sampling and splits: counts, determinism, disjointness, and slow oracles."""

from __future__ import annotations

import hashlib
import random

import pytest
from shared_data import cosqa_functions, shared_path

from codeprobe.datasets import SkipCounter, Snippet, Splits, dedupe, max_length, parses_cleanly, sample, split
from codeprobe.errors import InputError
from codeprobe.syntax import code_tokens, parse


def _cosqa() -> list[Snippet]:
    return [Snippet(i, "python", code, f"cosqa#{i}") for i, code in cosqa_functions()]


def _oracle_key(ident: str, seed: int, purpose: str) -> int:
    data = f"{purpose}\0{seed}\0{ident}".encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def test_parses_cleanly_counts_parse_errors():
    snippets = _cosqa()[:20] + [
        Snippet("bad", "python", "def f(:\n    pass", "t"),
        Snippet("nul", "go", "\x00" * 50, "t"),
    ]
    counter = SkipCounter()
    kept = list(parses_cleanly(snippets, counter))
    assert [s.id for s in kept] == [s.id for s in snippets[:20]]
    assert counter.counts == {"parse_error": 1, "binary": 1}
    assert "line 1" in counter.report().examples["parse_error"][0]


def test_max_length_in_real_subwords_and_code_tokens():
    from tokenizers import ByteLevelBPETokenizer  # CodeBERT's real byte-level BPE

    folder = shared_path("models", "codebert-base-tokenizer")
    tok = ByteLevelBPETokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    snippets = _cosqa()[:60]

    def count(code: str) -> int:
        return len(tok.encode(code).ids) + 2  # + <s> and </s>

    counter = SkipCounter()
    kept = list(max_length(snippets, counter, max_subwords=200, count_subwords=count))
    assert [s.id for s in kept] == [s.id for s in snippets if count(s.code) <= 200]
    assert 0 < counter.counts["too_long"] < 60 and len(kept) + counter.counts["too_long"] == 60

    counter = SkipCounter()
    kept = list(max_length(snippets, counter, max_tokens=80))
    assert [s.id for s in kept] == [s.id for s in snippets if len(code_tokens(parse(s.code, "python"))) <= 80]
    assert counter.counts["too_long"] == 60 - len(kept) > 0

    counter = SkipCounter()
    kept = list(max_length(snippets, counter, max_chars=300))
    assert [s.id for s in kept] == [s.id for s in snippets if len(s.code) <= 300]


def test_max_length_checks_its_arguments_at_once():
    with pytest.raises(InputError, match="at least one"):
        max_length([], SkipCounter())
    with pytest.raises(InputError, match="count_subwords"):
        max_length([], SkipCounter(), max_subwords=10)
    with pytest.raises(InputError, match="positive"):
        max_length([], SkipCounter(), max_chars=0)


def test_dedupe_by_normalised_whitespace():
    a = Snippet("a", "python", "def f(x):\n    return x", "t")
    b = Snippet("b", "python", "def f(x):\n\n        return   x\n", "t")
    c = Snippet("c", "python", "def f(y):\n    return y", "t")
    d = Snippet("d", "javascript", "def f(x):\n    return x", "t")  # same text, other language
    counter = SkipCounter()
    assert [s.id for s in dedupe([a, b, c, d, a], counter)] == ["a", "c", "d"]
    assert counter.counts == {"duplicate": 2}


def test_sample_is_deterministic_order_free_and_matches_oracle():
    snippets = _cosqa()
    counter = SkipCounter()
    counter.count_read(len(snippets))
    chosen = sample(iter(snippets), 50, seed=3, counter=counter)
    # Oracle: sort everything by key, take 50, restore stream order.
    best = set(sorted((s.id for s in snippets), key=lambda i: _oracle_key(i, 3, "sample"))[:50])
    assert [s.id for s in chosen] == [s.id for s in snippets if s.id in best]
    assert counter.counts == {"not_sampled": 554} and counter.report().kept == 50

    shuffled = snippets[:]
    random.Random(0).shuffle(shuffled)
    again = sample(shuffled, 50, seed=3, counter=SkipCounter())
    assert {s.id for s in again} == best
    assert [s.id for s in sample(snippets, 50, seed=3, counter=SkipCounter())] == [s.id for s in chosen]
    assert {s.id for s in sample(snippets, 50, seed=4, counter=SkipCounter())} != best
    assert sample(snippets[:10], 50, seed=3, counter=SkipCounter()) == snippets[:10]
    assert sample(snippets, 0, seed=3, counter=SkipCounter()) == []
    with pytest.raises(InputError):
        sample(snippets, -1, counter=SkipCounter())


def _oracle_split(snippets, fractions, seed):
    n = len(snippets)
    raw = [f * n for f in fractions]
    sizes = [int(r) for r in raw]
    for k in sorted(range(3), key=lambda k: -(raw[k] - sizes[k]))[: n - sum(sizes)]:
        sizes[k] += 1
    ranked = sorted(range(n), key=lambda i: (_oracle_key(snippets[i].id, seed, "split"), i))
    part = {}
    for rank, i in enumerate(ranked):
        part[i] = 0 if rank < sizes[0] else 1 if rank < sizes[0] + sizes[1] else 2
    return tuple(tuple(s for i, s in enumerate(snippets) if part[i] == k) for k in range(3))


@pytest.mark.parametrize("fractions", [(0.8, 0.1, 0.1), (0.5, 0.0, 0.5), (1 / 3, 1 / 3, 1 / 3)])
def test_split_exact_disjoint_deterministic(fractions):
    snippets = _cosqa()
    parts = split(snippets, fractions, seed=11)
    assert isinstance(parts, Splits)
    assert (parts.train, parts.valid, parts.test) == _oracle_split(snippets, fractions, 11)
    ids = [{s.id for s in p} for p in (parts.train, parts.valid, parts.test)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert sum(parts.sizes) == 604 and set().union(*ids) == {s.id for s in snippets}
    assert all(abs(size - f * 604) < 1 for size, f in zip(parts.sizes, fractions))
    shuffled = snippets[:]
    random.Random(1).shuffle(shuffled)
    again = split(shuffled, fractions, seed=11)
    assert [{s.id for s in p} for p in (again.train, again.valid, again.test)] == ids
    assert split(snippets, fractions, seed=12).train != parts.train or fractions[0] == 1


def test_split_by_group_keeps_groups_together():
    snippets = [Snippet(f"f{g}.py::fn{i}:{i}", "python", "pass", f"f{g}.py:{i}") for g in range(40) for i in range(5)]
    parts = split(snippets, seed=0, group=lambda s: s.id.split("::")[0])
    groups = [{s.id.split("::")[0] for s in p} for p in (parts.train, parts.valid, parts.test)]
    assert not (groups[0] & groups[1]) and not (groups[0] & groups[2]) and not (groups[1] & groups[2])
    assert sum(parts.sizes) == 200 and all(size % 5 == 0 for size in parts.sizes)
    assert split(snippets, seed=0, group=lambda s: s.id.split("::")[0]) == parts


def test_split_edge_cases():
    assert split([], seed=0).sizes == (0, 0, 0)
    one = [Snippet("x", "python", "pass", "t")]
    assert split(one, seed=0).sizes == (1, 0, 0)
    for bad in [(0.5, 0.5), (0.8, 0.3, 0.1), (1.2, -0.1, -0.1), "abc"]:
        with pytest.raises(InputError):
            split(one, bad, seed=0)


def test_dedupe_on_cosqa_matches_oracle():
    snippets = _cosqa()
    counter = SkipCounter()
    kept = [s.id for s in dedupe(snippets, counter)]
    # Oracle: compare every snippet with all kept before it (quadratic, obviously right).
    expected: list[Snippet] = []
    for s in snippets:
        if not any(k.code.split() == s.code.split() for k in expected):
            expected.append(s)
    assert kept == [s.id for s in expected]
    # CoSQA pairs one function with several queries: 52 of its 604 rows repeat a function.
    assert counter.counts == {"duplicate": 52}
