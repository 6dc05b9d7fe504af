"""Syntax core: parse code with tree-sitter into flat arrays, select code tokens, compute
pairwise token distances (plain AST and CAT-probing's U-AST), relation edges between tokens
(from the grammar's field names) and the token tree (a head rule over the AST)."""

from codeprobe.syntax.distances import ast_distance, consecutive_lca, token_tree_distance, uast_distance, uast_edges
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
from codeprobe.syntax.token_tree import HEAD_RULE, TokenTree, token_tree
from codeprobe.syntax.tokens import CodeTokens, code_tokens
from codeprobe.syntax.tree import ParseIssue, SyntaxTree

__all__ = [
    "HEAD_RULE",
    "CodeTokens",
    "GrammarInfo",
    "LanguageSpec",
    "ParseIssue",
    "RelationEdges",
    "SyntaxTree",
    "TokenTree",
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
    "token_tree",
    "token_tree_distance",
    "uast_distance",
    "uast_edges",
]
