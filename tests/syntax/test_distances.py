"""Token distances against networkx shortest paths, on real and generated code."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles.syntax import leaf_distances, oracle_graphs
from shared_data import cosqa_functions, java_methods
from snippets import SNIPPETS

from codeprobe.errors import TooLargeError
from codeprobe.syntax import ast_distance, parse, uast_distance, uast_edges
from codeprobe.syntax import distances as distances_module


def check_against_oracle(code: str, language: str):
    tree = parse(code, language)
    toks = tree.tokens()
    tree_graph, uast_graph, leaves = oracle_graphs(code, language, tree.wrapper)
    assert [(t, s, e) for _, t, _, s, e in leaves] == list(
        zip(toks.types, toks.start_byte.tolist(), toks.end_byte.tolist())
    )
    np.testing.assert_array_equal(ast_distance(toks), leaf_distances(tree_graph, leaves))
    np.testing.assert_array_equal(uast_distance(toks), leaf_distances(uast_graph, leaves))


@pytest.mark.parametrize("language", sorted(SNIPPETS))
def test_handwritten_snippets_match_networkx(language):
    for code in SNIPPETS[language]:
        check_against_oracle(code, language)


def test_real_python_functions_match_networkx():
    for _, code in cosqa_functions()[:60]:
        check_against_oracle(code, "python")


def test_real_java_methods_match_networkx():
    for _, code in java_methods(40):
        check_against_oracle(code, "java")


def test_stdlib_functions_match_networkx():
    import json as module  # any pure-Python stdlib module: real, varied code

    source = open(module.decoder.__file__, encoding="utf-8").read()
    tree = parse(source, "python")
    fn = [i for i in range(tree.n_nodes) if tree.types[i] == "function_definition"][:15]
    assert fn
    for i in fn:
        check_against_oracle(tree.node_text(i), "python")


def test_worked_uast_example():
    # def f(a): return a  -> tokens: def f ( a ) : return a
    toks = parse("def f(a): return a", "python").tokens()
    d = uast_distance(toks)
    # Consecutive tokens are 1 apart; the two `a` identifiers are joined directly.
    assert all(d[k, k + 1] == 1 for k in range(len(toks) - 1))
    assert d[3, 7] == 1
    ast = ast_distance(toks)
    # a (in parameters) -> parameters -> function_definition -> block -> return_statement -> a
    assert ast[3, 7] == 5
    assert set(map(tuple, uast_edges(toks).tolist())) >= {(3, 7)}


def test_only_plain_identifiers_get_name_edges():
    toks = parse("a.b = b\na.b = 1", "python").tokens()
    pairs = {tuple(p) for p in uast_edges(toks).tolist()}
    kinds = toks.types
    name_edges = {(i, j) for i, j in pairs if j != i + 1}
    assert name_edges and all(kinds[i] == kinds[j] == "identifier" for i, j in name_edges)


def test_too_many_tokens_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(distances_module, "MAX_TOKENS", 5)
    toks = parse("x = y + z * w", "python").tokens()
    with pytest.raises(TooLargeError):
        uast_distance(toks)


@pytest.mark.parametrize("language", ["python", "java", "javascript", "go"])
def test_distances_among_some_tokens_are_the_full_matrix_rows_and_columns(language):
    """`among`: a prefix (what a model cut at its input limit read), scattered tokens, one
    token, none; equal to the full matrix cut down, on every handwritten snippet."""
    from codeprobe.errors import InputError

    for code in SNIPPETS[language]:
        toks = parse(code, language).tokens()
        n = len(toks)
        rng = np.random.default_rng(n)
        choices = [
            np.arange(n // 2),
            np.sort(rng.choice(n, size=n // 3, replace=False)),
            np.array([n - 1]),
            np.zeros(0, np.int64),
            np.arange(n),
        ]
        for distance in (ast_distance, uast_distance):
            full = distance(toks)
            for idx in choices:
                np.testing.assert_array_equal(distance(toks, among=idx), full[np.ix_(idx, idx)])
    with pytest.raises(InputError):
        uast_distance(toks, among=np.array([2, 1]))
    with pytest.raises(InputError):
        ast_distance(toks, among=np.array([0, n]))


def test_too_many_tokens_among_few_is_measured(monkeypatch):
    """The size limit is on the tokens measured between, not on the snippet."""
    monkeypatch.setattr(distances_module, "MAX_TOKENS", 5)
    toks = parse("x = y + z * w", "python").tokens()
    np.testing.assert_array_equal(
        uast_distance(toks, among=np.arange(4)), [[0, 1, 2, 3], [1, 0, 1, 2], [2, 1, 0, 1], [3, 2, 1, 0]]
    )
    assert ast_distance(toks, among=np.array([0, 2])).tolist() == [[0, 3], [3, 0]]


def test_single_token():
    toks = parse("x", "python").tokens()
    assert ast_distance(toks).tolist() == [[0]]
    assert uast_distance(toks).tolist() == [[0]]


names = st.sampled_from(["a", "b", "c", "xs"])


@st.composite
def python_expressions(draw, depth=0):
    if depth > 4 or draw(st.booleans()):
        return draw(st.one_of(names, st.integers(0, 9).map(str), st.just("'s'")))
    kind = draw(st.sampled_from(["bin", "call", "attr", "sub", "paren", "list"]))
    sub = lambda: draw(python_expressions(depth + 1))  # noqa: E731
    if kind == "bin":
        return f"{sub()} {draw(st.sampled_from('+-*<'))} {sub()}"
    if kind == "call":
        return f"{draw(names)}({', '.join(sub() for _ in range(draw(st.integers(0, 3))))})"
    if kind == "attr":
        return f"{sub()}.{draw(names)}"
    if kind == "sub":
        return f"{draw(names)}[{sub()}]"
    if kind == "paren":
        return f"({sub()})"
    return f"[{', '.join(sub() for _ in range(draw(st.integers(0, 3))))}]"


@st.composite
def python_functions(draw):
    lines = [f"def {draw(names)}({', '.join(draw(st.lists(names, max_size=3, unique=True)))}):"]
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["assign", "return", "if", "for", "comment"]))
        expr = draw(python_expressions())
        if kind == "assign":
            lines.append(f"    {draw(names)} = {expr}")
        elif kind == "return":
            lines.append(f"    return {expr}")
        elif kind == "if":
            lines += [f"    if {expr}:", f"        {draw(names)} = {draw(python_expressions())}"]
        elif kind == "for":
            lines += [f"    for {draw(names)} in {expr}:", f"        {draw(names)}({draw(names)})"]
        else:
            lines.append(f"    # {expr}")
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None)
@given(python_functions())
def test_generated_python_matches_networkx(code):
    check_against_oracle(code, "python")


@settings(max_examples=40, deadline=None)
@given(st.lists(python_expressions(), min_size=1, max_size=4))
def test_generated_javascript_matches_networkx(exprs):
    body = "\n".join(f"  let v{k} = {e.replace(chr(39), chr(34))};" for k, e in enumerate(exprs))
    check_against_oracle(f"function f(a, b) {{\n{body}\n  return a;\n}}", "javascript")
