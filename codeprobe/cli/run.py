"""`codeprobe run`: the main job, and `codeprobe report`: render or compare finished runs."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("run")
@click.option(
    "--out",
    "out_dir",
    default="runs/main",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Run folder (rerunning into the same folder resumes and reuses finished work).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, exists=True),
    help="A RunConfig JSON file (default: the main job's settings).",
)
@click.option(
    "--model",
    "models",
    multiple=True,
    help="Probe this model instead of the config's (repeatable): a model folder, a folder of "
    "training checkpoints (checkpoint-<step>/), or a glob of checkpoints.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Run the steps on a local Dask cluster of this many worker processes (each loads the "
    "model once; with CUDA and dask-cuda installed, one GPU each). Needs prefect-dask.",
)
@click.option(
    "--dask",
    "dask_address",
    metavar="ADDRESS",
    help="Run the steps on the workers of this Dask scheduler (tcp://host:8786); every worker "
    "must see the run folder, model and data at the same paths. Needs prefect-dask.",
)
def run_command(
    out_dir: str, config_path: str | None, models: tuple[str, ...], workers: int | None, dask_address: str | None
) -> None:
    """Run the main job: CAT-probing, AST-Probe, attention-head relations, the structural probes
    and the diagnostic classifiers of the packaged default model (a text model, all-MiniLM-L6-v2)
    on Python standard-library functions, with baselines and a report. See docs/scaling.md for
    --workers and --dask."""
    from codeprobe.errors import InputError
    from codeprobe.pipeline.config import RunConfig
    from codeprobe.pipeline.experiment import check_run
    from codeprobe.pipeline.runners import Workers, check_scheduler, quiet_dask, task_runner
    from codeprobe.pipeline.server import check_prefect_server

    try:
        placement = Workers(n=workers, address=dask_address)
        task_runner(placement)  # prefect-dask installed, GPUs enough: one line, before any work
    except InputError as err:
        raise click.UsageError(str(err)) from None
    if placement.uses_dask:
        click.echo(f"codeprobe: steps will run on {placement.describe()}; checking the run first", err=True)
        quiet_dask()

    # A bad config is one line and exit 2 (ConfigError), before the server or any work starts.
    config = RunConfig.read(config_path) if config_path else RunConfig()
    if models:
        config = config.with_changes(models=models)
    check_run(config, out_dir)  # model, data, languages, run folder: one line, before any server
    if placement.address is not None:
        check_scheduler(placement.address)  # one line in seconds, before a server or the folder
    check_prefect_server()  # a server that cannot start fails in seconds
    report = _run_main_job(out_dir, config, placement)
    click.echo(f"report: {report}")
    click.echo(f"interactive report: {Path(report).with_suffix('.html')}")


def _run_main_job(out_dir: str, config, workers) -> str:
    """`main_job`, stopped within seconds by Ctrl-C or SIGTERM: the steps' threads stop within a
    batch (`codeprobe.interrupt`), the temporary Prefect server, in its own session, hears how
    the run ended, and the user reads one line, last, saying what finished and how to resume;
    the exit status is the shell's for the signal, 130 (SIGINT) or 143 (SIGTERM). A second signal
    exits at once. Finished steps are on disk, each recording its key, so a rerun resumes."""
    import signal
    import sys

    from codeprobe.interrupt import exit_status, handle_signals, stop_requested

    try:
        with handle_signals():
            from codeprobe.pipeline.flow import main_job

            return main_job(out_dir, config, workers)
    except BaseException as err:
        # Prefect reports an interrupt its own way at times (its SIGTERM handler raises a
        # TerminationSignal, a BaseException): a stop request marks every interrupt.
        if not (isinstance(err, KeyboardInterrupt) or stop_requested()):
            raise
        from codeprobe.pipeline.steps import finished_steps

        done = finished_steps()
        what = ", ".join(f"{n} {name}" for name, n in sorted(done.items()))
        finished = f"{sum(done.values())} steps finished ({what})" if done else "no step finished"
        click.echo(f"codeprobe: interrupted: {finished}; rerun the same command to resume", err=True)
        sys.exit(exit_status(default=getattr(err, "signal", signal.SIGINT)))


@click.command("report")
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True))
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False),
    help="Where to write the report (default: RUN/report.md for one run, ./comparison.md for several).",
)
def report_command(runs: tuple[str, ...], out_path: str | None) -> None:
    """Render the report of a finished run, or compare several (one curve per model and run):
    Markdown with PNG plots, and the interactive HTML page beside it (same name, .html)."""
    from codeprobe.pipeline.report import render_report, write_report_html

    paths = [Path(r) for r in runs]
    default = paths[0] / "report.md" if len(paths) == 1 else Path("comparison.md")
    try:
        out = render_report(paths, Path(out_path) if out_path else default)
        page = write_report_html(paths, out.with_suffix(".html"))
    except FileNotFoundError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"report: {out}")
    click.echo(f"interactive report: {page}")
