"""Benchmark: what attention-head relations add to the main job's CAT stage.

The heads method reads the per-head token attention CAT-probing's forward pass already pools
(`AttentionShare`), so its cost there is the scoring alone: relation edges, top-k hits, SAS,
the random-attention and rule baselines, per snippet. Both sides are `codeprobe run` itself, in
child processes (as `bench_mainjob.py` runs it), over the same standard-library functions (the
main job's data, `data.n_snippets` N), AST-Probe off:
- without heads: `{"heads": null}`;
- with heads (the default settings): its CAT stage now also scores the relations; its own
  stage ("Attention-head relations") is the random-weights model's forward pass over the
  validation and test snippets and the reduce (selection, bootstrap intervals), printed apart:
  a second model's pass, not the reading of this one's.
Runs alternate (without, with, without, with, ...: `--repeats`) and each side's CAT stage is its
fastest, since the machine's other work only ever adds time.

Printed: each run's stages and CPU time, then the extra CAT-stage time and its ratio to the CAT
stage without heads, last. Target: at most 10%.

Usage: python benchmarks/bench_heads.py [--n 1000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_mainjob import codeprobe_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="standard-library functions (the main job's 1,000)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each side, alternating")
    args = parser.parse_args()
    sides = {
        "without heads": {"data": {"n_snippets": args.n}, "astprobe": None, "heads": None},
        "with heads": {"data": {"n_snippets": args.n}, "astprobe": None},
    }
    stages: dict[str, list[float]] = {name: [] for name in sides}
    heads_stage: list[float] = []
    for r in range(args.repeats):
        for name, config in sides.items():
            with tempfile.TemporaryDirectory() as tmp:
                run = codeprobe_run(Path(tmp), config)
            cat = run["stages"]["CAT-probing"]
            stages[name].append(cat)
            if "Attention-head relations" in run["stages"]:
                heads_stage.append(run["stages"]["Attention-head relations"])
            print(
                f"run {r + 1} {name:<13}: wall {run['wall']:6.1f} s, user {run['user']:6.1f} s, system "
                f"{run['system']:5.1f} s; stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in run["stages"].items())
            )
    without, with_heads = min(stages["without heads"]), min(stages["with heads"])
    extra = with_heads - without
    print(f"{args.n} stdlib functions; fastest CAT stage of {args.repeats} runs per side")
    print(f"  CAT stage without heads: {without:.1f} s (all: {', '.join(f'{s:.1f}' for s in stages['without heads'])})")
    print(f"  CAT stage with heads:    {with_heads:.1f} s (all: {', '.join(f'{s:.1f}' for s in stages['with heads'])})")
    print(
        f"  heads' own stage (the random-weights model's pass over validation + test, the reduce): "
        f"{min(heads_stage):.1f} s"
    )
    print(f"extra CAT-stage time / CAT stage: {extra:.1f} s / {without:.1f} s = {extra / without:.1%} (target <= 10%)")


if __name__ == "__main__":
    main()
