"""Reference CAT-probing: written straight from the spec with Python loops and networkx, the
way the original code (nchen909/CodeAttention `attention.py`) computed it. Tests check the fast
path in codeprobe.probes.cat against it; benchmarks/bench_cat.py times both.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np


def quantile(values, q):
    """numpy's default ('linear') quantile, by hand: sort, then interpolate at (N - 1) q."""
    xs = sorted(float(v) for v in values)
    h = (len(xs) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


def cells(n, causal=False):
    """The scored cells (i, j), row-major: all n^2, or (causal: a decoder's query i attends to
    keys j <= i only) the pairs with j <= i, diagonal included."""
    return [(i, j) for i in range(n) for j in range(n) if not causal or j <= i]


def cat_score(a, d, q=0.75, causal=False):
    """s = |A > theta_A and D < theta_D| / |union| over the scored cells (`cells`: all n^2, or
    the causal pairs j <= i), both thresholds over the same cells; None when the union is empty
    or n == 0. a, d: n x n nested sequences."""
    n = len(d)
    if n == 0:
        return None
    cells_ = cells(n, causal)
    theta_a = quantile([a[i][j] for i, j in cells_], q)
    theta_d = quantile([d[i][j] for i, j in cells_], 1 - q)
    inter = union = 0
    for i, j in cells_:
        in_a = a[i][j] > theta_a
        in_d = d[i][j] < theta_d
        inter += in_a and in_d
        union += in_a or in_d
    return inter / union if union else None


def head_mean(sub_attention):
    """Mean over heads, (L, H, m, m) -> (L, m, m), as the reference does it (one tensor op)."""
    return np.asarray(sub_attention, dtype=np.float64).mean(axis=1)


def head_max(sub_attention):
    """Maximum over heads, (L, H, m, m) -> (L, m, m): the reference's `action_per_head="max"`."""
    return np.asarray(sub_attention, dtype=np.float64).max(axis=1)


def block_mean(sub_attention_layer, members):
    """Token attention of one layer: for tokens i, j, the mean over the block of subword pairs
    (p in S_i, q in S_j) of the subword attention (m x m), in Python loops. members[i] = S_i."""
    n = len(members)
    out = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            total = 0.0
            for p in members[i]:
                for r in members[j]:
                    total += float(sub_attention_layer[p][r])
            out[i][j] = total / (len(members[i]) * len(members[j]))
    return out


def leaves(tree):
    """Node indices of the leaves in source order, comments and zero-width leaves dropped
    (the syntax core's token rule), from the raw parent array."""
    has_child = set(int(p) for p in tree.parent if p >= 0)
    out = []
    for v in range(tree.n_nodes):
        kind = tree.type_names[tree.type_ids[v]]
        if v in has_child or "comment" in kind or tree.end_byte[v] <= tree.start_byte[v]:
            continue
        out.append(v)
    return out


def uast_graph(tree, leaf_nodes, *, extra_edges=True):
    """networkx graph over every node: the undirected tree, plus (U-AST) an edge between
    consecutive leaves and from each identifier leaf (the language's identifier types, e.g.
    `identifier`; `name` in PHP) to the previous one with the same text."""
    from codeprobe.syntax.languages import language_spec

    identifiers = set(language_spec(tree.language).identifiers)
    g = nx.Graph()
    g.add_nodes_from(range(tree.n_nodes))
    for v in range(1, tree.n_nodes):
        g.add_edge(v, int(tree.parent[v]))
    if extra_edges:
        for u, v in zip(leaf_nodes, leaf_nodes[1:]):
            g.add_edge(u, v)
        last = {}
        for v in leaf_nodes:
            if tree.type_names[tree.type_ids[v]] in identifiers:
                text = tree.node_text(v)
                if text in last:
                    g.add_edge(last[text], v)
                last[text] = v
    return g


def distance(tree, *, uast=True):
    """Leaf-to-leaf hop counts (list of lists) from networkx all-pairs BFS over every node, like
    the reference; with uast=False, in the plain tree."""
    leaf_nodes = leaves(tree)
    lengths = dict(nx.all_pairs_shortest_path_length(uast_graph(tree, leaf_nodes, extra_edges=uast)))
    return [[lengths[u][v] for v in leaf_nodes] for u in leaf_nodes]


def type_rates(types_per_sample, attention_per_sample, q=0.75, causal=False):
    """num(t), hit[layer][t] and the bar of eligibility by loops over the scored cells
    (`cells`). attention_per_sample[c][layer] is the n_c x n_c head-mean token attention of
    sample c. The bar is half a token's cells (its row's plus its column's) per sample, summed:
    sum_c n_c over all cells, sum_c (n_c + 1) / 2 over the causal ones."""
    num, hit, bar = {}, {}, 0
    for types, layers in zip(types_per_sample, attention_per_sample):
        n = len(types)
        scored = cells(n, causal)
        bar += sum((i == 0) + (j == 0) for i, j in scored) / 2
        for i, j in scored:
            for t in (types[i], types[j]):
                num[t] = num.get(t, 0) + 1
        for layer, a in enumerate(layers):
            counts = hit.setdefault(layer, {})
            if n == 0:
                continue
            theta = quantile([a[i][j] for i, j in scored], q)
            for i, j in scored:
                if a[i][j] > theta:
                    for t in (types[i], types[j]):
                        counts[t] = counts.get(t, 0) + 1
    return num, hit, bar


def top_types(num, hit_layer, total, k):
    """The k eligible types (num > total) of highest rate, ties by name."""
    eligible = [t for t in num if num[t] > total]
    eligible.sort(key=lambda t: (-hit_layer.get(t, 0) / num[t], t))
    return set(eligible[:k])


def score_kept(types, a, d, kept, q=0.75, causal=False):
    """The score on the tokens whose type is in `kept` (None = all)."""
    idx = [i for i, t in enumerate(types) if kept is None or t in kept]
    return cat_score([[a[i][j] for j in idx] for i in idx], [[d[i][j] for j in idx] for i in idx], q, causal)


def positional_attention(positions, causal=False):
    """exp(-|p_i - p_j|) by loops; 0 where p_j > p_i under the causal convention."""
    return [[math.exp(-abs(pi - pj)) if not causal or pj <= pi else 0.0 for pj in positions] for pi in positions]


def random_attention(draws, causal=False):
    """Rows of the i.i.d. `draws` (n x n) divided by their sums, by loops; under the causal
    convention only the keys j <= i are kept (the rest 0) and divide."""
    n = len(draws)
    out = []
    for i in range(n):
        row = [float(draws[i][j]) if not causal or j <= i else 0.0 for j in range(n)]
        total = sum(row)
        out.append([v / total for v in row])
    return out


def subword_attention(loaded, code, spans, max_subwords):
    """Raw model attention of one snippet and each leaf's subwords, without the fast path.

    loaded: a codeprobe LoadedModel; spans: the leaves' [start, end) character offsets in
    source order. A subword belongs to every leaf its span overlaps; whitespace-only and empty
    subwords belong to none; a leaf with no subword is dropped. Input longer than max_subwords
    (specials included) is cut at the largest position that splits no kept leaf.
    Returns (kept leaf indices, members: list of subword positions in the model input per kept
    leaf, attention float32 (L, H, m, m) of the whole framed input, as the model returns it).
    """
    import torch

    enc = loaded.tokenizer(code, add_special_tokens=False, return_offsets_mapping=True, split_special_tokens=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    owners = []
    for a, b in spans:
        owners.append([p for p, (s, e) in enumerate(offsets) if code[s:e].strip() and s < b and a < e])
    kept = [i for i, m in enumerate(owners) if m]
    budget = max_subwords - len(loaded.prefix_ids) - len(loaded.suffix_ids)
    if len(ids) > budget:
        cut = budget
        while any(min(owners[i]) < cut <= max(owners[i]) for i in kept):
            cut -= 1
        ids = ids[:cut]
        kept = [i for i in kept if max(owners[i]) < cut]
    shift = len(loaded.prefix_ids)
    members = [[p + shift for p in owners[i]] for i in kept]
    inputs = torch.tensor([list(loaded.prefix_ids) + list(ids) + list(loaded.suffix_ids)])
    with torch.no_grad():
        out = loaded.model(input_ids=inputs, output_attentions=True, return_dict=True)
    attention = np.stack([a[0].float().numpy() for a in out.attentions])
    return kept, members, attention


def snippet_scores(
    tree, kept_leaves, members, attention, kept_types_per_layer, q=0.75, uast=True, head_pooling="mean", causal=False
):
    """Per layer, the reference way: head mean (or max), block mean in loops, networkx
    all-pairs BFS (recomputed for every layer, as the reference did), then the loop score on
    the tokens whose type is kept. Returns (scores per layer, token attention per layer, types)."""
    heads_mean = head_max(attention) if head_pooling == "max" else head_mean(attention)
    nodes = leaves(tree)
    types = [tree.type_names[tree.type_ids[nodes[i]]] for i in kept_leaves]
    scores, token_attention = [], []
    for layer, kept_types in enumerate(kept_types_per_layer):
        a = block_mean(heads_mean[layer], members)
        d_all = distance(tree, uast=uast)
        d = [[d_all[i][j] for j in kept_leaves] for i in kept_leaves]
        scores.append(score_kept(types, a, d, kept_types, q, causal))
        token_attention.append(a)
    return scores, token_attention, types


def model_scores(loaded, snippets, kept_types_per_layer, causal=False, max_subwords=256):
    """{(id, layer): score} of Python `snippets` ((id, code) pairs) from a codeprobe LoadedModel's
    raw attention, the reference way: special tokens (BOS too) drop out in the block mean over
    the code tokens' own subwords."""
    from codeprobe.syntax import parse

    out = {}
    for ident, code in snippets:
        tree = parse(code, "python")
        nodes = leaves(tree)
        spans = [(int(tree.char_offsets[tree.start_byte[v]]), int(tree.char_offsets[tree.end_byte[v]])) for v in nodes]
        kept_leaves, members, attention = subword_attention(loaded, code, spans, max_subwords)
        scores, _, _ = snippet_scores(tree, kept_leaves, members, attention, kept_types_per_layer, causal=causal)
        out.update({(ident, layer): s for layer, s in enumerate(scores)})
    return out
