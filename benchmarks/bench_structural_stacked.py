"""Structural probes' training (Hewitt & Manning, NAACL 2019, N19-1419), both sides in one process
on the same real inputs: the distance and depth probes of every hidden state trained all
together (`StackedDistanceProbe`, `StackedDepthProbe`: one (L, hidden, rank) tensor, batched
products) against one hidden state at a time (`DistanceProbe`, `DepthProbe` per hidden state),
with the library's training (`StructuralTrainConfig`: at most 40 epochs, early stopping), checked
to give the same probes (B, best epochs) and the same validation UUAS, DSpr, NSpr and root
accuracy per hidden state. Beside them, the cost of AST-Probe's training (arXiv:2206.11719) on
the same hidden states of the same snippets, all hidden states together (`fit_many`, its
default `TrainConfig`, the main job's rank 128), as `codeprobe run` trains it.

Inputs: `--n` functions of the running interpreter's standard library that parse cleanly
(sampled with `--seed`), the first `--n-valid` of them the validation split; the packaged
default model (all-MiniLM-L6-v2), its hidden states pooled onto each function's token-tree
tokens (strings collapsed, AST-Probe's tokens: `token_tree_vectors`). Functions the model cannot
read whole are left out on both sides. The model's forward pass runs once, before any timing.
Each side runs `--repeat` times, alternating, and the fastest run counts (the machine is
shared); every side on `--threads` torch threads, with glibc's allocator set as codeprobe's entry
points set it (`codeprobe.allocator.limit_heap_growth`; `--default-allocator` leaves it alone).

Usage: python benchmarks/bench_structural_stacked.py [--n 250] [--n-valid 50] [--rank R]
       [--threads 1] [--repeat 1] [--no-astprobe] [--default-allocator]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace

import numpy as np
import torch

from codeprobe.allocator import limit_heap_growth
from codeprobe.datasets import SkipCounter, load_dataset, parses_cleanly, sample
from codeprobe.model import Extractor, load_model
from codeprobe.probes.structural import (
    DepthProbe,
    DistanceProbe,
    StackedDepthProbe,
    StackedDistanceProbe,
    StructuralTrainConfig,
)
from codeprobe.probes.structural.vectors import token_tree_vectors

ASTPROBE_RANK = 128  # the main job's (RunConfig.astprobe.rank)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=250, help="functions sampled (train + validation)")
    ap.add_argument("--n-valid", type=int, default=50, help="of them, the validation split")
    ap.add_argument("--rank", type=int, default=None, help="structural probes' rank (default: square, the library's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads, every side")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each side")
    ap.add_argument("--no-astprobe", action="store_true", help="leave AST-Probe's training out")
    ap.add_argument(
        "--default-allocator", action="store_true", help="leave glibc's allocator as it starts (not as the CLI sets it)"
    )
    args = ap.parse_args()
    if not args.default_allocator:
        limit_heap_growth()  # as codeprobe's entry points set glibc's allocator: freed arrays reused
    torch.set_num_threads(args.threads)

    counter = SkipCounter()
    snippets = sample(
        parses_cleanly(load_dataset("stdlib", "python", counter=counter), counter),
        args.n,
        seed=args.seed,
        counter=counter,
    )
    loaded = load_model(None, device="cpu")
    extractor = Extractor(loaded, batch_size=16, attention=False, hidden_states=True, length_policy="skip")
    start = time.perf_counter()
    data = token_tree_vectors([(s.id, s.code) for s in snippets], "python", extractor)
    extract_s = time.perf_counter() - start
    kept = set(data.ids)
    valid_ids = {s.id for s in snippets[: args.n_valid]}
    is_valid = np.array([i in valid_ids for i in data.ids])
    split = {
        name: ([data.vectors[k] for k in np.flatnonzero(mask)], [data.trees[k] for k in np.flatnonzero(mask)])
        for name, mask in (("train", ~is_valid), ("valid", is_valid))
    }
    (X, y), (Xv, yv) = split["train"], split["valid"]
    L = len(data.hidden_states)
    config = StructuralTrainConfig(threads=args.threads)
    tokens = sum(len(t) for t in y), sum(len(t) for t in yv)
    print(
        f"{len(y)} train + {len(yv)} valid stdlib functions ({tokens[0]} + {tokens[1]} tokens; "
        f"{len(snippets) - len(kept)} of {len(snippets)} left out: {_reasons(data.skipped)}), {loaded.info.name}, "
        f"{L} hidden states of width {X[0].shape[2]}, rank {args.rank or 'square'}, {args.threads} torch thread(s); "
        f"hidden states read once in {extract_s:.1f} s"
    )

    lines, times = [], {}
    for kind, stacked_cls, single_cls in (
        ("distance", StackedDistanceProbe, DistanceProbe),
        ("depth", StackedDepthProbe, DepthProbe),
    ):
        common = {"rank": args.rank, "config": config, "random_state": args.seed}
        alone_s, together_s = [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            alone = [
                single_cls(**common).fit([x[h] for x in X], y, X_valid=[x[h] for x in Xv], y_valid=yv) for h in range(L)
            ]
            alone_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            together = stacked_cls(**common).fit(X, y, X_valid=Xv, y_valid=yv)
            together_s.append(time.perf_counter() - start)
        lines += _compare(kind, alone, together, Xv, yv)
        lines.append(
            f"{kind} probes, {L} hidden states: one at a time {min(alone_s):8.2f} s "
            f"(runs {', '.join(f'{s:.2f}' for s in alone_s)}), all together {min(together_s):8.2f} s "
            f"(runs {', '.join(f'{s:.2f}' for s in together_s)}); epochs per hidden state "
            f"{[r.epochs for r in together.fit_results_]}"
        )
        lines.append(f"{kind} speed-up (one at a time / together): {min(alone_s) / min(together_s):.2f}x")
        times[kind] = (min(alone_s), min(together_s))
    one, all_together = (sum(t[side] for t in times.values()) for side in (0, 1))

    if not args.no_astprobe:
        lines.append(_astprobe(args, [s for s in snippets if s.id in kept], valid_ids, extractor, all_together))
    print("\n".join(lines))
    print(
        f"structural probes (distance + depth), {L} hidden states: one at a time {one:.2f} s, "
        f"all together {all_together:.2f} s"
    )
    print(f"speed-up (one at a time / together): {one / all_together:.2f}x")


def _compare(kind: str, alone, together, Xv, yv) -> list[str]:
    """Per hidden state: the same B (float rounding: batched products sum in another order,
    which Adam's steps carry on), the same best epoch, the same validation scores."""
    out = []
    scores = together.evaluate(Xv, yv)
    worst_b = worst_score = 0.0
    for h, (probe, stacked_score) in enumerate(zip(alone, scores)):
        record, stacked_record = probe.fit_result_, together.fit_results_[h]
        assert record.best_epoch == stacked_record.best_epoch and record.epochs == stacked_record.epochs, (
            f"{kind}, hidden state {h}: epochs {record.best_epoch}/{record.epochs} alone, "
            f"{stacked_record.best_epoch}/{stacked_record.epochs} stacked"
        )
        np.testing.assert_allclose(together.proj_[h], probe.proj_, atol=1e-3, rtol=1e-2)
        worst_b = max(worst_b, float(np.abs(together.proj_[h] - probe.proj_).max()))
        single = probe.evaluate([x[h] for x in Xv], yv)
        # Every snippet's scores, not only the corpus figures (the length macro averages may
        # rest on few lengths of a small validation split).
        if kind == "distance":
            a = np.stack([single.uuas_per_snippet, single.dspr])
            b = np.stack([stacked_score.uuas_per_snippet, stacked_score.dspr])
        else:
            a = np.stack([single.nspr, single.root_correct])
            b = np.stack([stacked_score.nspr, stacked_score.root_correct])
        np.testing.assert_allclose(b, a, atol=1e-3)
        worst_score = max(worst_score, float(np.nanmax(np.abs(a - b))))
        a, b = np.nanmean(a, axis=1), np.nanmean(b, axis=1)
        names = ("UUAS", "DSpr") if kind == "distance" else ("NSpr", "root accuracy")
        out.append(
            f"  {kind} hidden state {h}: best epoch {record.best_epoch} of {record.epochs} on both; validation "
            + ", ".join(f"{n} {x:.4f} / {z:.4f}" for n, x, z in zip(names, a, b))
            + " (alone / together, means over snippets)"
        )
    out.append(
        f"{kind}: same probes: largest |B difference| {worst_b:.2e}, largest difference of a snippet's validation score {worst_score:.2e}"
    )
    return out


def _astprobe(args, snippets, valid_ids, extractor, structural_s: float) -> str:
    """AST-Probe's training on the same functions, all hidden states together (its cache built
    first, untimed)."""
    from codeprobe.probes.astprobe import LabelVocab, TrainConfig, fit_many, prepare_split

    config = replace(TrainConfig(), threads=args.threads)
    with tempfile.TemporaryDirectory() as cache_root:
        train = prepare_split([s for s in snippets if s.id not in valid_ids], "python", extractor, cache_root)
        valid = prepare_split([s for s in snippets if s.id in valid_ids], "python", extractor, cache_root)
        vocabs = (LabelVocab.build(t.c for t in train.tuples), LabelVocab.build(t.u for t in train.tuples))
        states = range(train.cache.n_states)
        start = time.perf_counter()
        results = fit_many(
            [train.data(h) for h in states],
            [valid.data(h) for h in states],
            {"python": vocabs},
            ASTPROBE_RANK,
            config=config,
            random_state=args.seed,
        )
        elapsed = time.perf_counter() - start
    return (
        f"AST-Probe, {len(train)} + {len(valid)} functions, {len(states)} hidden states together (fit_many, rank "
        f"{ASTPROBE_RANK}, its default training): {elapsed:8.2f} s, epochs {[len(r.history) for r in results]}; "
        f"structural (distance + depth, together) / AST-Probe: {structural_s / elapsed:.2f}x"
    )


def _reasons(skipped) -> str:
    counts: dict[str, int] = {}
    for _, reason in skipped:
        counts[reason] = counts.get(reason, 0) + 1
    return ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items())) or "none"


if __name__ == "__main__":
    main()
