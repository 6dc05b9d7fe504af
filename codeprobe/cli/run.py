"""`codeprobe run`: the main job."""

from __future__ import annotations

from importlib.resources import files

import click

from codeprobe.syntax import ast_distance, parse, uast_distance


@click.command("run")
def run_command() -> None:
    """Run the main job: parse the bundled example and print its token distances."""
    example = files("codeprobe.examples").joinpath("maximum.py")
    code = example.read_text(encoding="utf-8")
    tree = parse(code, "python", strict=True)
    tokens = tree.tokens()
    click.echo(f"# {example.name}: {len(tokens)} tokens ({tree.grammar.package} {tree.grammar.package_version})")
    click.echo(code.rstrip())
    labels = [f"{k}:{t}" for k, t in enumerate(tokens.texts)]
    for title, matrix in (("AST distance", ast_distance(tokens)), ("U-AST distance", uast_distance(tokens))):
        click.echo(f"\n{title}")
        width = max(len(label) for label in labels)
        click.echo(" " * width + " " + " ".join(f"{k:>2}" for k in range(len(labels))))
        for label, row in zip(labels, matrix):
            click.echo(f"{label:>{width}} " + " ".join(f"{d:>2}" for d in row))
