"""The diagnostic method's work in a run (docs/diagnostic.md "In a run"), timed on a finished
run's cached hidden states: per task (parent type, depth bucket) the stacked classifiers of
every cached hidden state for the task and its control task (`StackedDiagnosticClassifier`),
their validation and test accuracy, and the online codes (Voita & Titov, arXiv:2003.12298) of
task and control at the hidden state chosen on validation (`online_code`), with the method's
default recipe (lr 0.01, at most 10 epochs, patience 2, one torch thread) or the one given.

It reads the caches directly (`HiddenStateCache.open`): a run's step would not reopen them under
another codeprobe source (their fingerprints hold it). Each fit prints its wall-clock and its
thread's CPU time (the classifiers train on the calling thread), so a busy machine's share shows
as the gap between them.

Usage: python benchmarks/bench_diagnostic_run.py RUN [--lr 0.01] [--max-epochs 10] [--patience 2]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from codeprobe.pipeline.data import read_snippets, read_splits
from codeprobe.probes.astprobe.cache import HiddenStateCache
from codeprobe.probes.astprobe.tuples import tuple_tokens
from codeprobe.probes.diagnostic import (
    LABEL_TASKS,
    ControlTask,
    LabelVocabulary,
    StackedDiagnosticClassifier,
    online_code,
    token_labels,
)
from codeprobe.probes.structural.config import StructuralTrainConfig
from codeprobe.syntax import parse, token_tree


def read_run(run: Path, language: str) -> dict[str, tuple[list[np.ndarray], list]]:
    """split -> (per snippet (L, n, hidden) float16 vectors, token trees), from the pretrained
    model's caches of the run's splits."""
    data_dir = next((run / "data").iterdir())
    splits, code = read_splits(data_dir), {s.id: s.code for s in read_snippets(data_dir)}
    caches = [HiddenStateCache.open(p.parent) for p in (run / "cache" / "hidden_states").glob("*/meta.json")]
    caches = [c for c in caches if "label" not in c.model]  # not the random-weights model's
    out = {}
    for name in ("train", "valid", "test"):
        ids = set(splits[name])
        cache = max(caches, key=lambda c: len(ids & set(c.ids)))
        h = np.stack([cache.hidden_state(s) for s in cache.stored])
        ends = np.cumsum(cache.lengths)
        trees = [token_tree(tuple_tokens(parse(code[i], language))) for i in cache.ids]
        out[name] = ([h[:, e - n : e] for e, n in zip(ends, cache.lengths)], trees)
    return out


@contextmanager
def timer(what: str) -> Iterator[None]:
    wall, cpu = time.perf_counter(), time.thread_time()
    yield
    print(f"{what}: {time.perf_counter() - wall:.1f} s, CPU {time.thread_time() - cpu:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--language", default="python")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--patience", type=int, default=2)
    args = parser.parse_args()
    config = StructuralTrainConfig(lr=args.lr, max_epochs=args.max_epochs, patience=args.patience, threads=1)
    wall, cpu = time.perf_counter(), time.thread_time()
    with timer("reading the caches and parsing"):
        data = read_run(args.run, args.language)
    print("tokens:", {name: sum(x.shape[1] for x in xs) for name, (xs, _) in data.items()})
    for task in LABEL_TASKS:
        names = {n: [token_labels(t, task) for t in trees] for n, (_, trees) in data.items()}
        vocab = LabelVocabulary.from_labels(names["train"])
        y = {n: [vocab.encode(a) for a in v] for n, v in names.items()}
        control = ControlTask.from_labels(y["train"], len(vocab))
        labels = {"task": y, "control": {n: [control.labels(t.tokens.texts) for t in data[n][1]] for n in data}}
        best = 0
        for kind, lab in labels.items():
            clf = StackedDiagnosticClassifier(n_classes=len(vocab), config=config)
            with timer(f"{task} {kind} fit"):
                clf.fit(data["train"][0], lab["train"], X_valid=data["valid"][0], y_valid=lab["valid"])
            valid, test = clf.score(data["valid"][0], lab["valid"]), clf.score(data["test"][0], lab["test"])
            best = int(np.argmax(valid)) if kind == "task" else best
            epochs = [r.best_epoch for r in clf.fit_results_]
            print(f"  best epochs {epochs}; test accuracy {np.round(test, 3).tolist()}")
        for kind, lab in labels.items():
            x = {n: [v[best : best + 1] for v in xs] for n, (xs, _) in data.items()}
            with timer(f"{task} {kind} online code at hidden state {best}"):
                code = online_code(
                    x["train"],
                    lab["train"],
                    X_valid=x["valid"],
                    y_valid=lab["valid"],
                    n_classes=len(vocab),
                    config=config,
                )
            print(f"  online {code.online_bits[0]:,.0f} bits, compression {code.compression[0]:.2f}")
    print(f"total: {time.perf_counter() - wall:.1f} s, CPU {time.thread_time() - cpu:.1f} s")


if __name__ == "__main__":
    main()
