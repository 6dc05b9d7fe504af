"""Reference per-head relation scores, written with plain loops from the definitions in
codeprobe.probes.heads (Clark et al. 2019; CodeSyntax, Shen et al. 2022): sort each row by
(descending weight, index), read off the top k, test membership edge by edge."""

from __future__ import annotations

SCORES = [("head->dep", "first"), ("head->dep", "any"), ("head->dep", "last"), ("dep->head", "first")]


def candidates(n, a, causal, exclude_self):
    out = []
    for j in range(n):
        if exclude_self and j == a:
            continue
        if causal and j > a:
            continue
        out.append(j)
    return out


def top_k(row, a, k, causal, exclude_self):
    """The top k tokens of row (attending token a): by descending weight, lower index first."""
    order = sorted(candidates(len(row), a, causal, exclude_self), key=lambda j: (-float(row[j]), j))
    return set(order[:k])


def attending_and_targets(score, h, s, e):
    """(attending token, its target tokens) of an edge under SCORES[score]."""
    if score == 0:
        return h, [s]
    if score == 1:
        return h, list(range(s, e))
    if score == 2:
        return h, [e - 1]
    return s, [h]


def edge_scores(attention, relation, head, dep_start, dep_end, ks, causal, exclude_self):
    """hits[score][k_index][layer][head][edge] (bool), sas[direction][layer][head][edge],
    scorable[score][edge], as nested lists."""
    n_layers, n_heads = len(attention), len(attention[0])
    n_edges = len(relation)
    hits = [[[[[False] * n_edges for _ in range(n_heads)] for _ in range(n_layers)] for _ in ks] for _ in SCORES]
    sas = [[[[0.0] * n_edges for _ in range(n_heads)] for _ in range(n_layers)] for _ in range(2)]
    scorable = [[False] * n_edges for _ in SCORES]
    for x in range(n_edges):
        h, s, e = int(head[x]), int(dep_start[x]), int(dep_end[x])
        for score in range(4):
            a, targets = attending_and_targets(score, h, s, e)
            n = len(attention[0][0])
            cand = set(candidates(n, a, causal, exclude_self))
            if not any(t in cand for t in targets):
                continue
            scorable[score][x] = True
            for layer in range(n_layers):
                for hd in range(n_heads):
                    row = attention[layer][hd][a]
                    for ki, k in enumerate(ks):
                        top = top_k(row, a, k, causal, exclude_self)
                        hits[score][ki][layer][hd][x] = any(t in top for t in targets)
                    if score == 1:
                        sas[0][layer][hd][x] = sum(float(row[t]) for t in targets)
                    if score == 3:
                        sas[1][layer][hd][x] = float(row[h])
    return hits, sas, scorable


def rule_prediction(name, a, tokens, n):
    """The token a rule predictor names for attending token a, or None."""
    if name.startswith("next:"):
        w = name[5:]
        for j in range(a + 1, n):
            if tokens is not None and tokens[j] == w:
                return j
        return None
    if name.startswith("prev:"):
        w = name[5:]
        for j in range(a - 1, -1, -1):
            if tokens is not None and tokens[j] == w:
                return j
        return None
    p = a + int(name)
    return p if 0 <= p < n else None


def rule_hits(names, relation, head, dep_start, dep_end, tokens, n, causal, exclude_self):
    """hits[score][predictor][edge] of the rule predictors `names`."""
    out = [[[False] * len(relation) for _ in names] for _ in SCORES]
    for x in range(len(relation)):
        h, s, e = int(head[x]), int(dep_start[x]), int(dep_end[x])
        for score in range(4):
            a, targets = attending_and_targets(score, h, s, e)
            cand = set(candidates(n, a, causal, exclude_self))
            if not any(t in cand for t in targets):
                continue
            for p, name in enumerate(names):
                out[score][p][x] = rule_prediction(name, a, tokens, n) in targets
    return out


def greedy(hits_by_predictor, k, candidates_idx):
    """CodeSyntax's greedy rule set: repeatedly the predictor adding the most new hits (first on ties)."""
    covered = set()
    chosen = []
    pool = list(candidates_idx)
    for _ in range(min(k, len(pool))):
        best, best_gain = None, -1
        for p in pool:
            gain = sum(1 for x, hit in enumerate(hits_by_predictor[p]) if hit and x not in covered)
            if gain > best_gain:
                best, best_gain = p, gain
        pool.remove(best)
        chosen.append(best)
        covered |= {x for x, hit in enumerate(hits_by_predictor[best]) if hit}
    return chosen
