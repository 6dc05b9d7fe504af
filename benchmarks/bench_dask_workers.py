"""Benchmark: `codeprobe run --workers N` (a local Dask cluster of N worker processes) against
the same run on one process's threads, as users run both: the CLI, each in a child process, on
the same config (the main job's methods and model over `--n` Python standard-library functions)
into fresh run folders.

Printed: each side's wall time and the steps each worker ran (summary.json's `execution`), then
whether the two summaries hold identical numbers (everything but where and how long they ran),
and the ratio of wall times (Dask / threads) last. On a 2-core machine two worker processes
share the cores the threads already use and each loads the model, so no speed-up is expected
there; the ratio shows what the processes cost.

Usage: python benchmarks/bench_dask_workers.py [--n 300] [--workers 2] [--shard-size 50]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NOT_RESULTS = {"run", "seconds", "stages", "execution", "versions"}


def run_cli(config: Path, out: Path, workers: int | None) -> float:
    cli = Path(sys.executable).with_name("codeprobe")  # the entry point of this environment
    cmd = [str(cli), "run", "--config", str(config), "--out", str(out)]
    if workers:
        cmd += ["--workers", str(workers)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="standard-library functions")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shard-size", type=int, default=50)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp, "config.json")
        config.write_text(
            json.dumps({"data": {"n_snippets": args.n}, "extraction": {"shard_size": args.shard_size}}),
            encoding="utf-8",
        )
        walls, summaries = {}, {}
        for side, workers in (("threads", None), (f"dask x{args.workers}", args.workers)):
            out = Path(tmp, side.replace(" ", "-"))
            walls[side] = run_cli(config, out, workers)
            summaries[side] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
            execution = summaries[side]["execution"]
            print(f"{side:>10}: {walls[side]:7.1f} s wall  ({execution['task_runner']})")
            for step, counts in execution["steps"].items():
                print(f"{'':12}{step:<22} " + ", ".join(f"{w}: {n}" for w, n in counts.items()))
        a, b = ({k: v for k, v in s.items() if k not in NOT_RESULTS} for s in summaries.values())
        print(f"identical summary numbers: {a == b}")
        threads, dask = walls.values()
        print(f"wall time, dask x{args.workers} / threads: {dask / threads:.2f}")


if __name__ == "__main__":
    main()
