"""Filters over a stream of snippets, each counting what it drops, plus deterministic sampling
and train / valid / test splits.

Filters take and return iterators and are lazy; they check their arguments when called, so a
bad limit fails before any work. Cheap checks first: `max_length(max_chars=...)` before
`parses_cleanly` keeps a huge row from reaching the parser.

Sampling and splitting never use the stream's order or Python's `hash`: each snippet gets a
64-bit key from BLAKE2b of (purpose, seed, id). The same ids and seed give the same sample and
the same splits on every machine, whatever order the snippets arrive in.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from codeprobe.datasets.snippet import SkipCounter, Snippet
from codeprobe.errors import CodeParseError, EmptyCodeError, InputError, InvalidSourceError
from codeprobe.syntax import code_tokens, parse


def parses_cleanly(snippets: Iterable[Snippet], counter: SkipCounter) -> Iterator[Snippet]:
    """Keep snippets whose tree has no ERROR or MISSING node (after the syntax core's wrappers:
    a bare Java method or a PHP function without `<?php` parses cleanly).

    Skips: `parse_error` (detail: the first problem's position), `empty`, `binary`.
    """
    for snippet in snippets:
        if _parses(snippet, counter):
            yield snippet


def max_length(
    snippets: Iterable[Snippet],
    counter: SkipCounter,
    *,
    max_chars: int | None = None,
    max_subwords: int | None = None,
    count_subwords: Callable[[str], int] | None = None,
    max_tokens: int | None = None,
) -> Iterator[Snippet]:
    """Keep snippets within every limit given; the others are skipped as `too_long`.

    Args:
        max_chars: characters of code.
        max_subwords: model subwords, as counted by `count_subwords(code) -> int`: any
            tokenizer-like callable, e.g. `lambda c: len(tok(c)["input_ids"])`. The limit is
            compared with whatever it returns, so include special tokens there if the model's
            position limit counts them.
        max_tokens: code tokens (leaves of the tree, comments excluded; see
            `codeprobe.syntax.code_tokens`). Parses each snippet: put it after the cheap limits.
            A snippet that cannot be parsed at all is skipped as `empty` / `binary`.

    Raises:
        InputError: no limit, a limit below 1, or `max_subwords` without `count_subwords`.
    """
    limits = {"max_chars": max_chars, "max_subwords": max_subwords, "max_tokens": max_tokens}
    if all(v is None for v in limits.values()):
        raise InputError("max_length needs at least one of max_chars, max_subwords, max_tokens")
    for name, value in limits.items():
        if value is not None and (not isinstance(value, int) or value < 1):
            raise InputError(f"{name} must be a positive integer, not {value!r}")
    if max_subwords is not None and count_subwords is None:
        raise InputError("max_subwords needs count_subwords, a callable code -> number of subwords")
    return _max_length(snippets, counter, max_chars, max_subwords, count_subwords, max_tokens)


def _max_length(snippets, counter, max_chars, max_subwords, count_subwords, max_tokens):
    for snippet in snippets:
        if max_chars is not None and len(snippet.code) > max_chars:
            counter.skip("too_long", snippet.id, f"{len(snippet.code)} characters > {max_chars}")
            continue
        if max_subwords is not None:
            n = int(count_subwords(snippet.code))
            if n > max_subwords:
                counter.skip("too_long", snippet.id, f"{n} subwords > {max_subwords}")
                continue
        if max_tokens is not None:
            try:
                n = len(code_tokens(parse(snippet.code, snippet.language)))
            except EmptyCodeError:
                counter.skip("empty", snippet.id)
                continue
            except InvalidSourceError as err:
                counter.skip("binary", snippet.id, str(err))
                continue
            if n > max_tokens:
                counter.skip("too_long", snippet.id, f"{n} code tokens > {max_tokens}")
                continue
        yield snippet


def dedupe(snippets: Iterable[Snippet], counter: SkipCounter) -> Iterator[Snippet]:
    """Keep the first of each group of snippets with the same language and the same code up to
    whitespace (runs of whitespace count as one space; leading and trailing are ignored).

    Memory: one 16-byte digest and one id per kept snippet. Skips: `duplicate` (detail: the id
    kept instead).
    """
    first: dict[bytes, str] = {}
    for snippet in snippets:
        normal = " ".join(snippet.code.split())
        key = f"{snippet.language}\0{normal}".encode()
        digest = hashlib.blake2b(key, digest_size=16).digest()
        kept = first.get(digest)
        if kept is not None:
            counter.skip("duplicate", snippet.id, f"same as {kept}")
            continue
        first[digest] = snippet.id
        yield snippet


def sample(snippets: Iterable[Snippet], n: int, *, seed: int = 0, counter: SkipCounter) -> list[Snippet]:
    """A deterministic sample of `n` snippets (all of them if there are fewer), in stream order.

    The sample is the `n` snippets with the smallest keys (see the module docstring), found in
    one pass with a heap of `n`: memory O(n), whatever the stream's length. It depends only on
    the snippets' ids and `seed`, not on their order. The others are counted as `not_sampled`.

    Raises:
        InputError: `n` is negative.
    """
    if not isinstance(n, int) or n < 0:
        raise InputError(f"sample size must be a non-negative integer, not {n!r}")
    # Max-heap of the n smallest (key, position) via negation; position breaks ties.
    heap: list[tuple[int, int, Snippet]] = []
    for position, snippet in enumerate(snippets):
        entry = (-_key(snippet.id, seed, "sample"), -position, snippet)
        if len(heap) < n:
            heapq.heappush(heap, entry)
            continue
        if heap and entry[:2] > heap[0][:2]:
            entry = heapq.heapreplace(heap, entry)
        counter.skip("not_sampled", entry[2].id)
    return [entry[2] for entry in sorted(heap, key=lambda e: -e[1])]


@dataclass(frozen=True)
class Splits:
    """Disjoint train / valid / test parts of a dataset, each in stream order."""

    train: tuple[Snippet, ...]
    valid: tuple[Snippet, ...]
    test: tuple[Snippet, ...]

    @property
    def sizes(self) -> tuple[int, int, int]:
        return (len(self.train), len(self.valid), len(self.test))


def split(
    snippets: Iterable[Snippet],
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    *,
    seed: int = 0,
    group: Callable[[Snippet], str] | None = None,
) -> Splits:
    """Split snippets into train / valid / test, deterministically from `seed`.

    Snippets are ordered by their keys (see the module docstring) and cut at sizes that are the
    fractions of the total rounded by largest remainder, so they add up and are exact to one
    snippet. With `group` (e.g. the source file), snippets with the same group label stay in one
    part, so near-identical neighbours cannot leak from train into test; a whole group goes
    where its first snippet falls in the key order, so sizes are then only approximate.

    Args:
        snippets: the whole dataset (read into memory).
        fractions: three non-negative numbers summing to 1.

    Raises:
        InputError: bad fractions.
    """
    fractions = _check_fractions(fractions)
    items = list(snippets)
    if group is None:
        keys = np.array([_key(s.id, seed, "split") for s in items], dtype=np.uint64)
        unit_of = np.arange(len(items))
    else:
        labels = [str(group(s)) for s in items]
        names, unit_of = np.unique(np.array(labels, dtype=object), return_inverse=True)
        keys = np.array([_key(name, seed, "split-group") for name in names], dtype=np.uint64)
    sizes = np.bincount(unit_of, minlength=keys.shape[0])
    order = np.lexsort((np.arange(keys.shape[0]), keys))  # by key, ties by first position
    starts = np.cumsum(sizes[order]) - sizes[order]
    cuts = np.cumsum(_exact_sizes(fractions, len(items)))[:2]
    part_of_unit = np.empty(keys.shape[0], dtype=np.int64)
    part_of_unit[order] = np.searchsorted(cuts, starts, side="right")
    part = part_of_unit[unit_of]
    return Splits(*(tuple(s for s, p in zip(items, part.tolist()) if p == k) for k in range(3)))


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    try:
        values = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise InputError(f"fractions must be three numbers, not {fractions!r}") from None
    if len(values) != 3 or any(not math.isfinite(v) or v < 0 for v in values):
        raise InputError(f"fractions must be three non-negative numbers, not {fractions!r}")
    if not math.isclose(sum(values), 1.0, abs_tol=1e-6):
        raise InputError(f"fractions must sum to 1, not {sum(values)}")
    return values  # type: ignore[return-value]


def _exact_sizes(fractions: tuple[float, float, float], n: int) -> np.ndarray:
    """int64 (3,): sizes summing to n, by largest remainder (ties to the earlier part)."""
    raw = np.asarray(fractions) * n
    sizes = np.floor(raw).astype(np.int64)
    short = n - int(sizes.sum())
    sizes[np.argsort(-(raw - sizes), kind="stable")[:short]] += 1
    return sizes


def _key(ident: str, seed: int, purpose: str) -> int:
    """A 64-bit key, uniform and stable across machines and Python runs."""
    data = f"{purpose}\0{seed}\0{ident}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def _parses(snippet: Snippet, counter: SkipCounter) -> bool:
    """Whether the snippet parses cleanly; if not, the skip is counted with its reason."""
    try:
        parse(snippet.code, snippet.language, strict=True)
    except CodeParseError as err:
        detail = f"{len(err.issues)} problem(s), first: {err.issues[0]}"
        counter.skip("parse_error", snippet.id, detail)
        return False
    except EmptyCodeError:
        counter.skip("empty", snippet.id)
        return False
    except InvalidSourceError as err:
        counter.skip("binary", snippet.id, str(err))
        return False
    return True
