"""`codeprobe astprobe`: train AST-Probe over a model's layers (`train`), and show what a trained
probe recovers for one snippet (`recover`)."""

from __future__ import annotations

import itertools
from pathlib import Path

import click

from codeprobe.cli.common import echo_json, file_argument, lang_option, read_source
from codeprobe.errors import InputError
from codeprobe.syntax.languages import canonical_language


def _int_list(value: str | None) -> list[int]:
    if not value:
        return []
    try:
        return [int(x) for x in value.replace(",", " ").split()]
    except ValueError:
        raise click.BadParameter(f"expected integers separated by commas, got {value!r}") from None


@click.group("astprobe")
def astprobe_group() -> None:
    """AST-Probe: recover syntax trees from a model's hidden states."""


@astprobe_group.command("train")
@click.option("--dataset", required=True, help="A dataset the loaders accept: .jsonl/.json with a "
              "code field, id<TAB>tokens .txt, a source directory or file, or 'stdlib'.")
@click.option("--lang", "language", required=True, help="Language of the snippets.")
@click.option("--model", default=None, help="Model directory or cached hub id (default: packaged MiniLM).")
@click.option("--layers", default="", help="Hidden-states layers, e.g. '0,3,6' (default: all; 0 = embeddings).")
@click.option("--rank", default=128, show_default=True, help="Probe rank for the layer sweep.")
@click.option("--ranks", default="", help="Also sweep these ranks at the best layer, e.g. '8,16,32,64,128,256'.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--n-snippets", type=int, default=None, help="Sample this many snippets (default: all).")
@click.option("--no-baselines", is_flag=True, help="Skip the random-weights baseline.")
@click.option("--epochs", type=int, default=20, show_default=True, help="Most training epochs.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--cache-dir", default=None, help="Token-vector cache root (default: ~/.cache/codeprobe).")
@click.option("--device", default=None, help="Where the model runs (default: CUDA if available).")
@click.option("--batch-size", type=int, default=16, show_default=True, help="Snippets per model forward pass.")
@click.option("--threads", type=int, default=None, help="torch CPU threads while training probes (default: torch's).")
def train_command(dataset, language, model, layers, rank, ranks, out_dir, n_snippets, no_baselines,
                  epochs, seed, cache_dir, device, batch_size, threads):
    """Train a probe per layer; write OUT/summary.json, tables, plots and the probes."""
    from codeprobe.probes.astprobe.runner import run_experiment
    from codeprobe.probes.astprobe.training import TrainConfig

    summary = run_experiment(
        dataset, language, out_dir, model=model, layers=_int_list(layers), rank=rank,
        ranks=_int_list(ranks), n_snippets=n_snippets, baselines=not no_baselines, seed=seed,
        config=TrainConfig(max_epochs=epochs, threads=threads), cache_dir=cache_dir, device=device,
        batch_size=batch_size,
    )
    for row in summary["layers"]:
        f1 = "diverged" if row["f1"] is None else f"F1 {row['f1']:.4f}"
        click.echo(f"layer {row['layer']:>2}: {f1}")
    base = summary["baselines"]
    if base:
        emb = base["embedding"]["f1"]
        best_random = max((r["f1"] for r in base["random"] if r["f1"] is not None), default=None)
        click.echo(f"baselines: embedding F1 {emb if emb is None else round(emb, 4)}, "
                   f"random weights best F1 {best_random if best_random is None else round(best_random, 4)}")
    click.echo(f"wrote {Path(out_dir) / 'summary.json'}")


@astprobe_group.command("recover")
@file_argument
@click.option("--probe", "probe_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="A saved probe directory (e.g. OUT/probes/layer_03_rank_128).")
@lang_option
@click.option("--model", default=None, help="Override the model the probe was trained on.")
@click.option("--cache-dir", default=None, help="Token-vector cache root.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of the drawing.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Also write an interactive page with the two trees side by side to this file.")
def recover_command(file, probe_dir, language, model, cache_dir, as_json, html_path):
    """Print FILE's gold tree and the tree the probe recovers, side by side, with P, R, F1."""
    from codeprobe.probes.astprobe.estimator import ASTProbe
    from codeprobe.probes.astprobe.recovery import render_tree

    extra = {"cache_dir": cache_dir} if cache_dir else {}
    probe = ASTProbe.load(probe_dir, model=model, **extra)
    if language is not None and canonical_language(language) != probe.language:
        raise InputError(f"this probe is for {probe.language}, not {language}")
    try:
        code = read_source(file).decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{file} is not UTF-8 text") from None
    trees = probe.predict([("snippet", code)])
    if not trees:
        raise InputError(f"{file}: no tree to recover (it does not parse cleanly, has fewer than 2 "
                         "tokens, or does not fit the model)")
    tree = trees[0]
    if html_path:
        from codeprobe.viz import explorer_html, explorer_payload, write_html

        name = Path(file).name if file != "-" else "<stdin>"
        payload = explorer_payload([(tree.id, code)], language=probe.language, cat=False, probe=probe, trees=trees,
                                   max_snippets=None)
        write_html(explorer_html(payload, title=f"{name}: AST-Probe trees (hidden state {probe.layer}, rank {probe.rank})",
                                 lines=[f"probe {probe_dir}; model {(probe.model_info_ or {}).get('name', probe.model)}"]),
                   html_path)
    if as_json:
        echo_json({
            "tokens": list(tree.tokens), "d": tree.d.tolist(), "c": list(tree.c), "u": list(tree.u),
            "gold": [list(x) for x in tree.gold], "predicted": [list(x) for x in tree.predicted],
            "precision": tree.precision, "recall": tree.recall, "f1": tree.f1,
            "layer": probe.layer, "rank": probe.rank,
        })
        return
    gold = render_tree(tree.gold, tree.tokens)
    pred = render_tree(tree.predicted, tree.tokens)
    width = max(len("gold"), *(len(x) for x in gold)) + 2
    click.echo(f"{'gold':<{width}}| recovered (layer {probe.layer}, rank {probe.rank})")
    click.echo(f"{'-' * width}+{'-' * (width)}")
    for left, right in itertools.zip_longest(gold, pred, fillvalue=""):
        click.echo(f"{left:<{width}}| {right}")
    click.echo(f"precision {tree.precision:.4f}  recall {tree.recall:.4f}  F1 {tree.f1:.4f}")
