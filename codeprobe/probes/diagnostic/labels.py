"""Per-token labels of the diagnostic classifiers, read off a snippet's `TokenTree`:

- "parent_type" (AST node tagging): the type of the token's nearest *named* proper ancestor in
  the AST, i.e. the named node the token's leaf sits in (`def` -> "function_definition", the
  `x` of `f(x)` -> "argument_list"). Named, because a few grammars give multi-word operators an
  anonymous inner node (Python's `not in` and `is not`: the `not` leaf's parent is the anonymous
  "not in", whose named ancestor is "comparison_operator"). With collapsed strings a string
  token is its string node, so its label is the string's parent. A token with no named
  ancestor (a tree that is a single leaf) gets `NO_PARENT`.
- "depth_bucket": the token's depth in the token tree (`TokenTree.depth`, root = 0) put in a
  bucket of `DEPTH_BUCKET_EDGES`: "0" (the root), one bucket per depth 1..7, "8-9", "10+".
  The edges were chosen from the data: on 300 CoSQA Python functions every bucket holds at
  least 1% of the tokens (depth 0 is one token per snippet).

Labels are strings; `LabelVocabulary` turns them into class ids.
"""

from __future__ import annotations

import numpy as np

from codeprobe.errors import InputError
from codeprobe.syntax import TokenTree

LABEL_TASKS = ("parent_type", "depth_bucket")
NO_PARENT = "<no parent>"
DEPTH_BUCKET_EDGES = (0, 1, 2, 3, 4, 5, 6, 7, 8, 10)  # each bucket's smallest depth; the last is open


def _bucket_name(k: int) -> str:
    low = DEPTH_BUCKET_EDGES[k]
    if k == len(DEPTH_BUCKET_EDGES) - 1:
        return f"{low}+"
    high = DEPTH_BUCKET_EDGES[k + 1] - 1
    return str(low) if high == low else f"{low}-{high}"


DEPTH_BUCKETS = tuple(_bucket_name(k) for k in range(len(DEPTH_BUCKET_EDGES)))


def parent_types(tree: TokenTree) -> tuple[str, ...]:
    """The "parent_type" label of each token (module docstring): n strings."""
    syntax = tree.tokens.tree
    ancestor = syntax.parent[tree.tokens.node].astype(np.int64)
    # Climb past anonymous inner nodes, all tokens at once; they are rare and shallow.
    while True:
        climb = (ancestor >= 0) & ~syntax.is_named[np.maximum(ancestor, 0)]
        if not climb.any():
            break
        ancestor[climb] = syntax.parent[ancestor[climb]]
    names = syntax.types[np.maximum(ancestor, 0)]
    return tuple(NO_PARENT if a < 0 else name for a, name in zip(ancestor.tolist(), names))


def depth_bucket_ids(depth: np.ndarray) -> np.ndarray:
    """int64 (n,): the index into `DEPTH_BUCKETS` of each depth (ints >= 0)."""
    return np.searchsorted(DEPTH_BUCKET_EDGES, np.asarray(depth), side="right") - 1


def depth_buckets(tree: TokenTree) -> tuple[str, ...]:
    """The "depth_bucket" label of each token (module docstring): n strings."""
    return tuple(DEPTH_BUCKETS[k] for k in depth_bucket_ids(tree.depth).tolist())


def token_labels(tree: TokenTree, task: str) -> tuple[str, ...]:
    """The labels of `task` (one of `LABEL_TASKS`) for each token of `tree`.

    Raises:
        InputError: an unknown task.
    """
    if task == "parent_type":
        return parent_types(tree)
    if task == "depth_bucket":
        return depth_buckets(tree)
    raise InputError(f"task must be one of {', '.join(map(repr, LABEL_TASKS))}, got {task!r}")
