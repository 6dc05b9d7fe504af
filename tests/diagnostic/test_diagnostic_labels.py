"""Per-token labels (parent node type, depth bucket) on hand-checked snippets, and the label
vocabulary's rare-label merging."""

from __future__ import annotations

import numpy as np
import pytest

from codeprobe.errors import InputError
from codeprobe.probes.diagnostic import (
    DEPTH_BUCKET_EDGES,
    DEPTH_BUCKETS,
    OTHER,
    LabelVocabulary,
    depth_buckets,
    parent_types,
    token_labels,
)
from codeprobe.probes.diagnostic.labels import depth_bucket_ids
from codeprobe.syntax import parse

MAXIMUM = """def maximum(a, b):
    if a > b:
        return a
    return b
"""


def test_worked_example_labels():
    """docs/diagnostic.md's table, checked by hand against the AST and the token tree."""
    tree = parse(MAXIMUM, "python").token_tree()
    assert tree.tokens.texts == (
        "def", "maximum", "(", "a", ",", "b", ")", ":", "if", "a", ">", "b", ":", "return", "a", "return", "b",
    )  # fmt: skip
    assert parent_types(tree) == (
        *["function_definition"] * 2,
        *["parameters"] * 5,
        "function_definition",
        "if_statement",
        *["comparison_operator"] * 3,
        "if_statement",
        *["return_statement"] * 4,
    )
    assert depth_buckets(tree) == tuple("01122221123322323")
    assert token_labels(tree, "parent_type") == parent_types(tree)
    assert token_labels(tree, "depth_bucket") == depth_buckets(tree)


def test_parent_type_climbs_past_anonymous_inner_nodes():
    """Python's `not in` and `is not` are anonymous nodes with leaves under them: their words
    are labelled with the comparison they sit in."""
    tree = parse("x = a not in b or c is not d", "python").token_tree()
    syntax = tree.tokens.tree
    raw = syntax.parent[tree.tokens.node]
    assert (~syntax.is_named[raw]).sum() == 4  # not, in, is, not
    assert (
        parent_types(tree)
        == ("assignment", "assignment", *["comparison_operator"] * 4, "boolean_operator") + ("comparison_operator",) * 4
    )


def test_a_collapsed_string_is_labelled_with_its_parent():
    tree = parse('s = "ab" + f("c")', "python").token_tree(collapse_strings=True)
    assert tree.tokens.texts[2] == '"ab"' and tree.tokens.texts[6] == '"c"'
    assert parent_types(tree)[2] == "binary_operator" and parent_types(tree)[6] == "argument_list"


def test_depth_buckets_cover_every_depth_once():
    depth = np.arange(40)
    ids = depth_bucket_ids(depth)
    assert ids[0] == 0 and ids[-1] == len(DEPTH_BUCKETS) - 1 and (np.diff(ids) >= 0).all()
    for k, low in enumerate(DEPTH_BUCKET_EDGES):
        assert ids[low] == k and (low == 0 or ids[low - 1] == k - 1)
    assert DEPTH_BUCKETS[ids[8]] == "8-9" == DEPTH_BUCKETS[ids[9]] and DEPTH_BUCKETS[ids[25]] == "10+"


def test_unknown_task_is_refused():
    with pytest.raises(InputError, match="task must be one of"):
        token_labels(parse(MAXIMUM, "python").token_tree(), "node_type")


def test_vocabulary_merges_rare_and_unseen_labels_into_other():
    train = [("a", "b", "a", "c"), ("a", "b", "d")]
    vocab = LabelVocabulary.from_labels(train, min_count=2)
    assert vocab.names == ("a", "b", OTHER) and vocab.other == 2 and len(vocab) == 3
    assert vocab.encode(("b", "c", "a", "zzz")).tolist() == [1, 2, 0, 2]
    assert vocab.decode([0, 2]) == ("a", OTHER)
    assert LabelVocabulary.from_labels(train, min_count=1).names == ("a", "b", "c", "d", OTHER)
    assert LabelVocabulary.from_dict(vocab.as_dict()) == vocab
    assert vocab.encode(()).shape == (0,)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_vocabulary_rejects_a_bad_min_count(bad):
    with pytest.raises(InputError, match="min_count"):
        LabelVocabulary.from_labels([("a",)], min_count=bad)


def test_vocabulary_rejects_its_own_class_name_as_a_label():
    with pytest.raises(InputError, match="own class name"):
        LabelVocabulary.from_labels([("a", OTHER)])
