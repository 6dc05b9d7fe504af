"""The `codeprobe` command line. Each subcommand lives in its own module of this package."""

from __future__ import annotations

import logging
import sys

import click

from codeprobe import __version__
from codeprobe.errors import CodeprobeError


class _Group(click.Group):
    """Turns codeprobe's typed errors into a one-line message and exit status 2 (bad input),
    or the error's own `exit_status` (a full disk: 74, EX_IOERR, so a script tells "free space
    and rerun" from "fix the input")."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CodeprobeError as err:
            click.echo(f"codeprobe: error: {err}", err=True)
            sys.exit(getattr(err, "exit_status", 2))


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="codeprobe")
@click.option("-v", "--verbose", count=True, help="More log output on standard error.")
def main(verbose: int) -> None:
    """Probe what code models know about syntax (tree-sitter ASTs, CAT-probing, AST-Probe)."""
    from codeprobe.allocator import limit_heap_growth

    limit_heap_growth()  # a dataset run's peak memory stays flat in the number of snippets
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


# Subcommands, one module each.
from codeprobe.cli.astprobe import astprobe_group  # noqa: E402
from codeprobe.cli.cat import cat_command  # noqa: E402
from codeprobe.cli.clean import clean_command  # noqa: E402
from codeprobe.cli.heads import heads_command  # noqa: E402
from codeprobe.cli.parse import parse_command  # noqa: E402
from codeprobe.cli.run import report_command, run_command  # noqa: E402
from codeprobe.cli.structural import structural_group  # noqa: E402

for _command in (
    parse_command,
    cat_command,
    heads_command,
    astprobe_group,
    structural_group,
    run_command,
    report_command,
    clean_command,
):
    main.add_command(_command)
