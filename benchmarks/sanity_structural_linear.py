"""Sanity values of the structural probe's metrics on real code, no model: the gold token tree
scored against itself (UUAS 1.0, DSpr 1.0, NSpr 1.0, root accuracy 1.0) and the linear baseline
(the tree of consecutive tokens, distance |i - j|; depth i for NSpr) against it.

Data: the main job's, `load_splits("stdlib", "python", n_snippets=1400, seed=0)` (the running
interpreter's standard library), all of it and its test split, and with `--java` 1,400
CodeSearchNet Java test methods from ../shared. Gold trees: `SyntaxTree.token_tree()` (the
first-token head rule). DSpr and NSpr are macro-averaged over the lengths
`qualifying_lengths(min_snippets=2)` picks (and, for comparison, every length, and the
reference's 5-50); snippets under 3 tokens have no DSpr and are left out.

    python benchmarks/sanity_structural_linear.py [--java]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from codeprobe.datasets.selection import load_splits
from codeprobe.probes.structural import (
    DEFAULT_MIN_SNIPPETS,
    HEWITT_MANNING_LENGTHS,
    corpus_uuas,
    distance_scores,
    dspr,
    length_macro_average,
    linear_baseline,
    nspr,
    qualifying_lengths,
    root_accuracy,
)
from codeprobe.syntax import parse

SHARED_JAVA = Path(__file__).resolve().parents[2] / "shared" / "data" / "csn-java-test-tokens.txt"


def scores(codes: list[str], language: str) -> dict[str, np.ndarray]:
    rows = []
    for code in codes:
        tt = parse(code, language).token_tree()
        n = len(tt)
        if n < 3:
            continue
        gold = distance_scores(tt.distance, tt.heads, tt.distance)
        line = linear_baseline(tt.heads, tt.distance)
        assert gold.uuas_correct == gold.uuas_total and gold.dspr == 1.0
        assert nspr(tt.depth, tt.depth) == 1.0 and root_accuracy(tt.depth, tt.heads)
        assert dspr(tt.distance, tt.distance, include_self=True) == 1.0
        linear_depth = np.arange(n)
        rows.append((n, line.uuas_correct, line.uuas_total, line.dspr, nspr(linear_depth, tt.depth)))
        rows[-1] += (root_accuracy(linear_depth, tt.heads),)
    names = ("n", "correct", "total", "dspr", "nspr", "root")
    return {name: np.array(col) for name, col in zip(names, zip(*rows))}


def report(title: str, s: dict[str, np.ndarray]) -> None:
    n = s["n"]
    print(
        f"\n{title}: {n.size} snippets, tokens median {np.median(n):.0f}, 5-95% {np.percentile(n, 5):.0f}-{np.percentile(n, 95):.0f}, max {n.max()}"
    )
    print(
        "  gold vs itself: UUAS 1.0, DSpr 1.0 (with and without the token itself), NSpr 1.0, root accuracy 1.0 on every snippet"
    )
    print(
        f"  linear baseline UUAS {corpus_uuas(s['correct'], s['total']):.3f} (share of gold edges between neighbours)"
    )
    print(f"  linear baseline root accuracy {s['root'].mean():.3f} (the first token is always the gold root)")
    for label, over in (
        (f"lengths with >= {DEFAULT_MIN_SNIPPETS} snippets", qualifying_lengths(n, min_snippets=DEFAULT_MIN_SNIPPETS)),
        ("every length", qualifying_lengths(n, min_snippets=1)),
        (
            f"lengths {HEWITT_MANNING_LENGTHS[0]}-{HEWITT_MANNING_LENGTHS[1]}",
            qualifying_lengths(n, min_snippets=1, length_range=HEWITT_MANNING_LENGTHS),
        ),
    ):
        d = length_macro_average(s["dspr"], n, over)
        m = length_macro_average(s["nspr"], n, over)
        print(
            f"  {label:<28} {d.lengths.size:>4} lengths, {d.counts.sum():>5} snippets: "
            f"linear DSpr {d.value:.3f}, linear NSpr {m.value:.3f}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--java", action="store_true", help="also CodeSearchNet Java test methods from ../shared")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    splits, _ = load_splits("stdlib", "python", n_snippets=1400, seed=0)
    everything = [s.code for part in (splits.train, splits.valid, splits.test) for s in part]
    report("stdlib Python, all 1,400", scores(everything, "python"))
    report("stdlib Python, test split", scores([s.code for s in splits.test], "python"))
    if args.java:
        if not SHARED_JAVA.exists():
            sys.exit(f"{SHARED_JAVA} is missing")
        with SHARED_JAVA.open(encoding="utf-8") as f:
            codes = [line.rstrip("\n").partition("\t")[2] for _, line in zip(range(1400), f)]
        report("CodeSearchNet Java test, first 1,400", scores(codes, "java"))
    print(f"\n{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
