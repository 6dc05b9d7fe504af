"""The probing experiments' standard selection: read, filter, sample and split one dataset."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from codeprobe.datasets.filters import Splits, dedupe, max_length, parses_cleanly, sample, split
from codeprobe.datasets.loader import load_dataset
from codeprobe.datasets.snippet import DatasetReport, SkipCounter, Snippet
from codeprobe.errors import DatasetError

MAX_CHARS = 20_000


def load_splits(
    dataset: str | os.PathLike,
    language: str,
    *,
    n_snippets: int | None = None,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> tuple[Splits, DatasetReport]:
    """Read a dataset with the loaders and cut it into train / valid / test.

    Snippets longer than `MAX_CHARS` characters, that do not parse cleanly, or that repeat
    another are skipped (and counted); functions of one source file stay in one split, so
    near-copies cannot leak into the test split.

    Raises:
        DatasetError: the dataset cannot be read at all, or none of its rows is usable.
    """
    counter = SkipCounter()
    snippets = dedupe(_usable(dataset, language, counter), counter)
    chosen = sample(snippets, n_snippets, seed=seed, counter=counter) if n_snippets else list(snippets)
    if not chosen:
        raise _no_usable_row(dataset, language, counter)
    parts = split(chosen, fractions, seed=seed, group=source_file)
    return parts, counter.report()


def check_usable(dataset: str | os.PathLike, language: str) -> None:
    """Fail now unless `load_splits` would keep at least one snippet of `dataset` in `language`:
    reads until the first snippet that passes its filters (a dataset with usable rows costs one
    row or so; one without any, every row).

    Raises:
        DatasetError: the dataset cannot be read, or none of its rows is usable (the message
            counts the skips by reason).
    """
    counter = SkipCounter()
    if next(_usable(dataset, language, counter), None) is None:
        raise _no_usable_row(dataset, language, counter)


def _usable(dataset: str | os.PathLike, language: str, counter: SkipCounter) -> Iterator[Snippet]:
    """The dataset's snippets that pass `load_splits`' filters (but duplicates), lazily."""
    snippets = load_dataset(dataset, language, counter=counter)
    snippets = max_length(snippets, counter, max_chars=MAX_CHARS)
    return parses_cleanly(snippets, counter)


def _no_usable_row(dataset: str | os.PathLike, language: str, counter: SkipCounter) -> DatasetError:
    skipped = ", ".join(f"{reason} {n}" for reason, n in sorted(counter.counts.items())) or "none"
    return DatasetError(f"{dataset} has no usable {language} snippet: read {counter.n_read}, skipped: {skipped}")


def source_file(snippet: Snippet) -> str:
    """Group key for splitting: the file of a function extracted from source files (their ids
    are `path::qualified.name:line`), else the snippet itself (dataset rows are independent)."""
    return snippet.id.split("::", 1)[0] if "::" in snippet.id else snippet.id
