"""Syntax core: parse code with tree-sitter into flat arrays, select code tokens, and compute
pairwise token distances (plain AST and CAT-probing's U-AST)."""

from codeprobe.syntax.distances import ast_distance, consecutive_lca, uast_distance, uast_edges
from codeprobe.syntax.languages import GrammarInfo, grammar_info, known_languages
from codeprobe.syntax.tokens import CodeTokens, code_tokens, is_comment_type, is_string_type
from codeprobe.syntax.tree import ParseIssue, SyntaxTree, parse

__all__ = [
    "CodeTokens",
    "GrammarInfo",
    "ParseIssue",
    "SyntaxTree",
    "ast_distance",
    "code_tokens",
    "consecutive_lca",
    "grammar_info",
    "is_comment_type",
    "is_string_type",
    "known_languages",
    "parse",
    "uast_distance",
    "uast_edges",
]
