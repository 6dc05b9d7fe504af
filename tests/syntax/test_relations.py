"""Relation edges from tree-sitter's field names: against a plain tree walk on real code in every
registered language, on hand-checked examples, and at the edges of the rule."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from oracles.relations import oracle_relations
from shared_data import cosqa_functions, java_methods
from snippets import EXAMPLES
from test_languages import REAL_SOURCES, real_files

from codeprobe.cli import main
from codeprobe.syntax import keywords, known_languages, parse
from codeprobe.syntax.languages import type_table
from codeprobe.syntax.relations import (
    DEFAULT_MIN_COUNT,
    RelationEdges,
    frequent_relations,
    relation_counts,
    relation_edges,
)


def edges_of(code: str, language: str, *, collapse_strings: bool = False) -> list[tuple[str, int, int, int]]:
    tokens = parse(code, language).tokens(collapse_strings=collapse_strings)
    edges = relation_edges(tokens)
    return list(zip(edges.relation_names(), edges.head.tolist(), edges.dep_start.tolist(), edges.dep_end.tolist()))


def check_against_oracle(code: str, language: str) -> int:
    """Both token choices; returns how many edges the fast path found."""
    tree = parse(code, language)
    found = 0
    for collapse in (False, True):
        tokens = tree.tokens(collapse_strings=collapse)
        edges = relation_edges(tokens)
        oracle_tokens, oracle_edges = oracle_relations(code, language, tree.wrapper, collapse_strings=collapse)
        assert oracle_tokens == list(zip(tokens.types, tokens.start_byte.tolist(), tokens.end_byte.tolist()))
        fast = list(zip(edges.relation_names(), edges.head.tolist(), edges.dep_start.tolist(), edges.dep_end.tolist()))
        assert sorted(fast) == oracle_edges, (language, code[:200])
        assert edges.n_tokens == len(tokens)
        found += len(edges)
    return found


def stdlib_python() -> list[str]:
    # Whole modules of the interpreter's standard library: real, varied Python.
    import argparse
    import json.decoder
    import string
    import textwrap

    return [Path(m.__file__).read_text(encoding="utf-8") for m in (argparse, json.decoder, string, textwrap)]


def real_code(language: str) -> list[str]:
    """Real code in `language`: whole files (the standard library for Python, installed packages
    and tests/syntax/real for the others), CodeSearchNet's Java methods from ../shared, and the
    project's examples in data/ for every language (for Go, PHP, Ruby and Scala, the only real
    code this machine's packages offer)."""
    out = [code for _, code in EXAMPLES.get(language, ())]
    if language == "python":
        out += stdlib_python() + [code for _, code in cosqa_functions()[:80]]
    if language == "java":
        out += [code for _, code in java_methods(150)]
    if language == "javascript":
        out += [p.read_text(encoding="utf-8") for p in real_files(("matplotlib", "backends/web_backend/js/*.js"))]
    for lang, where in REAL_SOURCES:
        if lang == language:
            out += [p.read_text(encoding="utf-8") for p in real_files(where)]
    return out


@pytest.mark.parametrize("language", known_languages())
def test_relations_match_a_plain_tree_walk_on_real_code(language):
    codes = real_code(language)
    assert codes, language
    assert sum(check_against_oracle(code, language) for code in codes) > 0


# Hand-checked examples: tokens are numbered from 0; a dependent is a half-open token span.


def test_worked_example_if_else():
    # if a : b = 1 else : b = 2
    # 0  1 2 3 4 5 6    7 8 9 10
    assert edges_of("if a:\n    b = 1\nelse:\n    b = 2\n", "python") == [
        ("if_statement:if->condition", 0, 1, 2),
        ("if_statement:if->consequence", 0, 3, 6),
        ("if_statement:if->alternative", 0, 6, 11),
        ("if_statement:condition->consequence", 1, 3, 6),
        ("if_statement:condition->alternative", 1, 6, 11),
        ("assignment:left->right", 3, 5, 6),
        ("if_statement:consequence->alternative", 3, 6, 11),
        ("else_clause:else->body", 6, 8, 11),
        ("assignment:left->right", 8, 10, 11),
    ]


def test_worked_example_call_with_arguments():
    # print ( x , y = 2 )
    # 0     1 2 3 4 5 6 7
    assert edges_of("print(x, y=2)\n", "python") == [
        ("call:function->arguments", 0, 1, 8),
        ("keyword_argument:name->value", 4, 6, 7),
    ]


def test_worked_example_assignment():
    # x = y + 1
    # 0 1 2 3 4
    assert edges_of("x = y + 1\n", "python") == [
        ("assignment:left->right", 0, 2, 5),
        ("binary_operator:left->operator", 2, 3, 4),
        ("binary_operator:left->right", 2, 4, 5),
        ("binary_operator:operator->right", 3, 4, 5),
    ]


def test_worked_example_java_method_call():
    # return foo . bar ( a , b ) ;
    # 0      1   2 3   4 5 6 7 8 9
    edges = edges_of("return foo.bar(a, b);", "java")
    assert ("method_invocation:object->name", 1, 3, 4) in edges
    assert ("method_invocation:object->arguments", 1, 4, 9) in edges
    assert ("method_invocation:name->arguments", 3, 4, 9) in edges


def test_a_repeated_field_gives_one_edge_per_child():
    # if a : pass elif b : pass else : pass
    # 0  1 2 3    4    5 6 7    8    9 10
    edges = edges_of("if a:\n    pass\nelif b:\n    pass\nelse:\n    pass\n", "python")
    alternatives = [e for e in edges if e[0] == "if_statement:if->alternative"]
    assert alternatives == [("if_statement:if->alternative", 0, 4, 8), ("if_statement:if->alternative", 0, 8, 11)]


def test_a_field_without_tokens_gives_no_edge():
    # A zero-width block inserted by error recovery: no consequence edge.
    assert edges_of("if x:\n", "python") == [("if_statement:if->condition", 0, 1, 2)]
    # Fields inside a collapsed string cover no token of their own.
    code = 's = f"{x!r}"\n'
    assert ("interpolation:<first>->expression", 3, 4, 5) in edges_of(code, "python")
    assert edges_of(code, "python", collapse_strings=True) == [("assignment:left->right", 0, 2, 3)]


def test_nested_nodes_of_one_type_each_give_their_own_edges():
    # f ( g ( x ) )
    # 0 1 2 3 4 5 6
    assert edges_of("f(g(x))\n", "python") == [
        ("call:function->arguments", 0, 1, 7),
        ("call:function->arguments", 2, 3, 6),
    ]


def test_a_first_token_inside_a_field_starts_no_first_token_edges():
    # The call's first token is its `function` field: only call:function->arguments.
    assert [name for name, *_ in edges_of("f(x)\n", "python")] == ["call:function->arguments"]
    # A first token in no field, not a keyword: `<first>`, whatever the token is.
    # a < b  (the comparison's operands have no field; its operators do)
    assert edges_of("a < b\n", "python") == [("comparison_operator:<first>->operators", 0, 1, 2)]


def test_first_token_edges_name_keywords_only():
    # One grammar relation, whatever token starts it: an identifier, a string, a number,
    # punctuation, an operator.
    for code in ("a < b\n", "'a' < b\n", "1 < b\n", "(a) < b\n", "-a < b\n", "a.b < c == d\n"):
        names = {name for name, *_ in edges_of(code, "python") if name.startswith("comparison_operator:")}
        assert names == {"comparison_operator:<first>->operators"}, code
    # A keyword (an anonymous node whose type is an identifier) by its text.
    assert ("not_operator:not->argument", 0, 1, 2) in edges_of("not a\n", "python")
    # @ d def f ( ) : pass
    # 0 1 2   3 4 5 6 7
    edges = edges_of("@d\ndef f():\n    pass\n", "python")
    assert ("decorated_definition:<first>->definition", 0, 2, 8) in edges
    assert ("function_definition:def->name", 2, 3, 4) in edges
    # A Java method that starts with an annotation, and one that starts with a modifier.
    java = {name for name, *_ in edges_of("@Override public void run() {}", "java")}
    assert {"method_declaration:<first>->body", "method_declaration:<first>->name"} <= java
    assert "method_declaration:public->body" in {name for name, *_ in edges_of("public void run() {}", "java")}


@pytest.mark.parametrize("language", known_languages())
def test_first_token_words_are_the_grammars_keywords(language):
    # On real code, the middle part of every name (a field name a of `T:a->b`, or k of `T:k->b`)
    # is a field name, a keyword of `codeprobe.syntax.keywords` or `<first>`: no punctuation, no
    # `<identifier>`. (Splitting is safe here: no grammar's named node types or fields hold `:` or `->`.)
    allowed = set(type_table(language).fields) | set(keywords(language)) | {"<first>"}
    middles = set()
    for code in real_code(language):
        for name in relation_edges(parse(code, language).tokens()).names:
            middles.add(name.split(":", 1)[1].split("->", 1)[0])
    assert middles <= allowed, middles - allowed
    assert middles & set(keywords(language))
    if language in ("python", "java", "javascript", "rust"):
        assert "<first>" in middles


def test_comments_are_not_tokens_of_any_span():
    # def f ( ) : return 1     (the comment is no token)
    edges = edges_of("def f():  # note\n    return 1\n", "python")
    assert ("function_definition:def->body", 0, 5, 7) in edges


def test_no_fields_no_edges():
    edges = relation_edges(parse("x\n", "python").tokens())
    assert len(edges) == 0 and edges.names == () and edges.relation.dtype == np.int32
    assert edges.to_records() == [] and edges.counts() == {}


def test_arrays_are_read_only_and_ordered():
    edges = relation_edges(parse(EXAMPLES["java"][0][1], "java").tokens())
    assert len(edges) > 0
    for a in (edges.relation, edges.head, edges.dep_start, edges.dep_end):
        assert not a.flags.writeable and a.shape == (len(edges),)
    keys = list(zip(edges.head.tolist(), edges.dep_start.tolist(), edges.dep_end.tolist(), edges.relation.tolist()))
    assert keys == sorted(keys)
    assert list(edges.names) == sorted(edges.names)
    assert np.all(edges.dep_start < edges.dep_end) and np.all(edges.dep_end <= edges.n_tokens)
    # The head is never inside its dependent.
    assert not np.any((edges.dep_start <= edges.head) & (edges.head < edges.dep_end))


def test_select_counts_and_records():
    edges = relation_edges(parse("if a:\n    b = 1\nelse:\n    b = 2\n", "python").tokens())
    assert edges.counts()["assignment:left->right"] == 2
    only = edges.select(["no:such->relation", "assignment:left->right"])
    assert only.names == ("no:such->relation", "assignment:left->right")  # the vocabulary's codes
    assert only.relation.tolist() == [1, 1] and not only.relation.flags.writeable
    assert only.to_records() == [
        {"relation": "assignment:left->right", "head": 3, "dependent": [5, 6]},
        {"relation": "assignment:left->right", "head": 8, "dependent": [10, 11]},
    ]
    assert len(edges.select([])) == 0
    with pytest.raises(ValueError):
        edges.select(["a:b->c", "a:b->c"])
    # One vocabulary, the same codes in every snippet.
    vocabulary = sorted(edges.names, reverse=True)
    other = relation_edges(parse("y = g(2)\n", "python").tokens()).select(vocabulary)
    assert other.names == tuple(vocabulary)
    assert [vocabulary[r] for r in other.relation.tolist()] == ["assignment:left->right"]


def test_frequent_relations_keep_those_with_enough_edges():
    sets = [relation_edges(parse(code, "python").tokens()) for code in ("x = 1\n", "y = f(2)\n", "z = g(3)\n")]
    assert relation_counts(sets) == {"assignment:left->right": 3, "call:function->arguments": 2}
    assert frequent_relations(sets, min_count=2) == ("assignment:left->right", "call:function->arguments")
    assert frequent_relations(sets, min_count=3) == ("assignment:left->right",)
    assert frequent_relations(sets) == ()  # DEFAULT_MIN_COUNT
    assert DEFAULT_MIN_COUNT == 100
    with pytest.raises(ValueError):
        frequent_relations(sets, min_count=0)


def test_relation_edges_is_exported():
    import codeprobe.syntax as syntax

    assert syntax.relation_edges is relation_edges and syntax.RelationEdges is RelationEdges


def test_parse_json_has_relations_and_keeps_its_keys():
    code = "def f(a):\n    return g(a)\n"
    result = CliRunner().invoke(main, ["parse", "-", "--lang", "python", "--json"], input=code)
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout)
    assert set(obj) >= {"language", "grammar", "collapse_strings", "issues", "tokens", "ast_distance", "uast_distance"}
    assert obj["relations"] == relation_edges(parse(code, "python").tokens()).to_records()
    # def f ( a ) : return g ( a )
    # 0   1 2 3 4 5 6      7 8 9 10
    assert {"relation": "call:function->arguments", "head": 7, "dependent": [8, 11]} in obj["relations"]


def test_deep_nesting_needs_no_recursion():
    depth = sys.getrecursionlimit() + 100
    code = "x = " + "(" * depth + "1" + ")" * depth + "\n"
    assert edges_of(code, "python")[0][0] == "assignment:left->right"


def test_the_docs_examples_are_what_the_code_gives():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "relations.md").read_text(encoding="utf-8")
    for language, fence in (("python", "```python\ndef scale"), ("java", "```java\npublic int max")):
        start = doc.index(fence) + len(fence.split("\n")[0]) + 1
        code = doc[start : doc.index("```", start)]
        rows = doc[doc.index("| relation | head | dependent |", start) :].split("\n\n")[0].splitlines()[2:]
        documented = []
        for row in rows:
            name, head, dep = (cell.strip() for cell in row.strip("|").split(" | "))
            s, e = dep[1 : dep.index(")")].split(", ")
            documented.append((name.strip("`"), int(head.split()[0]), int(s), int(e)))
        assert documented == edges_of(code, language), language
