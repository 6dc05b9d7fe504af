"""CAT-probing: fast path vs the reference-style loop oracle, on real snippets, all layers.

Both sides start from the same inputs, computed beforehand and not timed: the parsed tree, the
raw float32 subword attention of every layer and head from one forward pass of the model
(default: the packaged MiniLM) and the subwords of each kept token. Both produce, per snippet,
the type-rate counts and the CAT-scores of all layers (`paper` types):

- fast: head mean (a float64 reduction), block-mean pooling by gather and segment sums, U-AST
  distances (syntax core), TypeRateAccumulator.update and score_sample (model score plus both
  baselines, all layers in one call), after one untimed warm-up call (numba kernels compile);
- oracle (tests/oracles/cat.py, shaped like the reference code): per layer, head mean and
  block mean in Python loops for the rate counts, then again block mean, networkx all-pairs BFS
  over every node, and the loop score.

The fast side does more work (both baselines). Scores must agree to 1e-6 and rate counts
exactly; the scores are also checked against the library's own path (attention pooled in
float32 inside the forward pass, CATProbe.score). Prints both per-snippet timings, ratio last.

    python benchmarks/bench_cat.py [--n 100] [--language python|java] [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from codeprobe.model import Extractor, load_model
from codeprobe.probes.cat import PAPER_TYPES, CATSample, TypeRateAccumulator, score_sample
from codeprobe.probes.cat.probe import DEFAULT_MAX_SUBWORDS, CATProbe
from codeprobe.syntax import parse, uast_distance

sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))  # the test oracles: tests/oracles/
from oracles import cat as oracle  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def load_snippets(language: str, n: int) -> list[tuple[str, str]]:
    if language == "python":
        rows = json.loads((SHARED / "cosqa-dev.json").read_text(encoding="utf-8"))
        return [(r["idx"], r["code"]) for r in rows[:n]]
    out = []
    with (SHARED / "csn-java-test-tokens.txt").open(encoding="utf-8") as f:
        for line in f:
            ident, _, code = line.rstrip("\n").partition("\t")
            out.append((ident, code))
            if len(out) == n:
                break
    return out


def pooling_pairs(members):
    """(subword of each pair, first pair of each token, |S_i|) with pairs grouped by token."""
    cols = np.concatenate([np.asarray(s) for s in members])
    sizes = np.array([len(s) for s in members], dtype=np.float64)
    starts = np.concatenate([[0], np.cumsum(sizes[:-1])]).astype(np.intp)
    return cols, starts, sizes


def fast(ident, tree, kept, members, attention, kept_types, rates):
    """The library's per-snippet work for all layers, from raw subword attention."""
    # Head mean accumulated in float64 like the oracle's (in float32, as the extractor pools,
    # cells 1e-10 apart at the 0.75-quantile can swap and move a rate count by one); a plain
    # reduction, which beats casting to float64 first or a mixed-type BLAS product.
    mean = np.add.reduce(attention, axis=1, dtype=np.float64) / attention.shape[1]  # (L, m, m)
    cols, starts, sizes = pooling_pairs(members)
    rows = np.add.reduceat(mean[:, cols, :], starts, axis=1) / sizes[:, None]  # (L, n, m)
    a = np.add.reduceat(rows[:, :, cols], starts, axis=2) / sizes  # (L, n, n) = W A W^T
    tokens = tree.tokens()
    idx = np.asarray(kept)
    d = uast_distance(tokens)[idx[:, None], idx[None, :]]
    types = [tokens.types[i] for i in idx]
    rates.update(types, a)
    return score_sample(CATSample(ident, types, idx, d, a), kept_types)["score"]


def reference(tree, kept, members, attention, kept_types, hits, nums):
    """The reference's per-snippet work: rate pass, then score pass, every layer recomputed."""
    mean = oracle.head_mean(attention)
    types = [tree.type_names[tree.type_ids[v]] for v in (oracle.leaves(tree)[i] for i in kept)]
    token_attention = [oracle.block_mean(mean[layer], members) for layer in range(len(kept_types))]
    num, hit, _ = oracle.type_rates([types], [token_attention])
    nums.update(num)
    for layer, counts in hit.items():
        hits[layer].update(counts)
    scores, _, _ = oracle.snippet_scores(tree, kept, members, attention, kept_types)
    return np.array([np.nan if s is None else s for s in scores])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100, help="snippets (default 100)")
    parser.add_argument("--language", choices=["python", "java"], default="python")
    parser.add_argument("--model", default=None, help="model directory (default: the packaged MiniLM)")
    args = parser.parse_args()

    loaded = load_model(args.model, device="cpu")
    snippets = load_snippets(args.language, args.n)
    n_layers = loaded.info.n_layers
    kept_types = [frozenset(PAPER_TYPES[args.language])] * n_layers

    prepared = []
    for ident, code in snippets:  # the inputs of both sides, not timed
        tree = parse(code, args.language)
        spans = [
            (int(tree.char_offsets[tree.start_byte[v]]), int(tree.char_offsets[tree.end_byte[v]]))
            for v in oracle.leaves(tree)
        ]
        kept, members, attention = oracle.subword_attention(loaded, code, spans, DEFAULT_MAX_SUBWORDS)
        prepared.append((ident, tree, kept, members, attention))
    n_tokens = [len(p[2]) for p in prepared]
    n_sub = [p[4].shape[-1] for p in prepared]
    print(
        f"{len(prepared)} {args.language} snippets, {loaded.info.name} ({n_layers} layers, {loaded.info.n_heads} "
        f"heads), input cut at {DEFAULT_MAX_SUBWORDS} subwords; per snippet: aligned tokens median "
        f"{statistics.median(n_tokens):.0f} (max {max(n_tokens)}), subwords median {statistics.median(n_sub):.0f} "
        f"(max {max(n_sub)})"
    )

    fast(*prepared[0], kept_types, TypeRateAccumulator())  # warm-up: the syntax core's numba kernels compile
    rates = TypeRateAccumulator()
    fast_times, fast_cpu, fast_scores = [], [], {}
    for ident, tree, kept, members, attention in prepared:
        t0, c0 = time.perf_counter(), time.process_time()
        fast_scores[ident] = fast(ident, tree, kept, members, attention, kept_types, rates)
        fast_times.append(time.perf_counter() - t0)
        fast_cpu.append(time.process_time() - c0)

    oracle_times, oracle_cpu, worst = [], [], 0.0
    nums, hits = Counter(), [Counter() for _ in range(n_layers)]
    for ident, tree, kept, members, attention in prepared:
        t0, c0 = time.perf_counter(), time.process_time()
        want = reference(tree, kept, members, attention, kept_types, hits, nums)
        oracle_times.append(time.perf_counter() - t0)
        oracle_cpu.append(time.process_time() - c0)
        assert np.array_equal(np.isnan(want), np.isnan(fast_scores[ident])), ident
        worst = max(worst, float(np.nanmax(np.abs(want - fast_scores[ident]), initial=0.0)))
    table = rates.result()
    rates_equal = dict(zip(table.types, table.num.tolist())) == dict(nums) and all(
        {t: h for t, h in zip(table.types, table.hit[layer].tolist()) if h} == dict(hits[layer])
        for layer in range(n_layers)
    )

    # The library's own path: attention pooled in float32 inside the batched forward pass.
    library = CATProbe(types="paper").score(
        snippets, Extractor(loaded, hidden_states=False, max_subwords=DEFAULT_MAX_SUBWORDS), args.language
    )
    lib_scores = library.samples.score.reshape(len(snippets), n_layers)
    lib_worst = float(np.nanmax(np.abs(lib_scores - np.stack([fast_scores[i] for i, _ in snippets]))))

    print(f"CAT-scores ({args.language}, paper types) by CATProbe.score:")
    print(library.summary.format())
    print(
        f"max |fast - oracle| over {len(prepared)} x {n_layers} scores: {worst:.1e} (must be <= 1e-6); "
        f"rate counts equal: {rates_equal}; max |CATProbe.score - fast|: {lib_worst:.1e}"
    )
    assert worst <= 1e-6 and rates_equal, "fast path and oracle disagree"
    med = statistics.median
    f_med, o_med = med(fast_times), med(oracle_times)
    print("(CPU time counts every thread of this process; wall time also counts waiting for a shared CPU)")
    print(
        f"fast   per snippet, all {n_layers} layers: wall median {f_med * 1e3:9.2f} ms, mean "
        f"{statistics.fmean(fast_times) * 1e3:9.2f} ms; CPU median {med(fast_cpu) * 1e3:9.2f} ms"
    )
    print(
        f"oracle per snippet, all {n_layers} layers: wall median {o_med * 1e3:9.2f} ms, mean "
        f"{statistics.fmean(oracle_times) * 1e3:9.2f} ms; CPU median {med(oracle_cpu) * 1e3:9.2f} ms "
        f"({o_med / n_layers * 1e3:.0f} ms per layer; the spec measured 730 ms per layer for the reference)"
    )
    print(
        f"ratio oracle / fast: wall median {o_med / f_med:.0f}x, wall total {sum(oracle_times) / sum(fast_times):.0f}x, "
        f"CPU median {med(oracle_cpu) / med(fast_cpu):.0f}x; spec reference (730 ms x {n_layers} layers) / fast "
        f"wall median: {0.73 * n_layers / f_med:.0f}x"
    )


if __name__ == "__main__":
    main()
