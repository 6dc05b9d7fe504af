"""Syntax core: parse code with tree-sitter into flat arrays, select code tokens, compute
pairwise token distances (plain AST and CAT-probing's U-AST) and relation edges between tokens
(from the grammar's field names)."""

from codeprobe.syntax.distances import ast_distance, consecutive_lca, uast_distance, uast_edges
from codeprobe.syntax.languages import (
    GrammarInfo,
    LanguageSpec,
    grammar_info,
    grammar_packages,
    keywords,
    known_languages,
    language_for_path,
    language_spec,
)
from codeprobe.syntax.parsing import parse
from codeprobe.syntax.relations import RelationEdges, frequent_relations, relation_counts, relation_edges
from codeprobe.syntax.tokens import CodeTokens, code_tokens
from codeprobe.syntax.tree import ParseIssue, SyntaxTree

__all__ = [
    "CodeTokens",
    "GrammarInfo",
    "LanguageSpec",
    "ParseIssue",
    "RelationEdges",
    "SyntaxTree",
    "ast_distance",
    "code_tokens",
    "consecutive_lca",
    "frequent_relations",
    "grammar_info",
    "grammar_packages",
    "keywords",
    "known_languages",
    "language_for_path",
    "language_spec",
    "parse",
    "relation_counts",
    "relation_edges",
    "uast_distance",
    "uast_edges",
]
