"""Syntax core: parse code with tree-sitter into flat arrays, select code tokens, and compute
pairwise token distances (plain AST and CAT-probing's U-AST)."""

from codeprobe.syntax.distances import ast_distance, consecutive_lca, uast_distance, uast_edges
from codeprobe.syntax.languages import (
    GrammarInfo,
    LanguageSpec,
    grammar_info,
    grammar_packages,
    known_languages,
    language_for_path,
    language_spec,
)
from codeprobe.syntax.parsing import parse
from codeprobe.syntax.tokens import CodeTokens, code_tokens
from codeprobe.syntax.tree import ParseIssue, SyntaxTree

__all__ = [
    "CodeTokens",
    "GrammarInfo",
    "LanguageSpec",
    "ParseIssue",
    "SyntaxTree",
    "ast_distance",
    "code_tokens",
    "consecutive_lca",
    "grammar_info",
    "grammar_packages",
    "known_languages",
    "language_for_path",
    "language_spec",
    "parse",
    "uast_distance",
    "uast_edges",
]
