"""Benchmark: `codeprobe run` against the model's own forward pass, and the main job.

1. CAT-probing as users run it: `codeprobe run` itself, in a child process (its entry point,
   its allocator setting, its Prefect flow and task runner), with `{"data": {"n_snippets": N},
   "astprobe": null}`, at each N of `--n` (default 500 and 3,000). Its CAT stage is the time
   the run records for it (summary.json's `stages`: parsing, distances, extraction, pooling,
   per-head and head-mean scores, shard files, the reduce with bootstrap intervals and the
   result tables). Against it, a bare forward pass of the same model over the same functions
   (the run's own data folder), in a child process of its own with glibc's default allocator
   (`--limit-heap`: set as codeprobe's entry points set it):
   attentions and hidden states, the same batch size and input cut (256 subwords, specials
   included), shard by shard, its batches sorted by length (tokenisation not timed). Printed
   per side: wall, user and system CPU time (the command's whole, Prefect's server included,
   for the run; the forward loop's for the bare pass), the system share of CPU time and the
   peak RSS; then the run folder's size, and the ratio CAT stage / bare last.
   Targets: CAT stage <= 1.2x bare at 3,000 snippets; system time < 10% of CPU time.
2. `--main-job`: the default main job (`codeprobe run`, probes trained to convergence) into a
   fresh folder, as a child process: every stage's time, wall, user and system time, peak RSS
   and the run folder's size. Target: within 5 minutes on an idle 2-core CPU.
3. `--memory N [N ...]`: peak RSS of CAT-probing over N standard-library functions (cycled with
   new ids beyond the 16,000 there are), one fresh process per N; the ratio of the largest to
   the smallest shows whether memory grows with the number of snippets. `--limit-heap`: with
   glibc's allocator set as codeprobe's entry points set it (`codeprobe.allocator`).

On a shared machine, wall times move with the other work; CPU times (user + system) much less.

Usage: python benchmarks/bench_mainjob.py [--n 500 3000] [--batch-size 16] [--limit-heap]
       [--main-job] [--memory 2000 20000] [--skip-cat]
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


def _mib(kib: int) -> float:
    return kib / 1024


def _tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def codeprobe_run(out: Path, config: dict | None) -> dict:
    """Run `codeprobe run --out out [--config ...]` as a child process (the console script's
    entry point, as a user starts it); its wall time, its resource usage (the command's own and
    its waited-for children's: Prefect's temporary server), its summary's stage times and the
    run folder's size."""
    cmd = [sys.executable, "-c", "from codeprobe.cli import main; main()", "run", "--out", str(out / "run")]
    if config is not None:
        (out / "config.json").write_text(json.dumps(config))
        cmd += ["--config", str(out / "config.json")]
    with open(out / "run.log", "w") as log:
        t0 = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"codeprobe run failed ({out / 'run.log'}):\n{(out / 'run.log').read_text()[-3000:]}")
    summary = json.loads((out / "run" / "summary.json").read_text())
    return {
        "wall": wall,
        "user": usage.ru_utime,
        "system": usage.ru_stime,
        "peak_mib": _mib(usage.ru_maxrss),
        "stages": summary["stages"],
        "flow": summary["seconds"],
        "folder_mib": _tree_bytes(out / "run") / 2**20,
    }


_BARE_CHILD = """
import json, resource, sys, time
if sys.argv[6] == "limit-heap":
    from codeprobe.allocator import limit_heap_growth
    limit_heap_growth()
sys.path.insert(0, sys.argv[1])
from bench_mainjob import bare_forward
from codeprobe.pipeline.data import read_snippets
from codeprobe.pipeline.steps import loaded_model
data_dir, batch_size, max_subwords, shard_size = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
snippets = read_snippets(data_dir)
loaded = loaded_model("default", None)
r0, seconds = resource.getrusage(resource.RUSAGE_SELF), 0.0
for k in range(0, len(snippets), shard_size):
    seconds += bare_forward(loaded, [s.code for s in snippets[k : k + shard_size]], batch_size, max_subwords)
r1 = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": seconds, "user": r1.ru_utime - r0.ru_utime, "system": r1.ru_stime - r0.ru_stime,
                  "peak_mib": r1.ru_maxrss / 1024, "n": len(snippets)}))
"""


def bare_side(data_dir: Path, batch_size: int, max_subwords: int, shard_size: int, limit_heap: bool = False) -> dict:
    """The bare forward pass over the snippets of `data_dir`, shard by shard, in a fresh child
    process with glibc's default allocator (what a user's own torch loop gets; `limit_heap`:
    set as codeprobe's entry points set it); its forward loop's wall (model calls only), user
    and system time, and the process's peak RSS."""
    heap = "limit-heap" if limit_heap else "default"
    args = [str(Path(__file__).parent), str(data_dir), str(batch_size), str(max_subwords), str(shard_size), heap]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    child = subprocess.run([sys.executable, "-c", _BARE_CHILD, *args], capture_output=True, text=True, env=env)
    if child.returncode:
        sys.exit(f"the bare forward pass failed:\n{child.stderr[-3000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def _cpu(side: dict) -> str:
    cpu = side["user"] + side["system"]
    return (
        f"user {side['user']:7.1f} s, system {side['system']:6.1f} s "
        f"({100 * side['system'] / max(cpu, 1e-9):4.1f}% of CPU), peak RSS {side['peak_mib']:6.0f} MiB"
    )


def cat_speed(args) -> None:
    from codeprobe.pipeline.config import RunConfig

    cfg = RunConfig(batch_size=args.batch_size)
    max_subwords, shard_size = cfg.cat.max_subwords, cfg.extraction.shard_size
    ratios = {}
    for n in args.n:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            config = {
                "data": {"n_snippets": n},
                "astprobe": None,
                "heads": None,
                "extraction": {"batch_size": args.batch_size},
            }
            load_before = os.getloadavg()[0]
            run = codeprobe_run(out, config)
            data_dir = next((out / "run" / "data").iterdir())
            bare = bare_side(data_dir, args.batch_size, max_subwords, shard_size, args.limit_heap)
            cat = run["stages"]["CAT-probing"]
            ratios[n] = cat / bare["wall"]
            print(
                f"{bare['n']} stdlib functions, batch {args.batch_size}, input cut at {max_subwords} subwords, "
                f"shards of {shard_size}; load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
            )
            print(f"  bare forward pass:       wall {bare['wall']:7.1f} s, {_cpu(bare)}")
            print(
                f"  codeprobe run (command): wall {run['wall']:7.1f} s, {_cpu(run)}; stages: "
                + ", ".join(f"{k} {v:.1f} s" for k, v in run["stages"].items())
            )
            print(f"  run folder: {run['folder_mib']:.1f} MiB")
            print(
                f"  ratio CAT stage / bare forward pass at {bare['n']}: {cat:.1f} s / {bare['wall']:.1f} s = "
                f"{ratios[n]:.2f}x (target <= 1.2x)"
            )
    print("ratio CAT stage / bare: " + ", ".join(f"{r:.2f}x at {n}" for n, r in ratios.items()) + " (target <= 1.2x)")


def main_job(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = codeprobe_run(Path(tmp), None)
        for stage, seconds in run["stages"].items():
            print(f"  stage {stage:<14} {seconds:8.1f} s")
        print(f"  flow (experiment)    {run['flow']:8.1f} s")
        print(f"  whole command: wall {run['wall']:.1f} s, {_cpu(run)}")
        print(f"  run folder: {run['folder_mib']:.1f} MiB")
        print(f"main job, whole command (with Prefect's temporary server): {run['wall']:.1f} s (target <= 300 s)")


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
    parser.add_argument("--n", type=int, nargs="+", default=[500, 3000])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--main-job", action="store_true")
    parser.add_argument("--memory", type=int, nargs="*", default=[])
    parser.add_argument("--skip-cat", action="store_true")
    parser.add_argument(
        "--limit-heap",
        action="store_true",
        help="--memory children and the bare forward pass call codeprobe.allocator.limit_heap_growth "
        "first, as the CLI does (the bare pass: glibc's defaults otherwise)",
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
