"""The token tree (first-token head rule): against a networkx oracle on real code in every
registered language, on the docs' worked example, and at the edges of the rule."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from oracles.token_tree import oracle_token_tree
from test_relations import real_code

from codeprobe.errors import TooLargeError
from codeprobe.syntax import HEAD_RULE, known_languages, parse, token_tree_distance
from codeprobe.syntax.distances import MAX_TOKENS

# Path lengths are checked from every token up to this many tokens, from a spread of tokens
# above it, and not at all past `DISTANCE_LIMIT` (an argparse-sized module: 11,787 tokens).
ALL_SOURCES = 200
N_SOURCES = 40
DISTANCE_LIMIT = 5_000


def check_against_oracle(code: str, language: str) -> int:
    """Both token choices; returns how many tokens were checked."""
    tree = parse(code, language)
    checked = 0
    for collapse in (False, True):
        tt = tree.token_tree(collapse_strings=collapse)
        tokens = tt.tokens
        oracle_tokens, graph = oracle_token_tree(code, language, tree.wrapper, collapse_strings=collapse)
        assert oracle_tokens == list(zip(tokens.types, tokens.start_byte.tolist(), tokens.end_byte.tolist()))
        n = len(tt)
        if n == 0:
            continue
        assert nx.is_arborescence(graph), (language, code[:200])
        (root,) = [v for v, d in graph.in_degree() if d == 0]
        oracle_heads = [-1 if v == root else next(iter(graph.predecessors(v))) for v in range(n)]
        assert tt.heads.tolist() == oracle_heads, (language, code[:200])
        depth = nx.single_source_shortest_path_length(graph, root)
        assert tt.depth.tolist() == [depth[v] for v in range(n)]
        if n <= DISTANCE_LIMIT:
            undirected = graph.to_undirected()
            sources = range(n) if n <= ALL_SOURCES else np.unique(np.linspace(0, n - 1, N_SOURCES).astype(int))
            for s in sources:
                row = nx.single_source_shortest_path_length(undirected, int(s))
                assert tt.distance[s].tolist() == [row[v] for v in range(n)], (language, s)
        checked += n
    return checked


def check_tree(tt) -> None:
    """One root (token 0), every head before its dependent: a tree; and path lengths that agree
    with the heads and depths."""
    n = len(tt)
    heads = tt.heads
    assert heads.dtype == np.int64 and tt.depth.dtype == np.int32
    assert np.flatnonzero(heads < 0).tolist() == [0]
    assert (heads[1:] < np.arange(1, n)).all()
    assert np.array_equal(tt.depth[1:], tt.depth[heads[1:]] + 1)
    d = tt.distance
    assert np.array_equal(d, d.T) and not d.diagonal().any()
    assert np.array_equal(d[0], tt.depth)
    adjacent = np.zeros((n, n), dtype=bool)
    adjacent[heads[1:], np.arange(1, n)] = True
    assert np.array_equal(d == 1, adjacent | adjacent.T)
    assert np.array_equal(tt.edges, np.stack((heads[1:], np.arange(1, n)), axis=1))


@pytest.mark.parametrize("language", known_languages())
def test_token_tree_matches_networkx_on_real_code(language):
    codes = real_code(language)
    assert codes, language
    assert sum(check_against_oracle(code, language) for code in codes) > 0


def test_worked_example_in_the_docs():
    # The example of docs/token-tree.md.
    code = "def area(w, h):\n    return w * h\n"
    tt = parse(code, "python").token_tree()
    assert tt.rule == HEAD_RULE == "first-token"
    assert tt.tokens.texts == ("def", "area", "(", "w", ",", "h", ")", ":", "return", "w", "*", "h")
    assert tt.heads.tolist() == [-1, 0, 0, 2, 2, 2, 2, 0, 0, 8, 9, 9]
    assert tt.depth.tolist() == [0, 1, 1, 2, 2, 2, 2, 1, 1, 2, 3, 3]
    assert tt.distance[3].tolist() == [2, 3, 1, 0, 2, 2, 2, 3, 3, 4, 5, 5]
    check_tree(tt)


@pytest.mark.parametrize(
    "code, language",
    [
        ("    def f(self):\n        return self.x\n", "python"),  # wrapped in a class
        ("function add($a, $b) {\n    return $a + $b;\n}", "php"),  # wrapped in <?php
        ("x := 1\ny := x + 2\n", "go"),  # a statement list, wrapped in a function
        ("def f(:\n    return [1,\n", "python"),  # ERROR and MISSING nodes
        ('s = "a {b} c" + f"x{y}z"\n', "python"),  # strings, collapsed or not
        ("x = 1  # one\n# two\ny = 2\n", "python"),  # comments between tokens
    ],
)
def test_rule_holds_on_wrapped_broken_and_commented_code(code, language):
    tree = parse(code, language)
    for collapse in (False, True):
        check_tree(tree.token_tree(collapse_strings=collapse))
        check_against_oracle(code, language)


def test_collapsed_strings_are_one_token_in_the_tree():
    code = 'print("a {b}", x)\n'
    plain = parse(code, "python").token_tree()
    collapsed = parse(code, "python").token_tree(collapse_strings=True)
    assert collapsed.tokens.texts == ("print", "(", '"a {b}"', ",", "x", ")")
    assert collapsed.heads.tolist() == [-1, 0, 1, 1, 1, 1]
    assert len(plain) == 8 and plain.heads.tolist()[2:5] == [1, 2, 2]


def test_statements_hang_under_the_first_statement():
    # A block is a node like any other: its first statement heads it, the others attach there.
    tt = parse("a = 1\nb = 2\nc = 3\n", "python").token_tree()
    assert tt.heads.tolist() == [-1, 0, 0, 0, 3, 3, 0, 6, 6]


def test_a_snippet_without_tokens_has_an_empty_tree():
    tt = parse("# only a comment\n", "python").token_tree()
    assert len(tt) == 0 and tt.edges.shape == (0, 2) and tt.distance.shape == (0, 0)
    single = parse("x\n", "python").token_tree()
    assert single.heads.tolist() == [-1] and single.distance.tolist() == [[0]]


def test_arrays_are_read_only():
    tt = parse("x = f(1)\n", "python").token_tree()
    for a in (tt.heads, tt.depth, tt.distance):
        with pytest.raises(ValueError):
            a[0] = 5


def test_too_many_tokens_for_a_matrix():
    tt = parse("x = [" + "1," * (MAX_TOKENS // 2 + 1) + "]\n", "python").token_tree()
    assert len(tt) > MAX_TOKENS and tt.heads[-1] == 2  # the list's `[` heads its `]`
    with pytest.raises(TooLargeError):
        token_tree_distance(tt.heads, tt.depth)
