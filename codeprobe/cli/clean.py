"""`codeprobe clean RUN`: drop what only a finished run's steps needed, keeping its results and
reports (`codeprobe.pipeline.clean`)."""

from __future__ import annotations

import click


@click.command("clean")
@click.argument("run", type=click.Path(file_okay=False, exists=True))
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
def clean_command(run: str, dry_run: bool) -> None:
    """Remove a finished run's intermediates: CAT-probing's shards and hidden-state stores and
    AST-Probe's hidden-state caches (RUN/cache/). Results, reports, plots, prepared data and
    saved probes stay; rerunning the same config recomputes nothing. A rerun with other
    settings runs the model again where the caches would have spared it."""
    from codeprobe.pipeline.clean import clean_run

    cleaning = clean_run(run, dry_run=dry_run)
    for path in cleaning.paths:
        click.echo(f"{'would remove' if dry_run else 'removed'} {path}")
    verb = "would free" if dry_run else "freed"
    click.echo(f"{len(cleaning.paths)} files and folders, {verb} {cleaning.n_bytes / 2**20:.1f} MiB")
