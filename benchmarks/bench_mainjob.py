"""Benchmark: the pipeline against the model's own forward pass, and the main job's stages.

1. CAT-probing over a dataset (the pipeline's steps: parsing, distances, extraction, alignment,
   pooling, per-head and head-mean scores, shard files, then the reduce: bootstrap intervals
   and the result tables), against a bare forward pass of the same model over the same
   snippets, with attentions and hidden states, the same batch size and the same input cut
   (256 subwords, specials included), its batches sorted by length (tokenisation not timed).
   The pipeline runs twice: as `codeprobe run` with `astprobe` off (the target's definition),
   and as the default run, whose pass also stores AST-Probe's token hidden states of every snippet.
   All sides run shard by shard, alternating, so drift in machine speed hits them alike; the
   data preparation (sampling, splitting) is the run's fixed start-up and is not timed.
   Target: CAT-probing <= 1.2x bare.
2. `--main-job`: the default main job (`codeprobe run`, probes trained to convergence) into a
   fresh folder, with the time of every stage. Target: within 5 minutes on an idle 2-core CPU.
3. `--memory N [N ...]`: peak RSS of CAT-probing over N standard-library functions (cycled with
   new ids beyond the 16,000 there are), one fresh process per N; the ratio of the largest to
   the smallest shows whether memory grows with the number of snippets. `--limit-heap`: with
   glibc's mmap threshold pinned as codeprobe's entry points pin it (`codeprobe.allocator`).

Usage: python benchmarks/bench_mainjob.py [--n 1000] [--batch-size 16] [--main-job]
       [--memory 2000 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def load(n: int, out: Path):
    """n standard-library functions prepared as the pipeline prepares them (not timed)."""
    from codeprobe.pipeline.data import prepare_data, read_snippets

    data_dir = prepare_data("stdlib", "python", n, 0, str(out / "data"), key=f"bench-{n}")
    return data_dir, read_snippets(data_dir)


def bare_batches(loaded, codes: list[str], batch_size: int, max_subwords: int):
    """(input_ids, attention mask) batches of `codes`, cut at `max_subwords` (specials
    included), sorted by length: the bare forward pass's inputs (built before any timing)."""
    tok = loaded.tokenizer
    budget = max_subwords - len(loaded.prefix_ids) - len(loaded.suffix_ids)
    ids = sorted(
        (
            list(loaded.prefix_ids) + x[:budget] + list(loaded.suffix_ids)
            for x in tok(codes, add_special_tokens=False)["input_ids"]
        ),
        key=len,
    )
    batches = []
    for start in range(0, len(ids), batch_size):
        batch = ids[start : start + batch_size]
        n = max(len(x) for x in batch)
        input_ids = torch.full((len(batch), n), loaded.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), n), dtype=torch.long)
        for i, x in enumerate(batch):
            input_ids[i, : len(x)] = torch.tensor(x)
            mask[i, : len(x)] = 1
        batches.append((input_ids, mask))
    return batches


def bare_forward(loaded, codes: list[str], batch_size: int, max_subwords: int) -> float:
    """Seconds of model(...) with attentions and hidden states over `codes`, in batches sorted
    by length, input cut at `max_subwords` (tokenisation done first, not timed)."""
    seconds = 0.0
    for input_ids, mask in bare_batches(loaded, codes, batch_size, max_subwords):
        t0 = time.perf_counter()
        with torch.inference_mode():
            loaded.model(
                input_ids=input_ids.to(loaded.device),
                attention_mask=mask.to(loaded.device),
                output_attentions=True,
                output_hidden_states=True,
                return_dict=True,
            )
        seconds += time.perf_counter() - t0
    return seconds


def cat_speed(args) -> None:
    from codeprobe.pipeline.config import RunConfig
    from codeprobe.pipeline.methods.cat.steps import cat_reduce, cat_shard, step_settings
    from codeprobe.pipeline.steps import loaded_model

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        data_dir, snippets = load(args.n, out)
        cfg = RunConfig(batch_size=args.batch_size)
        shared = step_settings(cfg, "python")  # the default run: CAT's pass stores AST-Probe's hidden states
        sides = {"CAT only": step_settings(cfg.with_changes(astprobe=None), "python"), "shared pass": shared}
        loaded = loaded_model("default", None)
        max_subwords, shard_size = cfg.cat.max_subwords, cfg.extraction.shard_size
        print(
            f"model: {loaded.info.name} ({loaded.info.n_layers} layers), {len(snippets)} stdlib functions, "
            f"batch {args.batch_size}, input cut at {max_subwords} subwords, per-head scores "
            f"{'on' if shared['cat']['per_head'] else 'off'}, torch threads {torch.get_num_threads()}, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        n_shards = -(-len(snippets) // shard_size)
        bare = 0.0
        seconds = dict.fromkeys(sides, 0.0)
        reduce_seconds = dict.fromkeys(sides, 0.0)
        paths: dict[str, list[str]] = {name: [] for name in sides}
        for k in range(n_shards):
            shard = snippets[k * shard_size : (k + 1) * shard_size]
            bare += bare_forward(loaded, [s.code for s in shard], args.batch_size, max_subwords)
            for name, settings in sides.items():
                t0 = time.perf_counter()
                paths[name].append(
                    cat_shard(
                        "default",
                        "python",
                        data_dir,
                        k,
                        shard_size,
                        settings,
                        str(out / name / f"shard-{k:04d}.npz"),
                        f"bench-{k}",
                    )
                )
                seconds[name] += time.perf_counter() - t0
        for name, settings in sides.items():
            t0 = time.perf_counter()
            cat_reduce("default", "python", paths[name], settings, str(out / name), "bench-reduce")
            reduce_seconds[name] = time.perf_counter() - t0
            seconds[name] += reduce_seconds[name]
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        print(f"bare forward (attentions + hidden states):                    {bare:8.2f} s")
        print(
            f"pipeline, shared pass (AST-Probe's hidden states stored too): {seconds['shared pass']:8.2f} s "
            f"(reduce {reduce_seconds['shared pass']:.2f} s): {seconds['shared pass'] / bare:.2f}x bare"
        )
        print(
            f"codeprobe CAT-probing pipeline (astprobe off):                {seconds['CAT only']:8.2f} s "
            f"(reduce {reduce_seconds['CAT only']:.2f} s)"
        )
        print(f"ratio CAT-probing / bare: {seconds['CAT only'] / bare:.2f}x (target <= 1.2x)")


def main_job(args) -> None:
    from codeprobe.pipeline.flow import main_job as run_main_job

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run_main_job(str(Path(tmp) / "run"))
        total = time.perf_counter() - t0
        summary = json.loads((Path(tmp) / "run" / "summary.json").read_text())
        for stage, seconds in summary["stages"].items():
            print(f"  stage {stage:<14} {seconds:8.1f} s")
        print(f"  flow (experiment)    {summary['seconds']:8.1f} s")
        print(f"main job, whole command (with Prefect's temporary server): {total:.1f} s (target <= 300 s)")


_MEMORY_CHILD = """
import resource, sys
from dataclasses import replace
if sys.argv[2] == "limit-heap":
    from codeprobe.allocator import limit_heap_growth
    limit_heap_growth()
from codeprobe.datasets import load_dataset, SkipCounter
from codeprobe.probes.cat.probe import CATProbe
n = int(sys.argv[1])
base = [s for s in load_dataset("stdlib", "python", counter=SkipCounter()) if len(s.code) < 20000]
snippets = (replace(base[i % len(base)], id=f"{base[i % len(base)].id}#{i}") for i in range(n))
result = CATProbe(types="paper").score(snippets, language="python")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, len(result.samples))
"""


def memory(args) -> None:
    peaks = {}
    for n in args.memory:
        heap = "limit-heap" if args.limit_heap else "default"
        child = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(n), heap], capture_output=True, text=True)
        if child.returncode:
            sys.exit(f"the {n}-snippet run failed:\n{child.stderr[-3000:]}")
        out = child.stdout.split()
        peaks[n] = int(out[0])
        print(f"CAT-probing {n:>6} snippets: peak RSS {peaks[n]} MiB ({out[1]} rows)")
    lo, hi = min(peaks), max(peaks)
    print(f"peak RSS ratio {hi} / {lo} snippets: {peaks[hi] / peaks[lo]:.3f} (target: flat)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--main-job", action="store_true")
    parser.add_argument("--memory", type=int, nargs="*", default=[])
    parser.add_argument("--skip-cat", action="store_true")
    parser.add_argument(
        "--limit-heap",
        action="store_true",
        help="--memory children call codeprobe.allocator.limit_heap_growth first, as the CLI does",
    )
    args = parser.parse_args()
    if args.memory:
        memory(args)
    if args.main_job:
        main_job(args)
    if not args.skip_cat:
        cat_speed(args)


if __name__ == "__main__":
    main()
