"""`codeprobe parse`: the code tokens of one snippet (and, with --json, both distance matrices, the
relation edges and the token tree)."""

from __future__ import annotations

import click

from codeprobe.cli.common import echo_json, file_argument, lang_option, read_source, resolve_language
from codeprobe.syntax import ast_distance, parse, relation_edges, token_tree, uast_distance


@click.command("parse")
@file_argument
@lang_option
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object with tokens, distances, relation edges and the token tree."
)
@click.option("--collapse-strings", is_flag=True, help="One token per string literal (AST-Probe).")
@click.option("--strict", is_flag=True, help="Fail on any syntax error instead of reporting it.")
def parse_command(file: str, language: str | None, as_json: bool, collapse_strings: bool, strict: bool):
    """Print the code tokens of FILE ('-' for standard input) with their types."""
    tree = parse(read_source(file), resolve_language(file, language), strict=strict)
    tokens = tree.tokens(collapse_strings=collapse_strings)
    if as_json:
        tree_of_tokens = token_tree(tokens)
        echo_json(
            {
                "language": tree.language,
                "grammar": {"package": tree.grammar.package, "version": tree.grammar.package_version},
                "collapse_strings": collapse_strings,
                "issues": [
                    {"kind": i.kind, "type": i.node_type, "start": i.start_byte, "line": i.line, "column": i.column}
                    for i in tree.issues
                ],
                "tokens": [
                    {"text": text, "type": kind, "start": int(s), "end": int(e)}
                    for text, kind, s, e in zip(tokens.texts, tokens.types, tokens.start_byte, tokens.end_byte)
                ],
                "ast_distance": ast_distance(tokens).tolist(),
                "uast_distance": uast_distance(tokens).tolist(),
                "relations": relation_edges(tokens).to_records(),
                "head_rule": tree_of_tokens.rule,
                "heads": tree_of_tokens.heads.tolist(),
                "depths": tree_of_tokens.depth.tolist(),
            }
        )
        return
    for issue in tree.issues:
        click.echo(f"warning: {issue}", err=True)
    width = max((len(t) for t in tokens.types), default=4)
    click.echo(f"{'#':>5}  {'type':<{width}}  {'bytes':>11}  text")
    for k, (text, kind, s, e) in enumerate(zip(tokens.texts, tokens.types, tokens.start_byte, tokens.end_byte)):
        click.echo(f"{k:>5}  {kind:<{width}}  {f'{s}-{e}':>11}  {text!r}")
    click.echo(
        f"{len(tokens)} tokens, {tree.n_nodes} nodes, {len(tree.issues)} parse issue(s); "
        f"grammar {tree.grammar.package} {tree.grammar.package_version}",
        err=True,
    )
