"""The data step: load, filter, sample and split one dataset in one language, into
`RUN/data/<language>-<dataset>/` (snippets.jsonl, report.json with the skips by reason, and,
last, splits.json recording the step key), each with its integrity record (`codeprobe.files`)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from codeprobe.files import read_json, write_atomic, write_json
from codeprobe.pipeline.runfolder import StepOutput, step_output, write_step_json

SNIPPETS_FILE = "snippets.jsonl"
SPLITS_FILE = "splits.json"
SPLITS = ("train", "valid", "test")


@step_output(
    lambda a: StepOutput(
        Path(a["out_dir"], SPLITS_FILE),
        a["key"],
        also=lambda: [Path(a["out_dir"], SNIPPETS_FILE), Path(a["out_dir"], "report.json")],
        returns=a["out_dir"],
    )
)
def prepare_data(dataset: str, language: str, n_snippets: int, seed: int, out_dir: str, key: str) -> str:
    """Load, filter (parse errors, duplicates, size), sample and split one dataset in one
    language; write snippets.jsonl, report.json (the skip counts) and, last, splits.json
    (which records `key`) to `out_dir`; done when they are, as written (`step_output`).

    Returns:
        `out_dir`.
    """
    from codeprobe.datasets import load_splits

    out = Path(out_dir)
    parts, report = load_splits(dataset, language, n_snippets=n_snippets, seed=seed)
    chosen = [snippet for name in SPLITS for snippet in getattr(parts, name)]
    write_atomic(out / SNIPPETS_FILE, "".join(json.dumps(asdict(s)) + "\n" for s in chosen), record=True)
    write_json(out / "report.json", report.to_dict(), record=True)
    write_step_json(out / SPLITS_FILE, {name: [s.id for s in getattr(parts, name)] for name in SPLITS}, key)
    return str(out)


def read_snippets(data_dir: str | Path) -> list:
    """The snippets `prepare_data` wrote, in its order (train, valid, test)."""
    from codeprobe.datasets import Snippet

    lines = Path(data_dir, SNIPPETS_FILE).read_text(encoding="utf-8").splitlines()
    return [Snippet(**json.loads(line)) for line in lines]


def count_snippets(data_dir: str | Path) -> int:
    with open(Path(data_dir, SNIPPETS_FILE), encoding="utf-8") as f:
        return sum(1 for _ in f)


def read_splits(data_dir: str | Path) -> dict[str, list[str]]:
    """The snippet ids of each split: {"train": [...], "valid": [...], "test": [...]}."""
    splits = read_json(Path(data_dir, SPLITS_FILE))
    return {name: splits[name] for name in SPLITS}


def empty_splits(data_dir: str | Path) -> list[str]:
    """The splits without a snippet (a dataset of few source files, split by file, can leave one
    empty): a method that trains, selects on validation and reports on test skips such data."""
    return [name for name, ids in read_splits(data_dir).items() if not ids]
