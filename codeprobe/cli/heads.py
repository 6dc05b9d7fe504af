"""`codeprobe heads`: one snippet's relation edges and, for each, the attention heads that get it
right (top-k), beside the best fixed-offset baseline on the same edges.

The attention is CAT-probing's: `CATProbe(per_head=True).inputs` runs the model once and pools
every head's subword attention to the code tokens it kept (tokens with at least one subword,
cut at `--max-subwords` on a token boundary). Edges come from `relation_edges` over all code
tokens; an edge is scored when its head token and every token of its dependent span were kept
(`codeprobe.probes.heads.on_kept_tokens`), and the others are counted as dropped. Scores are
`codeprobe.probes.heads.score_edges`' (the attending token excluded from its own top k; for a
decoder, only tokens at or left of the attending one are candidates).

One snippet gives no intervals, and its best heads and offsets are chosen on the very edges
they are counted on: a look at one example, not a result (`codeprobe run` gives both, chosen on
validation and reported on test).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
import numpy as np

from codeprobe.cli.common import (
    allow_parse_errors_option,
    device_option,
    echo_json,
    file_argument,
    lang_option,
    max_subwords_option,
    model_option,
    parse_to_score,
    read_source,
    resolve_language,
)
from codeprobe.errors import InputError
from codeprobe.probes.cat import SkippedSample
from codeprobe.probes.cat.probe import DEFAULT_MAX_SUBWORDS, CATProbe
from codeprobe.probes.heads import DEFAULT_MAX_OFFSET, DEPENDENT, SCORES, on_kept_tokens, score_edges, score_index
from codeprobe.probes.heads.baselines import greedy_predictors, predictor_names, rule_hits
from codeprobe.probes.heads.score import check_ks
from codeprobe.syntax import relation_edges

log = logging.getLogger("codeprobe.heads")

NO_INTERVALS = (
    "one snippet: no intervals, and best heads and offsets are chosen on the edges they are counted on "
    "(intervals, and a choice on validation reported on test, need a dataset: codeprobe run)"
)
_SHOWN_HEADS = 12  # heads listed per edge and k in the text output (--json has all)


def score_name(index: int) -> str:
    """'head->dep/first', ... for an index of `SCORES`."""
    direction, dependent = SCORES[index]
    return f"{direction}/{dependent}"


def _heads_of(mask: np.ndarray, n_heads: int) -> list[list[int]]:
    """[[layer, head], ...] of the flat head indices (layer-major) where mask is True."""
    return [[int(g) // n_heads, int(g) % n_heads] for g in np.flatnonzero(mask)]


def _text(texts: list[str], start: int, end: int, limit: int = 48) -> str:
    s = " ".join(" ".join(t.split()) for t in texts[start:end])
    return s if len(s) <= limit else s[: limit - 3] + "..."


def snippet_heads(
    code: str | bytes,
    language: str,
    *,
    name: str = "<snippet>",
    model: Any = None,
    ks: tuple[int, ...] = (1, 3),
    dependent: str = "first",
    max_subwords: int = DEFAULT_MAX_SUBWORDS,
    device: str | None = None,
    allow_parse_errors: bool = False,
    max_offset: int = DEFAULT_MAX_OFFSET,
) -> tuple[dict[str, Any], np.ndarray]:
    """Everything `codeprobe heads` shows of one snippet: (the JSON object, the token attention
    (L, H, k, k) over the kept tokens).

    model: a LoadedModel, a model directory or cached hub id, or None (the packaged model).

    Raises:
        InputError: an unknown language, empty code, a bad k or dependent, a snippet the model
            cannot read; CodeParseError: syntax errors without allow_parse_errors.
    """
    from codeprobe.model import load_model

    ks = check_ks(ks)
    if dependent not in DEPENDENT:
        raise InputError(f"--dependent must be one of {', '.join(DEPENDENT)}, got {dependent!r}")
    tree = parse_to_score(code, language, name, allow_parse_errors)
    lang = tree.language
    tokens = tree.tokens()
    all_edges = relation_edges(tokens)
    probe = CATProbe(
        types="all", per_head=True, max_subwords=max_subwords, batch_size=1, allow_parse_errors=allow_parse_errors
    )
    extractor = probe.extractor(load_model(model, device=device) if not hasattr(model, "info") else model)
    info = extractor.info
    snippet = next(iter(probe.inputs([(name, tree.code)], extractor, lang)))
    if isinstance(snippet, SkippedSample):
        raise InputError(f"{name} cannot be read by the model: {snippet.reason}")
    positions = np.asarray(snippet.sample.positions, dtype=np.int64)
    attention = np.asarray(snippet.sample.attention)
    n_layers, n_heads, n, _ = attention.shape
    edges, keep = on_kept_tokens(all_edges, positions, len(tokens))
    causal = info.kind == "decoder"
    scores = score_edges(attention, edges, ks=ks, causal=causal)
    offsets = rule_hits(edges, n, None, max_offset=max_offset, causal=causal)  # (4, P, E)
    offset_names = predictor_names(max_offset, ())
    texts = list(snippet.labels)
    used = [score_index("head->dep", dependent), score_index("dep->head")]

    edge_rows = []
    for e in range(len(edges)):
        h, s, t = int(edges.head[e]), int(edges.dep_start[e]), int(edges.dep_end[e])
        row = {
            "relation": all_edges.names[int(edges.relation[e])],
            "head": h,
            "dependent": [s, t],
            "code_head": int(positions[h]),
            "code_dependent": [int(positions[s]), int(positions[t - 1]) + 1],
            "head_text": texts[h],
            "dependent_text": _text(texts, s, t, limit=10**6),
            "scores": {},
        }
        for i in range(len(SCORES)):
            row["scores"][score_name(i)] = {
                "scorable": bool(scores.scorable[i, e]),
                "hits": {str(k): _heads_of(scores.hits[i, j, :, e], n_heads) for j, k in enumerate(ks)},
                "offsets": [offset_names[p] for p in np.flatnonzero(offsets[i, :, e])],
            }
        edge_rows.append(row)

    relations = []
    for code_ in np.unique(edges.relation):
        mine = np.flatnonzero(edges.relation == code_)
        summary: dict[str, Any] = {}
        for i in range(len(SCORES)):
            ok = mine[scores.scorable[i, mine]]
            per_k = {}
            for j, k in enumerate(ks):
                count = scores.hits[i, j][:, ok].sum(axis=1)  # (G,)
                best = int(count.max()) if ok.size else 0
                chosen = greedy_predictors(offsets[i][:, ok], k, np.arange(len(offset_names))) if ok.size else []
                covered = offsets[i][chosen][:, ok].any(axis=0).sum() if chosen else 0
                per_k[str(k)] = {
                    "best_hits": best,
                    "best_heads": _heads_of(count == best, n_heads) if best else [],
                    "offset_baseline": {"offsets": [offset_names[p] for p in chosen], "hits": int(covered)},
                }
            summary[score_name(i)] = {"scorable": int(ok.size), "k": per_k}
        relations.append(
            {"name": all_edges.names[int(code_)], "n_edges": int(mine.size), "edges": mine.tolist(), "scores": summary}
        )

    notes = [NO_INTERVALS]
    if causal:
        notes.append(
            f"{info.name} is a decoder: only the direction that looks left exists; an edge whose target "
            "lies right of the attending token is not scorable (head->dep edges mostly are not)"
        )
    if info.is_code_model is False:
        notes.insert(0, f"{info.name} is a {info.note}")
    out = {
        "file": name,
        "language": lang,
        "grammar": {"package": tree.grammar.package, "version": tree.grammar.package_version},
        "model": info.as_dict(),
        "settings": {
            "ks": list(ks),
            "dependent": dependent,
            "shown_scores": [score_name(i) for i in used],
            "causal": causal,
            "exclude_self": True,
            "max_offset": max_offset,
        },
        "input": {
            "status": snippet.status,
            "max_subwords": extractor.max_subwords,
            "n_subwords": snippet.n_subwords,
            "n_code_tokens": len(tokens),
            "n_kept_tokens": n,
            "n_tokens_without_subword": snippet.n_tokens_without_subword,
            "n_edges": len(all_edges),
            "n_edges_scored": len(edges),
            "n_edges_dropped": int((~keep).sum()),
        },
        "n_layers": n_layers,
        "n_heads": n_heads,
        "scores": [score_name(i) for i in range(len(SCORES))],
        "code": tree.code,
        "tokens": [
            {
                "text": texts[i],
                "type": snippet.sample.types[i],
                "code_index": int(positions[i]),
                "start": int(tokens.start_char[positions[i]]),
                "end": int(tokens.end_char[positions[i]]),
            }
            for i in range(n)
        ],
        "relations": relations,
        "edges": edge_rows,
        "dropped_edges": [r for r, kept in zip(all_edges.to_records(), keep.tolist()) if not kept],
        "intervals": None,
        "notes": notes,
    }
    return out, attention


def _heads_text(heads: list[list[int]], limit: int = _SHOWN_HEADS) -> str:
    if not heads:
        return "-"
    shown = " ".join(f"{layer}.{head}" for layer, head in heads[:limit])
    return shown + (f" (+{len(heads) - limit})" if len(heads) > limit else "")


def format_text(obj: dict[str, Any]) -> list[str]:
    """The text output of `codeprobe heads`."""
    info, inp, st = obj["model"], obj["input"], obj["settings"]
    shown = st["shown_scores"]
    ks = [str(k) for k in st["ks"]]
    lines = [
        f"# {obj['file']}: {info['name']} ({info['architecture']}, {info['kind']}, "
        f"{obj['n_layers']} layers x {obj['n_heads']} heads), {obj['language']}",
    ]
    lines += [f"# note: {n}" for n in obj["notes"]]
    lines.append(
        f"# {inp['n_kept_tokens']} of {inp['n_code_tokens']} code tokens read ({inp['status']}, input limit "
        f"{inp['max_subwords']} subwords); {inp['n_edges_scored']} of {inp['n_edges']} relation edges scored, "
        f"{inp['n_edges_dropped']} dropped (a token outside what the model read)"
    )
    lines.append(
        f"# heads as layer.head (0-based); a head hits an edge at k when the target is among the k tokens "
        f"it attends to most from the attending token (itself excluded); head->dep: head token -> dependent's "
        f"{st['dependent']} token; dep->head: dependent's first token -> head token; n/s: not scorable"
    )
    toks = [t["text"] for t in obj["tokens"]]
    for rel in obj["relations"]:
        lines.append("")
        lines.append(f"{rel['name']}  ({rel['n_edges']} edge{'s' if rel['n_edges'] != 1 else ''})")
        for e in rel["edges"]:
            edge = obj["edges"][e]
            s, t = edge["dependent"]
            lines.append(f"  {edge['head']}:{edge['head_text']} -> [{s}, {t}) {_text(toks, s, t)}")
            for name in shown:
                sc = edge["scores"][name]
                cells = [f"top-{k}: {_heads_text(sc['hits'][k])}" for k in ks] if sc["scorable"] else ["n/s"]
                lines.append(f"    {name.split('/')[0]:<9}  " + "   ".join(cells))
    lines.append("")
    lines.append(
        "# per relation and direction, at each k: the most edges one head hits (the heads that do, "
        "or how many when more than 4), and the best fixed offsets' hits (a greedy set of k offsets)"
    )
    header = f"{'relation':<40} {'direction':<9}"
    for k in ks:
        header += f"  {'top-' + k + ': model':<24} {'offsets':<14}"
    lines.append(header.rstrip())
    for rel in obj["relations"]:
        for name in shown:
            sc = rel["scores"][name]
            row = f"{rel['name']:<40} {name.split('/')[0]:<9}"
            if not sc["scorable"]:
                lines.append(row + "  n/s")
                continue
            for k in ks:
                c, base = sc["k"][k], sc["k"][k]["offset_baseline"]
                best = c["best_heads"]
                who = _heads_text(best) if 0 < len(best) <= 4 else f"{len(best)} heads"
                model = f"{c['best_hits']}/{sc['scorable']} ({who})" if best else f"0/{sc['scorable']}"
                offsets = f"{base['hits']}/{sc['scorable']} ({','.join(base['offsets']) or '-'})"
                row += f"  {model:<24} {offsets:<14}"
            lines.append(row.rstrip())
    return lines


@click.command("heads")
@file_argument
@lang_option
@model_option
@click.option("--k", "ks", default="1,3", show_default=True, help="The k of top-k, comma-separated.")
@click.option(
    "--dependent",
    type=click.Choice(DEPENDENT),
    default="first",
    show_default=True,
    help="Which token of the dependent span head->dep must hit (any: some token of it).",
)
@max_subwords_option(DEFAULT_MAX_SUBWORDS)
@device_option
@allow_parse_errors_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (logs go to standard error).")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write a page (relation picker, edges on the code, a head's attention row) to this file.",
)
def heads_command(file, language, model, ks, dependent, max_subwords, device, allow_parse_errors, as_json, html_path):
    """Relation edges of FILE ('-' for standard input) and, for each, the attention heads whose
    top-k attended tokens hit it, beside the best fixed-offset baseline."""
    try:
        k_values = tuple(int(k) for k in str(ks).split(",") if k.strip())
    except ValueError:
        raise InputError(f"--k must be comma-separated integers, got {ks!r}") from None
    name = Path(file).name if file != "-" else "<stdin>"
    obj, attention = snippet_heads(
        read_source(file),
        resolve_language(file, language),
        name=name,
        model=model,
        ks=k_values,
        dependent=dependent,
        max_subwords=max_subwords,
        device=device,
        allow_parse_errors=allow_parse_errors,
    )
    if obj["model"]["is_code_model"] is False:
        log.warning("%s is a %s", obj["model"]["name"], obj["model"]["note"])
    if obj["input"]["status"] == "truncated":
        log.warning("%s: input cut to %d subwords; edges past the cut are dropped", name, obj["input"]["max_subwords"])
    if html_path:
        from codeprobe.viz import heads_html, write_html

        write_html(heads_html(obj, attention), html_path)
        log.info("wrote %s", html_path)
    if as_json:
        echo_json(obj)
        return
    for line in format_text(obj):
        click.echo(line)
