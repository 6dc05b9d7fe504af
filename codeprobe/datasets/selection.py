"""The probing experiments' standard selection: read, filter, sample and split one dataset."""

from __future__ import annotations

import os
from collections.abc import Sequence

from codeprobe.datasets.filters import Splits, dedupe, max_length, parses_cleanly, sample, split
from codeprobe.datasets.loader import load_dataset
from codeprobe.datasets.snippet import DatasetReport, SkipCounter, Snippet

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
        DatasetError: the dataset cannot be read at all.
    """
    counter = SkipCounter()
    snippets = load_dataset(dataset, language, counter=counter)
    snippets = max_length(snippets, counter, max_chars=MAX_CHARS)
    snippets = dedupe(parses_cleanly(snippets, counter), counter)
    chosen = sample(snippets, n_snippets, seed=seed, counter=counter) if n_snippets else list(snippets)
    parts = split(chosen, fractions, seed=seed, group=source_file)
    return parts, counter.report()


def source_file(snippet: Snippet) -> str:
    """Group key for splitting: the file of a function extracted from source files (their ids
    are `path::qualified.name:line`), else the snippet itself (dataset rows are independent)."""
    return snippet.id.split("::", 1)[0] if "::" in snippet.id else snippet.id
