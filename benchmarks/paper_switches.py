"""Effect of the paper-faithful switches (docs/paper-switches.md) on Python standard-library
functions with the packaged model (all-MiniLM-L6-v2: a *text* model, not a code model).

Not a speed benchmark: it prints, per switch, the numbers it changes.

AST-Probe (arXiv 2206.11719):
  - per preprocessing setting (default / remove_docstrings / drop_line_continuations / both):
    snippets kept, tokens per snippet, and the metric's trivial baselines on gold c/u
    (right-branching d, random d);
  - probe F1 (hidden state 3, rank 128) with the default input, with the reference's preprocessing,
    and with the reference's preprocessing plus the space-joined model input;
  - the per-non-terminal recall table of the preprocessed probe (its most frequent labels).
CAT-probing (arXiv 2210.04633): CAT-score per layer ("paper" types) with the source text or the
space-joined code tokens as input, and the head mean or the head max.

Usage: python benchmarks/paper_switches.py [--n-ast 400] [--n-cat 300] [--max-chars 1500]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from codeprobe.datasets import SkipCounter, load_dataset, max_length, parses_cleanly, sample, split
from codeprobe.errors import InputError
from codeprobe.model import ModelInput, load_model
from codeprobe.probes.astprobe import ASTProbe, TrainConfig, TupleBatch, code_tuple, score
from codeprobe.probes.astprobe.preprocess import remove_docstrings
from codeprobe.probes.cat import CATProbe
from codeprobe.syntax import parse

PREPROCESSING = {
    "default": {},
    "remove_docstrings": {"remove_docstrings": True},
    "drop_line_continuations": {"drop_line_continuations": True},
    "both (the reference's)": {"remove_docstrings": True, "drop_line_continuations": True},
}


def stdlib(n: int, seed: int, max_chars: int) -> list:
    counter = SkipCounter()
    snippets = load_dataset("stdlib", "python", counter=counter)
    snippets = parses_cleanly(max_length(snippets, counter, max_chars=max_chars), counter)
    return sample(snippets, n, seed=seed, counter=counter)


def tuples_of(snippets, remove_docstrings_: bool = False, drop_line_continuations: bool = False):
    out, dropped = [], 0
    for s in snippets:
        try:
            code = remove_docstrings(s.code, "python") if remove_docstrings_ else s.code
            if parse(code, "python").has_errors:
                raise InputError("parse error")
            t = code_tuple(code, "python", drop_line_continuations=drop_line_continuations)
        except InputError:
            dropped += 1
            continue
        if t.n_tokens >= 2:
            out.append(t)
        else:
            dropped += 1
    return out, dropped


def baselines(tuples, seed: int) -> tuple[float, float]:
    gold = TupleBatch.from_tuples(tuples)
    c, u = [t.c for t in tuples], [t.u for t in tuples]
    right = TupleBatch.from_labels([np.arange(t.n_tokens - 1, dtype=float)[::-1] for t in tuples], c, u)
    rng = np.random.default_rng(seed)
    rand = TupleBatch.from_labels([rng.random(t.n_tokens - 1) for t in tuples], c, u)
    return score(right, gold).mean()["f1"], score(rand, gold).mean()["f1"]


def astprobe_part(args, loaded) -> None:
    snippets = stdlib(args.n_ast, args.seed, args.max_chars)
    print(f"\n## AST-Probe: {len(snippets)} stdlib functions of <= {args.max_chars} characters (seed {args.seed})\n")
    print("| setting | kept | tokens / snippet | right-branching F1 | random F1 |")
    print("|---|---|---|---|---|")
    for name, opts in PREPROCESSING.items():
        tuples, _ = tuples_of(
            snippets, opts.get("remove_docstrings", False), opts.get("drop_line_continuations", False)
        )
        right, rand = baselines(tuples, args.seed)
        tokens = np.mean([t.n_tokens for t in tuples])
        print(f"| {name} | {len(tuples)} | {tokens:.1f} | {right:.3f} | {rand:.3f} |")

    parts = split(snippets, (0.7, 0.1, 0.2), seed=args.seed)
    config = TrainConfig(device="cpu")
    probes = {
        "default (source text)": {},
        "reference preprocessing": {"remove_docstrings": True, "drop_line_continuations": True},
        "reference preprocessing + code_tokens input": {
            "remove_docstrings": True,
            "drop_line_continuations": True,
            "model_input": "code_tokens",
        },
    }
    print(
        f"\nProbe, hidden state {args.hidden_state}, rank {args.rank}; train/valid/test {parts.sizes} functions "
        f"before each setting's own drops\n"
    )
    print("| setting | test snippets | tokens / snippet | P | R | F1 | seconds |")
    print("|---|---|---|---|---|---|---|")
    table = None
    with tempfile.TemporaryDirectory() as cache:
        for name, opts in probes.items():
            start = time.perf_counter()
            probe = ASTProbe(
                rank=args.rank,
                hidden_state=args.hidden_state,
                cache_dir=cache,
                config=config,
                random_state=args.seed,
                **opts,
            )
            train, valid, test = (probe.prepare(p, model=loaded) for p in (parts.train, parts.valid, parts.test))
            probe.fit_splits(train, valid, model=loaded)
            s = probe.evaluate_split(test)
            tokens = np.mean([t.n_tokens for t in test.tuples])
            print(
                f"| {name} | {len(test)} | {tokens:.1f} | {s.precision:.4f} | {s.recall:.4f} | {s.f1:.4f} "
                f"| {time.perf_counter() - start:.0f} |"
            )
            if opts.get("model_input") is None and opts:
                table = probe.recall_by_label_split(test)
    if table is not None:
        print("\nRecall per non-terminal (reference preprocessing, test split), labels in >= 20 snippets:\n")
        print("| label | recall | snippets | constituents |")
        print("|---|---|---|---|")
        for label, r, n_s, n_g in zip(table.labels, table.recall, table.n_snippets, table.n_gold):
            if n_s >= 20:
                print(f"| {label} | {r:.3f} | {n_s} | {n_g} |")


def cat_part(args, loaded) -> None:
    snippets = stdlib(args.n_cat, args.seed + 1, args.max_chars)
    tok = loaded.tokenizer
    source_sub = [len(tok(s.code, add_special_tokens=False)["input_ids"]) for s in snippets]
    joined_sub = [
        len(
            tok(
                ModelInput.joined(s.id, parse(s.code, "python").tokens().texts, collapse_whitespace=True).code,
                add_special_tokens=False,
            )["input_ids"]
        )
        for s in snippets
    ]
    print(f"\n## CAT-probing: {len(snippets)} stdlib functions of <= {args.max_chars} characters, types paper\n")
    print(
        f"Subwords per snippet (specials excluded): source {np.mean(source_sub):.1f}, "
        f"space-joined code tokens {np.mean(joined_sub):.1f}\n"
    )
    results = {}
    for model_input in ("source", "code_tokens"):
        for head_pooling in ("mean", "max"):
            start = time.perf_counter()
            probe = CATProbe(types="paper", model_input=model_input, head_pooling=head_pooling, random_state=args.seed)
            r = probe.score(snippets, loaded, "python")
            results[(model_input, head_pooling)] = r.summary
            print(f"({model_input}, {head_pooling}) scored in {time.perf_counter() - start:.0f} s")
    first = next(iter(results.values()))
    layers = first.layer[first.head == -1]
    print("\n| layer | " + " | ".join(f"{a} / {b}" for a, b in results) + " | random | positional |")
    print("|---" * (len(results) + 3) + "|")
    for layer in layers:
        cells = []
        for summary in results.values():
            row = np.flatnonzero((summary.layer == layer) & (summary.head == -1))[0]
            cells.append(f"{summary.score[row]:.4f}")
        row = np.flatnonzero((first.layer == layer) & (first.head == -1))[0]
        print(
            f"| {layer} | "
            + " | ".join(cells)
            + f" | {first.random_baseline[row]:.4f} | {first.positional_baseline[row]:.4f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-ast", type=int, default=400)
    ap.add_argument("--n-cat", type=int, default=300)
    ap.add_argument("--max-chars", type=int, default=1500)
    ap.add_argument("--hidden-state", type=int, default=3, help="AST-Probe's hidden state (0 = embeddings)")
    ap.add_argument("--rank", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip", choices=("ast", "cat"), default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_model(None, device="cpu")
    print(f"model: {loaded.info.name} ({loaded.info.note})")
    if args.skip != "ast":
        astprobe_part(args, loaded)
    if args.skip != "cat":
        cat_part(args, loaded)


if __name__ == "__main__":
    main()
