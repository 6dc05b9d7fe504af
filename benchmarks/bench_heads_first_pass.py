"""Heads scoring per snippet: `HeadsAccumulator.first_pass` against the loop oracle, on real inputs.

Computed beforehand and not timed: standard-library functions (a seeded sample, as the main job
draws them), parsed by codeprobe; the per-head token attention (L, H, n, n) of the packaged
model over the tokens it kept (`CATProbe(types="all", per_head=True).inputs`, one forward pass),
or random attention over all tokens with `--random-attention` (functions of at most 256
tokens); the relation edges (`codeprobe.syntax.relation_edges`) moved onto those tokens
(`on_kept_tokens`). Settings are the pipeline's: ks 1, 3, 10, offsets up to 10, the grammar's
keywords, seed 0.

Timed, all in this process on the same inputs (CPU time; each snippet's fastest of `--repeats`
rounds, the sides alternating, since the machine's other work only ever adds time):
- fast: `HeadsAccumulator.first_pass`, with the random-attention baseline and without;
- previous (`--previous REV`): the first pass of the heads modules at git revision REV (read
  with `git show`, run as modules of their own), its tables checked equal to the fast ones;
- oracle (tests/oracles/heads.py, loops over edges, heads and ks, a sort per row and k): the
  per-edge scores of the model's attention and of the random baseline's rows (`random_rows`,
  the same draws) and the rule hits, summed per relation, on the first `--oracle-n` snippets;
  every table checked equal to the fast pass's (SAS sums to 1e-12).

Prints the per-snippet times, then the ratio oracle / fast last.

    python benchmarks/bench_heads_first_pass.py [--n 100] [--oracle-n 8] [--previous HEAD~1] [--random-attention]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np

from codeprobe.allocator import limit_heap_growth
from codeprobe.datasets import SkipCounter, load_dataset, max_length, parses_cleanly, sample
from codeprobe.datasets.selection import MAX_CHARS
from codeprobe.probes.cat import SkippedSample
from codeprobe.probes.cat.probe import CATProbe
from codeprobe.probes.heads import EdgeArrays, HeadsAccumulator, HeadsSample, on_kept_tokens, random_rows
from codeprobe.probes.heads.baselines import DEFAULT_MAX_OFFSET
from codeprobe.probes.heads.score import DEFAULT_KS, attending_positions
from codeprobe.syntax import keywords, parse, relation_edges

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT / "tests"))  # the test oracles: tests/oracles/
from oracles import heads as oracle  # noqa: E402

HEADS_MODULES = ("edges", "score", "baselines", "scorer")
RANDOM_MAX_TOKENS = 256  # random attention: longer functions are left out


def load_samples(n: int, seed: int, random_attention: bool) -> list[HeadsSample]:
    counter = SkipCounter()
    snippets = sample(
        parses_cleanly(
            max_length(load_dataset("stdlib", "python", counter=counter), counter, max_chars=MAX_CHARS), counter
        ),
        n,
        seed=seed,
        counter=counter,
    )
    out = []
    if random_attention:
        rng = np.random.default_rng(seed)
        for s in snippets:
            tokens = parse(s.code, "python").tokens()
            m = len(tokens)
            if m > RANDOM_MAX_TOKENS:  # about what the model's input cut keeps; (L, H, m, m) grows fast
                continue
            attention = rng.random((6, 12, m, m), dtype=np.float32)
            attention /= attention.sum(axis=-1, keepdims=True)
            out.append(HeadsSample(s.id, attention, EdgeArrays.like(relation_edges(tokens)), list(tokens.texts)))
        return out
    for x in CATProbe(types="all", per_head=True).inputs([(s.id, s.code) for s in snippets], None, "python"):
        if isinstance(x, SkippedSample):
            continue
        kept, _ = on_kept_tokens(relation_edges(x.tokens), x.sample.positions, len(x.tokens))
        out.append(HeadsSample(x.sample.sample_id, np.asarray(x.sample.attention), kept, list(x.labels)))
    return out


def previous_accumulator(rev: str) -> type:
    """`HeadsAccumulator` of the heads modules at git revision `rev`, as modules of their own."""
    for name in HEADS_MODULES:
        source = subprocess.run(
            ["git", "show", f"{rev}:codeprobe/probes/heads/{name}.py"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for other in HEADS_MODULES:
            source = source.replace(f"codeprobe.probes.heads.{other}", f"_previous_heads_{other}")
        module = types.ModuleType(f"_previous_heads_{name}")
        sys.modules[module.__name__] = module  # dataclasses look their module up
        exec(compile(source, f"{rev}:codeprobe/probes/heads/{name}.py", "exec"), module.__dict__)
    return sys.modules["_previous_heads_scorer"].HeadsAccumulator


def oracle_tables(acc: HeadsAccumulator, s: HeadsSample) -> dict[str, np.ndarray]:
    """The tables of `first_pass` from the loop oracle's per-edge scores and rule hits."""
    e = s.edges
    n_layers, n_heads, n, _ = s.attention.shape
    args = (e.relation, e.head, e.dep_start, e.dep_end, acc.ks, acc.causal, acc.exclude_self)
    hits, sas, ok = oracle.edge_scores(s.attention.tolist(), *args)
    attending = attending_positions(e)
    draws = random_rows(
        n_layers * n_heads, attending, n, random_state=acc.random_state, sample_id=s.sample_id, causal=acc.causal
    )
    full = np.zeros((n_layers * n_heads, n, n), dtype=draws.dtype)
    full[:, attending] = draws  # rows of other tokens are never read
    random_hits, random_sas, _ = oracle.edge_scores(full.reshape(n_layers, n_heads, n, n).tolist(), *args)
    rules = oracle.rule_hits(acc.predictors, *args[:4], s.tokens, n, acc.causal, acc.exclude_self)
    codes = np.unique(e.relation)
    per_edge = {
        "q_scorable": np.array(ok, dtype=np.int64),  # (4, E)
        "q_hits": np.array(hits, dtype=np.int64),  # (4, K, L, H, E)
        "q_sas": np.array(sas),  # (2, L, H, E)
        "q_random_hits": np.array(random_hits, dtype=np.int64),
        "q_random_sas": np.array(random_sas),
    }
    tables = {name: np.stack([x[..., e.relation == c].sum(axis=-1) for c in codes]) for name, x in per_edge.items()}
    tables["q_hits"], tables["q_random_hits"] = (tables[k].astype(np.uint16) for k in ("q_hits", "q_random_hits"))
    tables["q_relation"] = codes
    tables["q_edges"] = np.array([(e.relation == c).sum() for c in codes])
    tables["e_relation"] = e.relation
    tables["e_rules"] = np.packbits(np.moveaxis(np.array(rules, dtype=bool), -1, 0), axis=-1)
    return tables


def check_equal(got: dict[str, np.ndarray], want: dict[str, np.ndarray], what: str) -> float:
    """Asserts the tables of `want` are in `got` (weights to 1e-12); returns the largest weight difference."""
    worst = 0.0
    for name, x in want.items():
        y = got[name]
        assert y.shape == x.shape, (what, name, y.shape, x.shape)
        if name.endswith("sas"):
            worst = max(worst, float(np.abs(y - x).max(initial=0.0)))
            assert worst <= 1e-12, (what, name, worst)
        else:
            assert np.array_equal(y, x), (what, name)
    return worst


def cpu_times(runs: dict[str, Callable], samples: list[HeadsSample], repeats: int) -> dict[str, list[float]]:
    """Per side, each snippet's fastest CPU time (seconds) over `repeats` rounds, sides alternating."""
    best = {name: [float("inf")] * len(samples) for name in runs}
    for _ in range(repeats):
        for i, s in enumerate(samples):
            for name, run in runs.items():
                t0 = time.process_time()
                run(s)
                best[name][i] = min(best[name][i], time.process_time() - t0)
    return best


def describe(name: str, seconds: list[float]) -> str:
    return (
        f"{name:<34} per snippet: mean {statistics.fmean(seconds) * 1e3:7.2f} ms, median "
        f"{statistics.median(seconds) * 1e3:7.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100, help="standard-library functions (default 100)")
    parser.add_argument("--oracle-n", type=int, default=8, help="of them, scored by the oracle too (default 8)")
    parser.add_argument("--repeats", type=int, default=5, help="timing rounds; each snippet's fastest counts")
    parser.add_argument("--previous", metavar="REV", help="also time the first pass at this git revision")
    parser.add_argument("--random-attention", action="store_true", help="random attention instead of the model's")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    limit_heap_growth()  # as the CLI runs: freed arrays reused, not faulted in again

    samples = load_samples(args.n, args.seed, args.random_attention)
    sizes = [s.n_tokens for s in samples]
    edges = [len(s.edges) for s in samples]
    source = "random attention" if args.random_attention else "the packaged model's attention"
    print(
        f"{len(samples)} stdlib functions, {source}, (L, H) = {samples[0].attention.shape[:2]}; per snippet: tokens "
        f"median {statistics.median(sizes):.0f} (max {max(sizes)}), edges median {statistics.median(edges):.0f} "
        f"(max {max(edges)})"
    )
    settings = dict(ks=DEFAULT_KS, max_offset=DEFAULT_MAX_OFFSET, keywords=keywords("python"), random_state=0)
    fast = {rb: HeadsAccumulator(random_baseline=rb, **settings) for rb in (True, False)}
    runs = {f"fast, random baseline {rb}": fast[rb].first_pass for rb in (True, False)}
    if args.previous:
        previous = previous_accumulator(args.previous)
        for rb in (True, False):
            before = previous(random_baseline=rb, **settings)
            runs[f"previous ({args.previous}), random baseline {rb}"] = before.first_pass
            for s in samples:
                check_equal(fast[rb].first_pass(s).tables, before.first_pass(s).tables, f"previous {s.sample_id}")
        print(f"tables of {args.previous}'s first pass equal to the fast ones on all {len(samples)} snippets")
    times = cpu_times(runs, samples, args.repeats)
    for name, seconds in times.items():
        print(describe(name, seconds))
    if args.previous:
        for rb in (True, False):
            old, new = times[f"previous ({args.previous}), random baseline {rb}"], times[f"fast, random baseline {rb}"]
            print(
                f"ratio previous / fast, random baseline {rb}: mean {statistics.fmean(old) / statistics.fmean(new):.1f}x, "
                f"median {statistics.median(old) / statistics.median(new):.1f}x"
            )

    checked = [s for s in samples if len(s.edges)][: args.oracle_n]
    t0 = time.process_time()
    want = [oracle_tables(fast[True], s) for s in checked]
    oracle_seconds = time.process_time() - t0
    worst = max(check_equal(fast[True].first_pass(s).tables, w, f"oracle {s.sample_id}") for s, w in zip(checked, want))
    fast_seconds = sum(times["fast, random baseline True"][: len(checked)])
    print(
        f"oracle on the first {len(checked)} snippets with edges (tokens {[s.n_tokens for s in checked]}): all tables equal, "
        f"max |SAS sum difference| {worst:.1e}; {oracle_seconds / len(checked) * 1e3:.0f} ms per snippet, fast "
        f"{fast_seconds / len(checked) * 1e3:.2f} ms"
    )
    print(f"ratio oracle / fast (random baseline on): {oracle_seconds / fast_seconds:.0f}x")


if __name__ == "__main__":
    main()
