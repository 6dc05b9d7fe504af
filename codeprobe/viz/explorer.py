"""The snippet explorer's data: per snippet, what CAT-probing and AST-Probe saw and decided.

For a few snippets, one forward pass with every head gives the token attention of each layer
and head (CAT-probing's alignment and pooling, `codeprobe.probes.cat`); the U-AST (or AST)
distances come from `codeprobe.syntax`; a saved AST-Probe probe, when given, recovers each
snippet's tree beside the gold one. The payload is JSON, kept small for an HTML page:

- attention: per (layer, head) matrix, uint8 of value / matrix max (display only), with the
  per-matrix maxima; column 0 of the heads is the head mean (the paper's CAT-score), 1 + h is
  head h;
- masks: the exact M_A of every (layer, head) over the layer's kept tokens, one bit per cell,
  so the page shows the pairs the CAT-score counted, not a re-thresholded approximation (under
  the causal convention, `settings.mask`, no cell right of the diagonal is set, and the page
  leaves those cells out of M_D too);
- distance: uint8 (uint16 if needed) tree distances over the aligned tokens, exact;
- scores: the CAT-scores of the snippets' rows (`codeprobe.probes.cat.scorer.CATAccumulator`, the
  library's scorer), rounded to 6 decimals;
- heads (with `heads=`, a run's chosen heads): the snippet's relation edges over the tokens the
  model read (`codeprobe.syntax.relation_edges`, `codeprobe.probes.heads.on_kept_tokens`), of the
  relations the run scored, each with whether the relation's chosen head hits it at k
  (`codeprobe.probes.heads.score_edges`), and only the attention rows those heads read at the
  edges' attending tokens (head->dep: the head token's, dep->head: the dependent's first
  token's), rounded to 4 decimals, with each row's top k; from CAT-probing's pass when it read
  the snippets with the same input limit (its per-head attention is what the heads method reads),
  else from a pass of their own.
Binary arrays are zlib-compressed and base64-encoded (a page decodes them with the browser's
DecompressionStream).

CAT-probing: Chen et al., EMNLP 2022 Findings (arXiv:2210.04633). AST-Probe: Hernández López et
al., ASE 2022 (arXiv:2206.11719).
"""

from __future__ import annotations

import base64
import math
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from codeprobe.errors import CodeprobeError, InputError
from codeprobe.probes.cat.dataset import SkippedSample, head_mean
from codeprobe.probes.cat.probe import DEFAULT_MAX_SUBWORDS, CATProbe, SnippetInputs, _items
from codeprobe.probes.cat.score import DEFAULT_QUANTILE, attention_thresholds, cell_index, linear_quantile
from codeprobe.probes.cat.scorer import CATAccumulator
from codeprobe.probes.cat.types import default_strategy
from codeprobe.probes.heads import DIRECTIONS, EdgeArrays, on_kept_tokens, score_edges, score_index
from codeprobe.syntax import parse, relation_edges

FORMAT = 1
DEFAULT_MAX_SNIPPETS = 20
DEFAULT_MAX_TOKENS = 64  # sampled snippets stay readable as matrices and keep the file small
MIN_TOKENS = 4
ROW_DIGITS = 4  # attention rows of the chosen heads: rounded, the payload stays small


@dataclass(frozen=True)
class ChosenHead:
    """One relation's attention head chosen on validation for one score and k, with its test
    accuracy (`test`, its interval `test_ci`, over `test_edges` scorable test edges), as a run's
    heads summary reports it."""

    relation: str
    layer: int
    head: int
    test: float | None = None
    test_ci: tuple[float | None, float | None] = (None, None)
    test_edges: int = 0


@dataclass(frozen=True)
class ChosenHeads:
    """The heads a run chose per relation, for the explorer to show on its snippets.

    Attributes:
        k: the k of top-k the heads were chosen at.
        scores: the (direction, dependent) pairs shown (`codeprobe.probes.heads.SCORES`), in order.
        heads: per score, the chosen head of each relation the run scored.
        causal: a decoder's attention (only tokens at or left of the attending one count).
        max_subwords: the model input limit the heads were scored with.
        headline: the index in `scores` of the run's headline score.
    """

    k: int
    scores: tuple[tuple[str, str], ...]
    heads: tuple[tuple[ChosenHead, ...], ...]
    causal: bool = False
    max_subwords: int = DEFAULT_MAX_SUBWORDS
    headline: int = 0

    def check(self) -> ChosenHeads:
        """Self, after checking its scores and shape.

        Raises:
            InputError: an unknown score, k < 1, or not one tuple of heads per score.
        """
        for direction, dependent in self.scores:
            score_index(direction, dependent)
        if self.k < 1 or len(self.heads) != len(self.scores) or not 0 <= self.headline < max(len(self.scores), 1):
            raise InputError("chosen heads need k >= 1, one tuple of heads per score and a headline among them")
        return self

    def relations(self) -> list[str]:
        """The relations with a chosen head under some score, sorted."""
        return sorted({h.relation for per in self.heads for h in per})


def pack(array: np.ndarray) -> str:
    """base64 of the zlib-compressed bytes of `array` (C order, little-endian)."""
    data = np.ascontiguousarray(array)
    if data.dtype.byteorder == ">":
        data = data.byteswap().view(data.dtype.newbyteorder("<"))
    return base64.b64encode(zlib.compress(data.tobytes(), 6)).decode("ascii")


def unpack(text: str, dtype: Any, shape: Sequence[int]) -> np.ndarray:
    """Inverse of `pack`."""
    raw = zlib.decompress(base64.b64decode(text))
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(tuple(shape))


def _num(x: float, digits: int = 6) -> float | None:
    return None if x is None or math.isnan(x) else round(float(x), digits)


def choose_snippets(
    items: Sequence[tuple[str, str]],
    language: str,
    *,
    max_snippets: int = DEFAULT_MAX_SNIPPETS,
    max_tokens: int | None = DEFAULT_MAX_TOKENS,
    seed: int = 0,
) -> list[tuple[str, str]]:
    """A seeded sample of at most `max_snippets` (id, code) pairs that parse cleanly and have
    MIN_TOKENS..`max_tokens` code tokens (None: no upper limit), in their original order; when
    too few qualify, the shortest clean others fill up."""
    sizes = []
    for ident, code in items:
        try:
            tree = parse(code, language)
        except CodeprobeError:
            continue
        if not tree.has_errors:
            sizes.append((ident, code, len(tree.tokens())))
    fits = [k for k, (_, _, n) in enumerate(sizes) if n >= MIN_TOKENS and (max_tokens is None or n <= max_tokens)]
    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(fits, size=min(max_snippets, len(fits)), replace=False).tolist()) if fits else set()
    rest = sorted((k for k in range(len(sizes)) if k not in chosen), key=lambda k: sizes[k][2])
    chosen |= set(rest[: max(0, max_snippets - len(chosen))])
    return [(sizes[k][0], sizes[k][1]) for k in sorted(chosen)]


def explorer_payload(
    snippets: Iterable[Any],
    *,
    language: str | None = None,
    model: Any = None,
    cat: bool = True,
    types: str | None = None,
    distance: str = "uast",
    quantile: float = DEFAULT_QUANTILE,
    mask: str = "auto",
    random_state: int = 0,
    max_subwords: int = DEFAULT_MAX_SUBWORDS,
    kept_types: Sequence[Sequence[str] | None] | None = None,
    probe: Any = None,
    trees: Sequence[Any] | None = None,
    max_snippets: int | None = DEFAULT_MAX_SNIPPETS,
    max_tokens: int | None = DEFAULT_MAX_TOKENS,
    seed: int = 0,
    batch_size: int = 8,
    heads: ChosenHeads | None = None,
) -> dict[str, Any]:
    """The explorer's data for a sample of `snippets` (see the module doc for the encoding).

    Args:
        snippets: code strings, (id, code) pairs or objects with .id and .code, one language.
        language: their language (default: the first snippet's).
        model: a LoadedModel, a model name or directory, or None (the packaged default).
        cat: compute CAT-probing's per-layer, per-head view (one forward pass, all heads).
        types, distance, quantile, mask, random_state, max_subwords: CAT-probing settings
            (types default: the language's default strategy; mask "auto": causal for a
            decoder, full otherwise).
        kept_types: per layer, the kept type names (None = all) to use instead of `types`:
            a run passes its own, so that the page counts what the run counted.
        probe: a fitted `ASTProbe`; its recovered trees are shown beside the gold ones.
        trees: `RecoveredTree`s already predicted (by id), instead of running `probe`.
        max_snippets, max_tokens, seed: the sample (see `choose_snippets`); max_snippets None
            keeps every snippet.
        heads: a run's chosen heads: each snippet's edges of their relations and those heads'
            attention rows at the edges' attending tokens (see the module doc).
    Returns:
        A JSON-able dict: `format`, `language`, `model`, `settings`, `kept_types`, `snippets`
        (each: `id`, `code`, optionally `cat` or `cat_skipped`, `astprobe`, and `heads` or
        `heads_skipped`), and with `heads` the chosen heads (`heads`).
    Raises:
        InputError: no snippets, mixed languages, or nothing to show.
    """
    lang, stream = _items(snippets, language)
    items = list(stream)
    if max_snippets is not None:
        items = choose_snippets(items, lang, max_snippets=max_snippets, max_tokens=max_tokens, seed=seed)
    if not items:
        raise InputError("no snippet parses cleanly: nothing to explore")
    out: dict[str, Any] = {
        "format": FORMAT,
        "language": lang,
        "model": None,
        "settings": None,
        "kept_types": None,
        "snippets": [{"id": i, "code": c} for i, c in items],
    }
    if not cat and probe is None and trees is None and heads is None:
        raise InputError("nothing to explore: ask for CAT-probing, AST-Probe trees, heads, or several")
    if cat or heads is not None:
        model = _loaded(model)  # once, for every pass
    inputs = None
    if cat:
        inputs = _add_cat(
            out,
            items,
            lang,
            model,
            types or default_strategy(lang),
            distance,
            quantile,
            mask,
            random_state,
            max_subwords,
            kept_types,
            batch_size,
        )
    if heads is not None:
        # CAT-probing's pass read every head (per_head) of the source text: where its input
        # limit is the heads method's, its attention is what that method reads.
        shared = inputs is not None and heads.max_subwords == max_subwords
        _add_heads(out, items, lang, model, heads.check(), inputs if shared else None, batch_size)
    if probe is not None or trees is not None:
        if trees is None:
            trees = probe.predict(items)
        _add_trees(out, items, lang, trees, probe)
    return out


def _model_info(info: Any) -> dict[str, Any]:
    d = info.as_dict()
    return {k: d.get(k) for k in ("name", "architecture", "n_layers", "n_heads", "is_code_model", "note")}


def _loaded(model: Any):
    from codeprobe.model import LoadedModel, load_model

    return model if isinstance(model, LoadedModel) else load_model(model)


def _add_cat(
    out, items, lang, model, types, distance, quantile, mask, random_state, max_subwords, kept_types, batch_size
) -> list[SnippetInputs | SkippedSample]:
    """The CAT view of every snippet into `out`; returns the pass's inputs (in `items`' order)."""
    probe = CATProbe(
        types=types,
        distance=distance,
        quantile=quantile,
        mask=mask,
        random_state=random_state,
        per_head=True,
        max_subwords=max_subwords,
        batch_size=batch_size,
    )
    extractor = probe.extractor(_loaded(model))
    mask = probe.resolved_mask(extractor)
    if kept_types is not None and len(kept_types) != extractor.info.n_layers:
        raise InputError(f"kept_types has {len(kept_types)} layers, the model {extractor.info.n_layers}")
    inputs = list(probe.inputs(items, extractor, lang))
    # The library's scorer gives every snippet's rows and, unless given, the kept types.
    scorer = CATAccumulator(
        language=lang,
        types=types,
        quantile=probe.quantile,
        top_k=probe.top_k,
        random_state=random_state,
        mask=mask,
        kept_types=kept_types,
        spill_dir=probe.spill_dir,
    )
    with scorer:
        scorer.extend(x if isinstance(x, SkippedSample) else x.sample for x in inputs)
        kept = scorer.kept_types()  # raises InputError when no snippet could be scored and none are given
        scored = any(not isinstance(x, SkippedSample) for x in inputs)
        rows = scorer.samples().columns() if scored else {}
    out["model"] = _model_info(extractor.info)
    out["settings"] = {
        "types": types if kept_types is None else "given",
        "distance": distance,
        "quantile": probe.quantile,
        "mask": mask,
        "random_state": random_state,
        "max_subwords": extractor.max_subwords,
    }
    out["kept_types"] = [None if k is None else sorted(k) for k in kept]
    per_snippet = len(rows["layer"]) // len(inputs) if rows else 0  # every snippet has L x (1 + H) rows
    for k, (entry, x) in enumerate(zip(out["snippets"], inputs)):
        if isinstance(x, SkippedSample):
            entry["cat_skipped"] = x.reason
        else:
            own = {name: column[k * per_snippet : (k + 1) * per_snippet] for name, column in rows.items()}
            entry["cat"] = snippet_cat(x, entry["code"], kept, lang, quantile=probe.quantile, mask=mask, rows=own)
    return inputs


def _add_heads(out, items, lang, model, heads: ChosenHeads, inputs, batch_size) -> None:
    """Each snippet's relation edges and the chosen heads' rows into `out`, from `inputs` (a
    pass that read every head of the source with `heads.max_subwords`) or a pass of their own."""
    shared = inputs is not None
    if not shared:
        probe = CATProbe(types="all", per_head=True, max_subwords=heads.max_subwords, batch_size=batch_size)
        extractor = probe.extractor(_loaded(model))
        inputs = list(probe.inputs(items, extractor, lang))
        if out["model"] is None:
            out["model"] = _model_info(extractor.info)
    names = heads.relations()
    index = {name: i for i, name in enumerate(names)}
    per_relation = [[None] * len(heads.scores) for _ in names]
    for s, per in enumerate(heads.heads):
        for h in per:
            per_relation[index[h.relation]][s] = {
                "layer": h.layer,
                "head": h.head,
                "test": _num(h.test),
                "test_ci": [_num(v) for v in h.test_ci],
                "test_edges": h.test_edges,
            }
    out["heads"] = {
        "k": heads.k,
        "causal": heads.causal,
        "max_subwords": heads.max_subwords,
        "shared_pass": shared,
        "scores": [{"direction": d, "dependent": p} for d, p in heads.scores],
        "headline": heads.headline,
        "relations": [{"name": n, "heads": per_relation[i]} for i, n in enumerate(names)],
    }
    for entry, x in zip(out["snippets"], inputs):
        if isinstance(x, SkippedSample):
            entry["heads_skipped"] = x.reason
        else:
            entry["heads"] = snippet_heads(x, heads, index, with_tokens=not shared or "cat" not in entry)


def top_k(row: np.ndarray, attending: int, k: int, causal: bool) -> list[int]:
    """The k tokens `row` ranks first (descending weight, ties to the lower index), the attending
    token left out and, when `causal`, every token right of it (the heads scores' conventions,
    `codeprobe.probes.heads.score`)."""
    candidates = np.arange(row.size)
    ok = candidates != attending
    if causal:
        ok &= candidates <= attending
    candidates = candidates[ok]
    order = candidates[np.lexsort((candidates, -row[candidates]))]
    return order[:k].tolist()


def snippet_heads(
    inputs: SnippetInputs, heads: ChosenHeads, index: dict[str, int], *, with_tokens: bool = True
) -> dict[str, Any]:
    """One snippet's relation edges and chosen heads' rows (`inputs` from a per-head pass,
    `index`: relation name -> its index in the payload's relations).

    Returns `edges`: [relation, head, dependent start, dependent end, hits] over the kept
    tokens, hits per shown score: whether that score's chosen head hits the edge at k (None: not
    scorable, or no head chosen); `rows`: [layer, head, attending token, weights, top k] for
    every (chosen head, attending token) an edge reads; `dropped_edges`: edges of these
    relations with a token the model did not read; with `with_tokens`, the kept tokens.
    """
    sample = inputs.sample
    attention = np.asarray(sample.attention)
    if attention.ndim != 4:
        raise InputError("the heads view needs per-head attention (L, H, n, n)")
    n_heads = attention.shape[1]
    tokens, positions = inputs.tokens, np.asarray(sample.positions, dtype=np.int64)
    everything = relation_edges(tokens)
    codes = np.asarray([index.get(name, -1) for name in everything.names] + [-1], dtype=np.int64)
    wanted = codes[np.asarray(everything.relation, dtype=np.int64)] >= 0
    kept, keep = on_kept_tokens(everything, positions, len(tokens))
    relation = codes[kept.relation]
    mine = relation >= 0
    edges = EdgeArrays.of(relation[mine], kept.head[mine], kept.dep_start[mine], kept.dep_end[mine])
    scores = score_edges(attention, edges, ks=(heads.k,), causal=heads.causal)
    chosen = [{index[h.relation]: h for h in per} for per in heads.heads]
    rows: dict[tuple[int, int, int], list] = {}
    out_edges = []
    for e in range(len(edges)):
        r, h, s, t = (int(v[e]) for v in (edges.relation, edges.head, edges.dep_start, edges.dep_end))
        hits = []
        for (direction, dependent), by_relation in zip(heads.scores, chosen):
            c = by_relation.get(r)
            i = score_index(direction, dependent)
            if c is None:
                hits.append(None)
                continue
            hits.append(bool(scores.hits[i, 0, c.layer * n_heads + c.head, e]) if scores.scorable[i, e] else None)
            at = h if direction == DIRECTIONS[0] else s
            if (c.layer, c.head, at) not in rows:
                row = np.asarray(attention[c.layer, c.head, at], dtype=np.float64)
                rows[(c.layer, c.head, at)] = [
                    c.layer,
                    c.head,
                    at,
                    [round(float(w), ROW_DIGITS) for w in row],
                    top_k(row, at, heads.k, heads.causal),
                ]
        out_edges.append([r, h, s, t, hits])
    out: dict[str, Any] = {
        "edges": out_edges,
        "rows": [rows[key] for key in sorted(rows)],
        "dropped_edges": int((wanted & ~keep).sum()),
    }
    if with_tokens:
        out["tokens"] = {
            "text": list(inputs.labels),
            "start": tokens.start_char[positions].tolist(),
            "end": tokens.end_char[positions].tolist(),
        }
    return out


def snippet_cat(
    inputs: SnippetInputs,
    code: str,
    kept: Sequence[frozenset[str] | None],
    language: str,
    *,
    quantile: float,
    rows: dict[str, np.ndarray],
    mask: str = "full",
) -> dict[str, Any]:
    """One snippet's CAT view (`inputs` made from `code`, `rows` its scored rows, per layer the
    head mean and every head): aligned tokens, packed attention (L, 1 + H, n, n), exact masks
    and thresholds over each layer's kept tokens (over the cells `mask` scores), distances and
    scores (L, 1 + H)."""
    sample = inputs.sample
    a = np.asarray(sample.attention, dtype=np.float64)
    if a.ndim != 4:
        raise InputError("the explorer needs per-head attention (L, H, n, n)")
    n_layers, n_heads, n = a.shape[0], a.shape[1], len(sample.types)
    stack = np.concatenate([head_mean(a)[:, None], a], axis=1)  # (L, 1 + H, n, n)
    scores = rows["score"].reshape(n_layers, 1 + n_heads)
    scale = stack.max(axis=(-2, -1))
    quant = np.rint(stack / np.where(scale > 0, scale, 1.0)[..., None, None] * 255).astype(np.uint8)

    tokens = parse(code, language).tokens()
    pos = np.asarray(sample.positions)
    dist = np.asarray(sample.distance)
    groups: dict[frozenset[str] | None, int] = {}
    kept_index, layer_group, masks, theta_a, theta_d = [], [], [], np.full((n_layers, 1 + n_heads), np.nan), []
    for layer, k in enumerate(kept):
        if k not in groups:
            groups[k] = len(kept_index)
            idx = np.arange(n) if k is None else np.flatnonzero([t in k for t in sample.types])
            kept_index.append(idx.tolist())
            d = dist[cell_index(idx, mask)].astype(np.float64).reshape(1, -1)
            theta_d.append(_num(linear_quantile(d, 1.0 - quantile)[0]) if idx.size else None)
        layer_group.append(groups[k])
        idx = np.asarray(kept_index[groups[k]], dtype=np.int64)
        if idx.size:
            sub = stack[layer][:, idx[:, None], idx[None, :]]
            thr = attention_thresholds(sub, quantile, mask=mask)  # (1 + H,)
            theta_a[layer] = thr
            strong = sub > thr[:, None, None]
            if mask == "causal":
                strong &= np.tri(idx.size, dtype=bool)  # right of the diagonal is no cell
            masks.append(strong.reshape(-1))
    bits = np.packbits(np.concatenate(masks)) if masks else np.zeros(0, np.uint8)
    big = int(dist.max(initial=0)) > 255
    return {
        "n_layers": n_layers,
        "n_heads": n_heads,
        "status": inputs.status,
        "tokens": {
            "text": list(inputs.labels),
            "type": list(sample.types),
            "start": tokens.start_char[pos].tolist(),
            "end": tokens.end_char[pos].tolist(),
        },
        "kept_index": kept_index,
        "layer_group": layer_group,
        "attention": pack(quant),
        "attention_max": [[_num(v, 6) for v in row] for row in scale],
        "masks": pack(bits),
        "theta_a": [[_num(v, 8) for v in row] for row in theta_a],
        "theta_d": theta_d,
        "distance": pack(dist.astype(np.uint16 if big else np.uint8)),
        "distance_dtype": "uint16" if big else "uint8",
        "scores": [[_num(v) for v in row] for row in scores],
        "random_baseline": [_num(v) for v in rows["random_baseline"][:: 1 + n_heads]],
        "positional_baseline": [_num(v) for v in rows["positional_baseline"][:: 1 + n_heads]],
        "n_tokens": [int(v) for v in rows["n_tokens"][:: 1 + n_heads]],
    }


def _add_trees(out, items, lang, trees, probe) -> None:
    by_id = {t.id: t for t in trees}
    for entry in out["snippets"]:
        tree = by_id.get(entry["id"])
        if tree is None:
            entry["astprobe_skipped"] = "not recovered (parse error, fewer than 2 tokens, or too long for the model)"
            continue
        tokens = parse(entry["code"], lang).tokens(collapse_strings=True)
        entry["astprobe"] = {
            "tokens": {"text": list(tree.tokens), "start": tokens.start_char.tolist(), "end": tokens.end_char.tolist()},
            "gold": [list(c) for c in tree.gold],
            "predicted": [list(c) for c in tree.predicted],
            "precision": _num(tree.precision),
            "recall": _num(tree.recall),
            "f1": _num(tree.f1),
        }
    if probe is not None:
        out["astprobe"] = {"hidden_state": probe.hidden_state, "rank": probe.rank}


def nonterminal_scores(trees: Sequence[Any]) -> list[dict[str, Any]]:
    """Per non-terminal label, over the recovered trees of a split: how many gold and recovered
    constituents carry it, and precision = recovered ones also in the gold tree / recovered,
    recall = gold ones also recovered / gold, F1 (micro over snippets), most frequent first.

    trees: `RecoveredTree`s (gold and predicted constituents as (label, lo, hi)).
    """
    gold_n, pred_n, pred_hit, gold_hit = Counter(), Counter(), Counter(), Counter()
    for t in trees:
        gold, pred = set(map(tuple, t.gold)), set(map(tuple, t.predicted))
        for label, lo, hi in t.gold:
            gold_n[label] += 1
            gold_hit[label] += (label, lo, hi) in pred
        for label, lo, hi in t.predicted:
            pred_n[label] += 1
            pred_hit[label] += (label, lo, hi) in gold
    out = []
    for label in sorted(set(gold_n) | set(pred_n), key=lambda x: (-gold_n[x], -pred_n[x], x)):
        p = pred_hit[label] / pred_n[label] if pred_n[label] else 0.0
        r = gold_hit[label] / gold_n[label] if gold_n[label] else 0.0
        out.append(
            {
                "label": label,
                "gold": gold_n[label],
                "predicted": pred_n[label],
                "precision": round(p, 6),
                "recall": round(r, 6),
                "f1": round(2 * p * r / (p + r), 6) if p + r else 0.0,
            }
        )
    return out
