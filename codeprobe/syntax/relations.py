"""Relation edges between code tokens, from tree-sitter's field names (any grammar, nothing
written per language): what per-head attention analyses score a head on.

Clark et al. ("What does BERT look at?", arXiv:1906.04341) ask, per attention head and per
dependency relation, whether the head token attends to its dependent. CodeSyntax (Shen et al.,
arXiv:2210.14473) carries that to code with edges read off the AST, from a head token to a
dependent span. Here the relations come from the grammar's own field names, so every registered
language has them:

- `T:a->b`: for a node of type T and two of its fields a and b, a before b (by the position of
  each field's first child), from the head token (the first token of a's first child) to each
  child in field b.
- `T:k->b`: from the node's first token to each child in field b, unless that token lies inside
  a field child of the node (then the `T:a->b` edges already start there). k is the token's
  text when it is a keyword, an anonymous node whose type is an identifier (`if`, `def`, `new`,
  `public`, `async`: the criterion of `codeprobe.syntax.keywords`), and `<first>` for any other
  token (a named leaf such as an identifier or a string, punctuation, an operator), so one
  grammar relation is not split by what its first token happens to be: every comparison that
  does not start with a keyword is `comparison_operator:<first>->operators`.

Tokens are `codeprobe.syntax.tokens` code tokens (comments dropped; with `collapse_strings`, a
string is one token and nothing inside it is a field). A field child that covers no token
(zero-width, a comment, or inside a collapsed string) gives no edge; fields of an ERROR node
give none either. A field that repeats (an `if_statement`'s `alternative`: each `elif` and the
`else`) gives one edge per child. A relation's name is grammar vocabulary (a node type, field
names, a keyword or `<first>`) joined by `:` and `->`. Names are labels, not something to split:
a keyword that is also a field name could, in principle, give a `T:k->b` the name of a `T:a->b`
(no grammar's real code in the tests does).

`docs/relations.md` shows what Python's and Java's relations look like.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from codeprobe.syntax.tokens import CodeTokens

# Relations with fewer edges than this in the data are dropped (`frequent_relations`): a best
# head picked on a few dozen edges, and its interval, mean little.
DEFAULT_MIN_COUNT = 100

# k of a `T:k->b` whose first token is not a keyword.
FIRST = "<first>"


@dataclass(frozen=True, eq=False)
class RelationEdges:
    """The relation edges of one snippet's code tokens.

    Attributes:
        names: the relation names `relation` indexes: from `relation_edges`, those with an edge
            here, sorted; from `select`, the vocabulary it was given.
        relation: int32 (m,), each edge's relation as an index into `names`.
        head: int64 (m,), the head token's index (into the code tokens).
        dep_start, dep_end: int64 (m,), the dependent's half-open token span [start, end).
        n_tokens: how many code tokens the indices refer to.

    Edges are ordered by (head, dep_start, dep_end, relation).
    """

    names: tuple[str, ...]
    relation: np.ndarray
    head: np.ndarray
    dep_start: np.ndarray
    dep_end: np.ndarray
    n_tokens: int

    def __len__(self) -> int:
        return int(self.relation.shape[0])

    def relation_names(self) -> tuple[str, ...]:
        """Each edge's relation name, shape (m,)."""
        return tuple(self.names[r] for r in self.relation.tolist())

    def counts(self) -> Counter:
        """Edges per relation name."""
        per = np.bincount(self.relation, minlength=len(self.names))
        return Counter({name: int(c) for name, c in zip(self.names, per.tolist()) if c})

    def select(self, vocabulary: Iterable[str]) -> RelationEdges:
        """Only the edges of the relations in `vocabulary`, coded by their position in it: give
        every snippet the same vocabulary (`frequent_relations(...)`, say) and codes mean the
        same relation across snippets. Names in it that have no edge here are kept.

        Raises:
            ValueError: a name repeated in `vocabulary`.
        """
        names = tuple(vocabulary)
        position = {name: i for i, name in enumerate(names)}
        if len(position) != len(names):
            raise ValueError("vocabulary repeats a relation name")
        code = np.asarray([position.get(name, -1) for name in self.names] + [-1], dtype=np.int32)
        new = code[self.relation]
        keep = new >= 0
        return _ordered(names, new[keep], self.head[keep], self.dep_start[keep], self.dep_end[keep], self.n_tokens)

    def to_records(self) -> list[dict]:
        """The edges as JSON-ready dicts: {"relation", "head", "dependent": [start, end]}."""
        return [
            {"relation": self.names[r], "head": h, "dependent": [s, e]}
            for r, h, s, e in zip(
                self.relation.tolist(), self.head.tolist(), self.dep_start.tolist(), self.dep_end.tolist()
            )
        ]


def relation_edges(tokens: CodeTokens) -> RelationEdges:
    """The relation edges over `tokens` (the rule is in the module docstring).

    Args:
        tokens: the code tokens of a parsed snippet (`parse(code, lang).tokens(...)`); edge
            indices refer to them.

    Returns:
        RelationEdges with m edges; m = 0 for a snippet without fields.
    """
    tree = tokens.tree
    node = tokens.node
    n = tree.n_nodes
    lo, hi = tokens.spans  # each node's tokens [lo, hi)
    parent = tree.parent.astype(np.int64)

    field = tree.field_ids
    child = np.flatnonzero((field > 0) & (hi > lo))
    child = child[~tree.is_error[parent[child]]]
    if child.size == 0:
        return _edges([], [], [], [], [], len(tokens))
    # Children grouped by parent, in source order within each group.
    child = child[np.lexsort((child, parent[child]))]
    cp, cf = parent[child], field[child].astype(np.int64)

    # The first child of each (parent, field): the field's position and its head token.
    by_field = np.lexsort((child, cf, cp))
    starts_group = np.ones(child.size, dtype=bool)
    starts_group[1:] = (cp[by_field][1:] != cp[by_field][:-1]) | (cf[by_field][1:] != cf[by_field][:-1])
    group_first = by_field[starts_group][np.cumsum(starts_group) - 1]  # per by_field position
    first_of = np.empty(child.size, dtype=np.int64)
    first_of[by_field] = group_first  # position (in `child`) of each child's field's first child
    is_first = first_of == np.arange(child.size)

    # Pair every child (a dependent) with every first child of its parent (a candidate head);
    # keep pairs whose head field comes before the dependent's field.
    heads = np.flatnonzero(is_first)  # positions in `child`, grouped by parent too
    parents, h_start, h_count = np.unique(cp[heads], return_index=True, return_counts=True)
    group = np.searchsorted(parents, cp)
    reps = h_count[group]
    dep = np.repeat(np.arange(child.size), reps)
    offset = np.arange(dep.size) - np.repeat(np.cumsum(reps) - reps, reps)
    head = heads[h_start[group][dep] + offset]
    pair = head < first_of[dep]
    dep, head = dep[pair], head[pair]

    names: list[str] = []
    type_names, field_names = tree.type_names, tree.field_names
    types = tree.type_ids
    pair_key = (types[cp[dep]].astype(np.int64) * (len(field_names) + 1) + cf[head]) * (len(field_names) + 1) + cf[dep]
    keys, pair_code = np.unique(pair_key, return_inverse=True)
    for key in keys.tolist():
        key, b = divmod(key, len(field_names) + 1)
        t, a = divmod(key, len(field_names) + 1)
        names.append(f"{type_names[t]}:{field_names[a]}->{field_names[b]}")

    # From the parent's first token, where no field child of the parent holds it.
    p_lo = lo[cp]
    held = np.zeros(n, dtype=bool)
    held[cp[lo[child] == p_lo]] = True
    free = ~held[cp]
    first_token = p_lo[free]
    # k: the token's type (its text) if it is a keyword, an anonymous node whose type is an
    # identifier (the criterion of `codeprobe.syntax.keywords`); else len(type_names), `<first>`.
    token_node = node[first_token]
    token_type = types[token_node].astype(np.int64)
    unique_types, type_index = np.unique(token_type, return_inverse=True)
    identifier = np.fromiter((type_names[t].isidentifier() for t in unique_types.tolist()), bool, unique_types.size)
    keyword = identifier[type_index.ravel()] & ~tree.is_named[token_node]
    word_key = np.where(keyword, token_type, len(type_names))
    first_key = (types[cp[free]].astype(np.int64) * (len(field_names) + 1) + cf[free]) * (len(type_names) + 1)
    first_key += word_key
    first_keys, first_code = np.unique(first_key, return_inverse=True)
    for key in first_keys.tolist():
        key, word = divmod(key, len(type_names) + 1)
        t, b = divmod(key, len(field_names) + 1)
        k = type_names[word] if word < len(type_names) else FIRST
        names.append(f"{type_names[t]}:{k}->{field_names[b]}")

    dep_child = np.concatenate((child[dep], child[free]))
    return _edges(
        names,
        np.concatenate((pair_code.ravel(), first_code.ravel() + keys.size)),
        np.concatenate((lo[child[head]], first_token)),
        lo[dep_child],
        hi[dep_child],
        len(tokens),
    )


def _edges(names, code, head, dep_start, dep_end, n_tokens: int) -> RelationEdges:
    """Edges with sorted names (codes renumbered) in (head, dep_start, dep_end, relation) order."""
    unique = sorted(set(names))
    position = {name: i for i, name in enumerate(unique)}
    renumber = np.asarray([position[name] for name in names], dtype=np.int32)
    relation = renumber[np.asarray(code, dtype=np.int64)] if len(names) else np.zeros(0, np.int32)
    return _ordered(tuple(unique), relation, head, dep_start, dep_end, n_tokens)


def _ordered(names, relation, head, dep_start, dep_end, n_tokens: int) -> RelationEdges:
    """Read-only edges in (head, dep_start, dep_end, relation) order."""
    relation = np.asarray(relation, dtype=np.int32)
    head, dep_start, dep_end = (np.asarray(a, dtype=np.int64) for a in (head, dep_start, dep_end))
    order = np.lexsort((relation, dep_end, dep_start, head))
    arrays = [a[order] for a in (relation, head, dep_start, dep_end)]
    for a in arrays:
        a.setflags(write=False)
    return RelationEdges(names, *arrays, n_tokens)


def relation_counts(edge_sets: Iterable[RelationEdges]) -> Counter:
    """Edges per relation name over many snippets."""
    total: Counter = Counter()
    for edges in edge_sets:
        total.update(edges.counts())
    return total


def frequent_relations(edge_sets: Iterable[RelationEdges], min_count: int = DEFAULT_MIN_COUNT) -> tuple[str, ...]:
    """The relations with at least `min_count` edges over all `edge_sets`, most frequent first
    (ties by name). CodeSyntax (arXiv:2210.14473) and Chen et al. (arXiv:2309.07311) drop rare
    relations likewise; the default, `DEFAULT_MIN_COUNT` = 100, is codeprobe's.

    Raises:
        ValueError: `min_count` below 1.
    """
    if min_count < 1:
        raise ValueError(f"min_count must be at least 1, not {min_count}")
    counts = relation_counts(edge_sets)
    return tuple(name for name, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_count)
