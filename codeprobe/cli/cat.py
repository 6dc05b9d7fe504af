"""`codeprobe cat`: CAT-scores of one snippet, per layer, next to both baselines."""

from __future__ import annotations

import logging
import math
from pathlib import Path

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
from codeprobe.probes.cat import (
    DEFAULT_QUANTILE,
    DEFAULT_TOP_K,
    MEAN_HEAD,
    STRATEGIES,
    SkippedSample,
    default_strategy,
)
from codeprobe.probes.cat.dataset import head_mean
from codeprobe.probes.cat.probe import DEFAULT_MAX_SUBWORDS, DISTANCES, HEAD_POOLINGS, MODEL_INPUTS, CATProbe
from codeprobe.probes.cat.score import MASKS

log = logging.getLogger("codeprobe.cat")


def _num(x: float) -> float | None:
    """JSON has no NaN: a skipped score is null."""
    return None if math.isnan(x) else float(x)


@click.command("cat")
@file_argument
@model_option
@lang_option
@click.option(
    "--types",
    type=click.Choice(STRATEGIES),
    default=None,
    help="Frequent-type strategy; default: paper where the paper has a list for the language, else all.",
)
@click.option(
    "--distance",
    type=click.Choice(sorted(DISTANCES)),
    default="uast",
    show_default=True,
    help="U-AST (the paper's) or plain AST distance.",
)
@click.option(
    "--quantile",
    type=float,
    default=DEFAULT_QUANTILE,
    show_default=True,
    help="q: thresholds are the q-quantile of attention and the (1 - q)-quantile of distance.",
)
@click.option("--top-k", type=int, default=DEFAULT_TOP_K, show_default=True, help="k of --types topk.")
@click.option(
    "--mask",
    type=click.Choice(MASKS),
    default="auto",
    show_default=True,
    help="Cells scored: causal (key at or before the query, all a decoder can attend to), full (all, the "
    "paper's), auto (causal for a decoder, else full).",
)
@max_subwords_option(DEFAULT_MAX_SUBWORDS)
@click.option(
    "--model-input",
    type=click.Choice(MODEL_INPUTS),
    default="source",
    show_default=True,
    help="What the model reads: the source text, or the code tokens joined by spaces (the reference's).",
)
@click.option(
    "--head-pooling",
    type=click.Choice(HEAD_POOLINGS),
    default="mean",
    show_default=True,
    help="Mean or maximum over a layer's heads, before the block mean over subwords.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random-attention baseline.")
@device_option
@allow_parse_errors_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (logs go to standard error).")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    default=None,
    help="Draw attention and distance of one layer, and the per-layer curve, to this PNG.",
)
@click.option("--layer", type=int, default=None, help="Layer drawn by --plot (0-based; default: the last).")
@click.option(
    "--per-head",
    is_flag=True,
    help="Also score every attention head (printed as a layer x head grid; JSON rows with head >= 0).",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write an interactive page (every layer and head, the CAT-score's pairs) to this file.",
)
def cat_command(
    file,
    model,
    language,
    types,
    distance,
    quantile,
    top_k,
    mask,
    max_subwords,
    model_input,
    head_pooling,
    seed,
    device,
    allow_parse_errors,
    as_json,
    plot,
    layer,
    per_head,
    html_path,
):
    """CAT-scores of FILE ('-' for standard input) per layer of a model, with a random and a
    positional attention baseline on the same tokens."""
    from codeprobe.model import load_model

    code = read_source(file)
    lang = resolve_language(file, language)
    tree = parse_to_score(code, lang, file, allow_parse_errors)
    lang = tree.language
    probe = CATProbe(
        types=types or default_strategy(lang),
        distance=distance,
        quantile=quantile,
        random_state=seed,
        top_k=top_k,
        max_subwords=max_subwords,
        batch_size=1,
        allow_parse_errors=allow_parse_errors,
        model_input=model_input,
        head_pooling=head_pooling,
        mask=mask,
        per_head=per_head,
    )
    extractor = probe.extractor(load_model(model, device=device))
    scored_cells = probe.resolved_mask(extractor)
    info = extractor.info
    if info.is_code_model is False:
        log.warning("%s is a %s", info.name, info.note)
    name = Path(file).name if file != "-" else "<stdin>"
    inputs = list(probe.inputs([(name, tree.code)], extractor, lang))
    if isinstance(inputs[0], SkippedSample):
        raise InputError(f"{file} cannot be scored: {inputs[0].reason}")
    snippet = inputs[0]
    if snippet.status == "truncated":
        log.warning(
            "%s: input cut to %d subwords; the tokens after the cut are not scored", name, extractor.max_subwords
        )
    result = probe.score_inputs(inputs, lang, extractor)
    rows = result.samples
    mean = np.flatnonzero(rows.head == MEAN_HEAD)  # the paper's score: head-mean attention
    n_layers = int(rows.layer.max()) + 1
    settings = {k: v for k, v in result.settings.items() if k not in ("model", "grammar", "versions", "language")}

    if plot:
        chosen = n_layers - 1 if layer is None else layer
        if not 0 <= chosen < n_layers:
            raise InputError(f"--layer must be in 0..{n_layers - 1}, got {layer}")
        from codeprobe.probes.cat.plot import plot_snippet

        kept = result.kept_types[chosen]
        idx = [i for i, t in enumerate(snippet.sample.types) if kept is None or t in kept]
        if not idx:
            raise InputError(f"no token of layer {chosen} is kept by --types {probe.types}: nothing to draw")
        a = head_mean(snippet.sample.attention)[chosen]
        plot_snippet(
            plot,
            labels=[snippet.labels[i] for i in idx],
            attention=a[idx][:, idx],
            distance=snippet.sample.distance[idx][:, idx],
            layer=chosen,
            scores=rows.score[mean],
            random_baseline=rows.random_baseline[mean],
            positional_baseline=rows.positional_baseline[mean],
            distance_name="U-AST distance" if distance == "uast" else "AST distance",
            title=f"{name}: {info.name}, {lang}, types {probe.types}",
        )
        log.info("wrote %s", plot)

    if html_path:
        from codeprobe.viz import explorer_html, explorer_payload, write_html

        payload = explorer_payload(
            [(name, tree.code)],
            language=lang,
            model=extractor.loaded,
            types=probe.types,
            distance=distance,
            quantile=probe.quantile,
            mask=scored_cells,
            random_state=seed,
            max_subwords=extractor.max_subwords,
            kept_types=result.kept_types,
            max_snippets=None,
        )
        write_html(
            explorer_html(
                payload,
                title=f"{name}: CAT-probing of {info.name}",
                lines=[
                    f"{lang}, types {probe.types}, {distance} distance, q={probe.quantile}, mask {scored_cells}; "
                    f"{len(snippet.sample.types)} of {len(tree.tokens())} code tokens aligned "
                    f"({snippet.status})"
                ],
                warnings=[f"{info.name} is a {info.note}"] if info.is_code_model is False else [],
            ),
            html_path,
        )
        log.info("wrote %s", html_path)

    if as_json:
        echo_json(
            {
                "file": name,
                "model": info.as_dict(),
                "language": lang,
                "grammar": result.settings["grammar"],
                "settings": settings,
                "versions": result.settings["versions"],
                "snippet": {
                    "status": snippet.status,
                    "n_aligned_tokens": len(snippet.sample.types),
                    "n_code_tokens": len(tree.tokens()),
                    "n_subwords": snippet.n_subwords,
                    "n_unmatched_subwords": snippet.n_unmatched_subwords,
                    "n_tokens_without_subword": snippet.n_tokens_without_subword,
                    "n_shared_subwords": snippet.n_shared_subwords,
                },
                "kept_types": result.metadata()["kept_types"],
                "layers": [
                    {
                        "layer": int(rows.layer[r]),
                        "head": int(rows.head[r]),
                        "score": _num(rows.score[r]),
                        "random_baseline": _num(rows.random_baseline[r]),
                        "positional_baseline": _num(rows.positional_baseline[r]),
                        "n_tokens": int(rows.n_tokens[r]),
                        "skip_reason": rows.skip_reason[r],
                    }
                    for r in range(len(rows))
                ],
            }
        )
        return
    click.echo(
        f"# {name}: {info.name} ({info.architecture}, {n_layers} layers), {lang}, types {probe.types}"
        f"{f' (k={top_k})' if probe.types == 'topk' else ''}, {distance} distance, q={probe.quantile}, "
        f"mask {scored_cells}{' (pairs with the key at or before the query)' if scored_cells == 'causal' else ''}"
    )
    click.echo(f"# {len(snippet.sample.types)} of {len(tree.tokens())} code tokens aligned ({snippet.status})")
    click.echo(f"{'layer':>5}  {'tokens':>6}  {'score':>7}  {'random':>7}  {'position':>8}")
    for r in mean:
        note = f"  ({rows.skip_reason[r]})" if rows.skip_reason[r] else ""
        click.echo(
            f"{rows.layer[r]:>5}  {rows.n_tokens[r]:>6}  {rows.score[r]:>7.4f}  {rows.random_baseline[r]:>7.4f}  "
            f"{rows.positional_baseline[r]:>8.4f}{note}"
        )
    if per_head:
        n_heads = int(rows.head.max()) + 1
        click.echo(f"# CAT-score per head (columns: head 0..{n_heads - 1}; mean = head-mean attention)")
        click.echo(f"{'layer':>5}  {'mean':>6}  " + "  ".join(f"{'h' + str(h):>6}" for h in range(n_heads)))
        for ell in range(n_layers):
            sel = rows.layer == ell
            cells = [rows.score[sel & (rows.head == h)][0] for h in range(-1, n_heads)]
            click.echo(f"{ell:>5}  " + "  ".join(f"{v:>6.4f}" for v in cells))
