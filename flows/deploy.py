"""Scheduled runs: serve the probing flow as a Prefect deployment on a cron schedule.

    prefect server start                                   # once, in its own terminal
    PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.deploy --cron "0 3 * * 0"

`--out` may hold strftime fields (the default does), so each scheduled run gets its own folder;
a run folder with no fields is resumed by every run, recomputing only what changed.
"""

from __future__ import annotations

import argparse

from codeprobe.allocator import limit_heap_growth
from codeprobe.pipeline.config import ConfigError, RunConfig
from codeprobe.pipeline.flow import probing_flow

DEFAULT_NAME = "weekly"
DEFAULT_CRON = "0 3 * * 0"  # Sundays, 03:00
DEFAULT_OUT = "runs/scheduled-%Y%m%d-%H%M"


def deployment(
    name: str = DEFAULT_NAME, cron: str = DEFAULT_CRON, config: RunConfig | None = None, out_dir: str = DEFAULT_OUT
):
    """The probing flow as a deployment with a cron schedule (not yet applied or served)."""
    return probing_flow.to_deployment(
        name=name,
        cron=cron,
        parameters={"config": (config or RunConfig()).to_dict(), "out_dir": out_dir},
        description="codeprobe: CAT-probing and AST-Probe over models x languages x datasets",
        tags=["codeprobe"],
    )


def main(argv: list[str] | None = None) -> None:
    from prefect import serve

    parser = argparse.ArgumentParser(description="Serve the codeprobe probing flow on a schedule.")
    parser.add_argument("--name", default=DEFAULT_NAME)
    parser.add_argument("--cron", default=DEFAULT_CRON, help=f"cron schedule (default {DEFAULT_CRON!r})")
    parser.add_argument("--config", help="RunConfig JSON file (default: the main job's settings)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="run folder; strftime fields allowed")
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        help="probe this model (or checkpoint folder) instead of the config's; repeatable",
    )
    args = parser.parse_args(argv)
    try:
        config = RunConfig.read(args.config) if args.config else None
        if args.model:
            config = (config or RunConfig()).with_changes(models=tuple(args.model))
    except ConfigError as err:
        parser.exit(2, f"codeprobe: error: {err}\n")
    limit_heap_growth()  # scheduled runs in this process: memory flat in the number of snippets
    serve(deployment(args.name, args.cron, config, args.out))


if __name__ == "__main__":
    main()
