"""Helpers shared by the subcommands: reading the input file, choosing the language, JSON out."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from codeprobe.errors import InputError
from codeprobe.syntax import known_languages, language_for_path

file_argument = click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
lang_option = click.option(
    "--lang",
    "language",
    help=f"Language ({', '.join(known_languages())}); default: from the file extension.",
)


# The options of every command that runs a model on one snippet (cat, heads).
model_option = click.option(
    "--model", default=None, help="Model directory or cached Hugging Face id; default: the packaged model."
)
device_option = click.option("--device", default=None, help="cpu, cuda, cuda:1, ...; default: CUDA when available.")
allow_parse_errors_option = click.option(
    "--allow-parse-errors", is_flag=True, help="Score code with syntax errors instead of failing."
)


def max_subwords_option(default: int):
    """--max-subwords with its default (the probe's)."""
    return click.option(
        "--max-subwords",
        type=int,
        default=default,
        show_default=True,
        help="Model input limit, special tokens included (cut at a code-token boundary).",
    )


def parse_to_score(code: str | bytes, language: str, name: str, allow_parse_errors: bool):
    """The syntax tree of code a model's attention is scored against.

    Raises:
        CodeParseError: it has syntax errors and `allow_parse_errors` is off (the message
            names `name`, the first problem and the flag that scores it anyway).
    """
    from codeprobe.errors import CodeParseError
    from codeprobe.syntax import parse

    tree = parse(code, language)
    if tree.issues and not allow_parse_errors:
        raise CodeParseError(
            f"{name} does not parse as {tree.language}: {tree.issues[0]} ({len(tree.issues)} problem(s)); "
            "pass --allow-parse-errors to score it anyway",
            tree.issues,
        )
    return tree


def read_source(file: str) -> bytes:
    """The raw bytes of FILE, or of standard input for '-'."""
    if file == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(file).read_bytes()
    except OSError as err:
        raise InputError(f"cannot read {file}: {err.strerror}") from None


def resolve_language(file: str, language: str | None) -> str:
    """The --lang value, or the language implied by FILE's extension."""
    if language:
        return language
    guess = language_for_path(file) if file != "-" else None
    if guess is None:
        raise InputError(f"cannot tell the language of {file}: pass --lang")
    return guess


def echo_json(obj) -> None:
    """Print exactly one JSON object on standard output."""
    click.echo(json.dumps(obj, ensure_ascii=False))
