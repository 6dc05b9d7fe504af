"""Datasets: load real code as a stream of `Snippet`s, filter it with counted skips, sample it
and split it, all deterministically.

    counter = SkipCounter()
    snippets = load_dataset("stdlib", counter=counter)            # or a .jsonl, .json, .txt, dir
    snippets = max_length(snippets, counter, max_chars=20_000)    # cheap limits first
    snippets = parses_cleanly(snippets, counter)
    snippets = max_length(snippets, counter, max_subwords=510, count_subwords=n_subwords)
    snippets = dedupe(snippets, counter)
    chosen = sample(snippets, 3000, seed=0, counter=counter)
    parts = split(chosen, (0.8, 0.1, 0.1), seed=0)
    print(counter.report().summary())   # read, kept, and every skip with its reason

Nothing is dropped silently: every skip is counted under a reason of `SKIP_REASONS`; a dataset
that cannot be read at all raises `DatasetError` when `load_dataset` is called, before any work.
"""

from codeprobe.datasets.filters import Splits, dedupe, max_length, parses_cleanly, sample, split
from codeprobe.datasets.loader import FORMATS, load_dataset
from codeprobe.datasets.selection import check_usable, load_splits
from codeprobe.datasets.snippet import SKIP_REASONS, DatasetReport, SkipCounter, Snippet
from codeprobe.datasets.sources import EXTENSIONS, extract_functions, language_of_file, stdlib_root

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "SKIP_REASONS",
    "DatasetReport",
    "SkipCounter",
    "Snippet",
    "Splits",
    "check_usable",
    "dedupe",
    "extract_functions",
    "language_of_file",
    "load_dataset",
    "load_splits",
    "max_length",
    "parses_cleanly",
    "sample",
    "split",
    "stdlib_root",
]
