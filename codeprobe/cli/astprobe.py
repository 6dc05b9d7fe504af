"""`codeprobe astprobe`: train AST-Probe over a model's hidden states (`train`), and show what a
trained probe recovers for one snippet (`recover`)."""

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
@click.option(
    "--dataset",
    required=True,
    help="A dataset the loaders accept: .jsonl/.json with a "
    "code field, id<TAB>tokens .txt, a source directory or file, or 'stdlib'.",
)
@click.option("--lang", "language", required=True, help="Language of the snippets.")
@click.option("--model", default=None, help="Model directory or cached hub id (default: packaged MiniLM).")
@click.option(
    "--hidden-states",
    "hidden_states",
    default="",
    help="Hidden states to probe, e.g. '0,3,6' (default: all; 0 = embeddings, h = output of the "
    "h-th transformer layer).",
)
# The option's name before `--hidden-states`, kept so that old commands still run.
@click.option("--layers", "old_layers", default=None, hidden=True)
@click.option("--rank", default=128, show_default=True, help="Probe rank for the sweep over hidden states.")
@click.option(
    "--ranks",
    default="",
    help="Also sweep these ranks at the best hidden state (chosen on validation), e.g. '8,16,32,64,128,256'.",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Run folder.")
@click.option("--n-snippets", type=int, default=None, help="Sample this many snippets (default: all).")
@click.option("--no-baselines", is_flag=True, help="Skip the random-weights baseline.")
@click.option(
    "--epochs",
    type=int,
    default=None,
    help="Most training epochs (default: train to convergence under a high cap; the paper: 20).",
)
@click.option("--paper-training", is_flag=True, help="The paper's training budget (at most 20 epochs).")
@click.option("--seeds", type=int, default=1, show_default=True, help="Train every probe with this many seeds.")
@click.option(
    "--init",
    "probe_init",
    type=click.Choice(["uniform", "orthogonal"]),
    default="uniform",
    show_default=True,
    help="The projection's initialisation: the spec's uniform(-0.05, 0.05), or "
    "orthonormal columns (for a rank that is a large share of the model's width).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default=None, help="Where the model runs (default: CUDA if available).")
@click.option("--batch-size", type=int, default=16, show_default=True, help="Snippets per model forward pass.")
def train_command(
    dataset,
    language,
    model,
    hidden_states,
    old_layers,
    rank,
    ranks,
    out_dir,
    n_snippets,
    no_baselines,
    epochs,
    paper_training,
    seeds,
    probe_init,
    seed,
    device,
    batch_size,
):
    """Train a probe per hidden state (the same experiment runner and run folder as `codeprobe
    run`, AST-Probe only); write OUT/summary.json, OUT/report.md, plots and the probes."""
    from dataclasses import replace

    from codeprobe.pipeline.config import DEFAULT_MODEL, RunConfig
    from codeprobe.pipeline.experiment import run_experiment
    from codeprobe.pipeline.runfolder import RunFolder
    from codeprobe.pipeline.summary import read_summary
    from codeprobe.probes.astprobe.train_config import PAPER_TRAINING, TrainConfig

    if old_layers is not None:
        if hidden_states:
            raise click.UsageError("give --hidden-states, not also its old name --layers")
        hidden_states = old_layers
    training = replace(PAPER_TRAINING if paper_training else TrainConfig(), init=probe_init)
    if epochs is not None:
        training = replace(training, max_epochs=epochs)
    cfg = RunConfig(
        models=(model or DEFAULT_MODEL,),
        languages=(language,),
        datasets=(str(dataset),),
        seed=seed,
        data={"n_snippets": n_snippets or 0},
        cat=None,
        heads=None,  # AST-Probe only: the heads method would run a forward pass of its own
        training=training,
        astprobe={
            "rank": rank,
            "ranks": _int_list(ranks),
            "hidden_states": _int_list(hidden_states),
            "random_baseline": not no_baselines,
            "probe_seeds": seeds,
        },
        extraction={"batch_size": batch_size, "device": device},
    )
    report = run_experiment(cfg, out_dir)
    summary = read_summary(RunFolder(Path(out_dir)))
    ast = summary["results"][0]["astprobe"]
    for row in ast["hidden_states"]:
        if row["f1"] is None:
            click.echo(f"hidden state {row['hidden_state']:>2}: diverged")
            continue
        lo, hi = row["f1_ci"]
        best = "  <- best on validation" if row["hidden_state"] == ast["best_hidden_state"] else ""
        click.echo(
            f"hidden state {row['hidden_state']:>2}: valid F1 {row['valid_f1']:.4f}, test F1 {row['f1']:.4f} "
            f"[{lo:.4f}, {hi:.4f}]{best}"
        )
    random = [r["f1"] for r in ast["baselines"]["random"] if r["f1"] is not None]
    if random:
        click.echo(f"random weights: best test F1 {max(random):.4f}")
    click.echo(f"report: {report}")


@astprobe_group.command("recover")
@file_argument
@click.option(
    "--probe",
    "probe_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="A saved probe directory (e.g. OUT/astprobe/<model>/<language>-<dataset>/probes/hidden_state_03_rank_128).",
)
@lang_option
@click.option("--model", default=None, help="Override the model the probe was trained on.")
@click.option("--cache-dir", default=None, help="Hidden-state cache root.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of the drawing.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write an interactive page with the two trees side by side to this file.",
)
def recover_command(file, probe_dir, language, model, cache_dir, as_json, html_path):
    """Print FILE's gold tree and the tree the probe recovers, side by side, with P, R, F1."""
    from codeprobe.probes.astprobe.estimator import ASTProbe
    from codeprobe.probes.astprobe.tree_drawing import render_tree

    extra = {"cache_dir": cache_dir} if cache_dir else {}
    probe = ASTProbe.load(probe_dir, model=model, **extra)
    if language is not None and canonical_language(language) != probe.language_:
        raise InputError(f"this probe is for {probe.language_}, not {language}")
    try:
        code = read_source(file).decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{file} is not UTF-8 text") from None
    trees = probe.predict([("snippet", code)])
    if not trees:
        raise InputError(
            f"{file}: no tree to recover (it does not parse cleanly, has fewer than 2 "
            "tokens, or does not fit the model)"
        )
    tree = trees[0]
    if html_path:
        from codeprobe.viz import explorer_html, explorer_payload, write_html

        name = Path(file).name if file != "-" else "<stdin>"
        payload = explorer_payload(
            [(tree.id, code)], language=probe.language_, cat=False, probe=probe, trees=trees, max_snippets=None
        )
        title = f"{name}: AST-Probe trees (hidden state {probe.hidden_state}, rank {probe.rank})"
        write_html(
            explorer_html(
                payload,
                title=title,
                lines=[f"probe {probe_dir}; model {(probe.model_info_ or {}).get('name', probe.model_)}"],
            ),
            html_path,
        )
    if as_json:
        echo_json(
            {
                "tokens": list(tree.tokens),
                "d": tree.d.tolist(),
                "c": list(tree.c),
                "u": list(tree.u),
                "gold": [list(x) for x in tree.gold],
                "predicted": [list(x) for x in tree.predicted],
                "precision": tree.precision,
                "recall": tree.recall,
                "f1": tree.f1,
                "hidden_state": probe.hidden_state,
                "rank": probe.rank,
            }
        )
        return
    gold = render_tree(tree.gold, tree.tokens)
    pred = render_tree(tree.predicted, tree.tokens)
    width = max(len("gold"), *(len(x) for x in gold)) + 2
    click.echo(f"{'gold':<{width}}| recovered (hidden state {probe.hidden_state}, rank {probe.rank})")
    click.echo(f"{'-' * width}+{'-' * (width)}")
    for left, right in itertools.zip_longest(gold, pred, fillvalue=""):
        click.echo(f"{left:<{width}}| {right}")
    click.echo(f"precision {tree.precision:.4f}  recall {tree.recall:.4f}  F1 {tree.f1:.4f}")
